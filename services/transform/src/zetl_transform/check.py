"""``zetl transform check``: what Redshift would reject, found without a Redshift.

1. ``dbt parse`` against the ``aws`` target (offline: no connection is opened);
2. every model compiled with the redshift adapter and ``--no-populate-cache``, twice: once as a
   full build and once as an incremental run (``is_incremental()`` and the run-time queries of
   the incremental macros are answered offline, see transform/macros/incremental.sql), so both
   branches of an incremental model are checked;
3. each compiled statement parsed with sqlglot and its syntax tree walked for PostgreSQL-only
   constructs: sqlglot's ``read='redshift'`` accepts them without complaint, so parsing alone
   proves nothing;
4. every view that reads the replica (another database on Redshift) must be late-binding
   (``bind: false``), or Redshift refuses to create it.
"""

from __future__ import annotations

import itertools
import json
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zetl.errors import ConfigError, first_line

# Placeholders only: the aws profile is rendered, never connected to.
OFFLINE_ENV = {
    "ZETL_DBT_TARGET": "aws",
    "REDSHIFT_METHOD": "database",
    "REDSHIFT_HOST": "redshift.invalid",
    "REDSHIFT_USER": "zetl_check",
    "REDSHIFT_PASSWORD": "offline-check",
}
BRANCHES = ("full", "incremental")
# PostgreSQL functions Redshift lacks (sqlglot maps some to its own nodes, e.g. string_agg to
# GroupConcat like listagg, so they are found by name in the token stream).
POSTGRES_FUNCTIONS = {
    "generate_series": "generate_series runs on the leader node only: join a numbers table",
    "string_agg": "use listagg(expr, delimiter) within group (order by ...)",
    "array_agg": "use listagg, or keep rows (Redshift has no arrays)",
    "jsonb_agg": "use listagg or SUPER",
    "json_agg": "use listagg or SUPER",
    "to_jsonb": "build the text with listagg/|| or use SUPER (json_parse)",
    "to_json": "build the text with listagg/|| or use SUPER (json_parse)",
    "gen_random_uuid": "generate ids upstream or use md5(...) as varchar",
    "date_bin": "use date_trunc or arithmetic on epoch seconds",
    "row": "row constructors are unsupported: select the columns",
    "unnest": "table functions are unsupported: unnest SUPER arrays with PartiQL",
}


@dataclass(frozen=True, order=True)
class Finding:
    model_file: str
    construct: str
    fix: str
    branch: str = ""

    def render(self) -> str:
        where = f" ({self.branch} build)" if self.branch else ""
        return f"{self.model_file}{where}: {self.construct} — fix: {self.fix}"


Rule = Callable[[Any], tuple[str, str] | None]


def _rules() -> list[tuple[type[Any] | tuple[type[Any], ...], Rule]]:
    """(node type, test returning (construct, fix) or None) pairs over sqlglot's tree."""
    from sqlglot import exp

    unsupported_types = {
        exp.DataType.Type.JSON: "json type",
        exp.DataType.Type.JSONB: "jsonb type",
        exp.DataType.Type.UUID: "uuid type",
        exp.DataType.Type.SERIAL: "serial type",
        exp.DataType.Type.BIGSERIAL: "bigserial type",
        exp.DataType.Type.SMALLSERIAL: "smallserial type",
        exp.DataType.Type.MONEY: "money type",
        exp.DataType.Type.ARRAY: "array type",
        exp.DataType.Type.INET: "network address type",
        exp.DataType.Type.XML: "xml type",
        exp.DataType.Type.HSTORE: "hstore type",
        exp.DataType.Type.BIT: "bit type",
        exp.DataType.Type.INT4RANGE: "range type",
        exp.DataType.Type.INT8RANGE: "range type",
        exp.DataType.Type.NUMRANGE: "range type",
        exp.DataType.Type.TSRANGE: "range type",
        exp.DataType.Type.TSTZRANGE: "range type",
        exp.DataType.Type.DATERANGE: "range type",
    }
    type_fix = (
        "use a Redshift type: varchar for uuid/json text, SUPER for semi-structured data,"
        " bigint with IDENTITY for serial, numeric(12,2) for money"
    )
    json_ops = tuple(
        getattr(exp, name)
        for name in ("JSONExtract", "JSONExtractScalar", "JSONBExtract", "JSONBExtractScalar",
                     "JSONBContains", "ArrayContainsAll", "ArrayContains", "ArrayOverlaps")
        if hasattr(exp, name)
    )  # fmt: skip
    series = tuple(
        getattr(exp, name)
        for name in ("GenerateSeries", "ExplodingGenerateSeries")
        if hasattr(exp, name)
    )

    def function_name(node: Any) -> str:
        if isinstance(node, exp.Anonymous):
            return str(node.name).lower()
        return str(node.sql_name()).lower() if hasattr(node, "sql_name") else ""

    def in_insert(node: Any) -> bool:
        return node.find_ancestor(exp.Insert) is not None

    rules: list[tuple[type[Any] | tuple[type[Any], ...], Rule]] = [
        (exp.Distinct, lambda n: ("DISTINCT ON", "use row_number() over (partition by ... order"
            " by ...) = 1 in a subquery") if n.args.get("on") else None),
        (exp.Filter, lambda n: ("aggregate FILTER (WHERE ...)", "use sum(case when ... then"
            " ... end) / count(case when ... then 1 end)")),
        (exp.OnConflict, lambda n: ("INSERT ... ON CONFLICT", "use MERGE, or delete+insert")),
        (exp.Returning, lambda n: ("RETURNING", "query the rows afterwards")),
        (exp.Lateral, lambda n: ("LATERAL", "rewrite as a join on a grouped subquery")),
        ((exp.NullSafeEQ, exp.NullSafeNEQ), lambda n: ("IS [NOT] DISTINCT FROM",
            "compare with coalesce(a, sentinel) = coalesce(b, sentinel), or spell out the null"
            " cases")),
        ((exp.Array, exp.Bracket), lambda n: ("array constructor or subscript",
            "Redshift has no arrays: use rows, or SUPER")),
        (exp.Collate, lambda n: ("COLLATE", "Redshift has no collations: use lower()/upper()")),
        (exp.Values, lambda n: None if in_insert(n) else ("VALUES list as a constant table",
            "select literals joined with UNION ALL")),
        (exp.DataType, lambda n: (unsupported_types[n.this], type_fix)
            if n.this in unsupported_types else None),
        (exp.AtTimeZone, lambda n: ("AT TIME ZONE with an interval", "use convert_timezone("
            "'UTC', ts) (the utc_date macro dispatches per adapter)")
            if isinstance(n.args.get("zone"), exp.Interval) else None),
        (exp.Explode, lambda n: ("unnest()", POSTGRES_FUNCTIONS["unnest"])),
        (exp.Anonymous, lambda n: (f"{function_name(n)}()", POSTGRES_FUNCTIONS[function_name(n)])
            if function_name(n) in POSTGRES_FUNCTIONS else None),
    ]  # fmt: skip
    if json_ops:
        rules.append((json_ops, lambda n: ("JSON operator (->, ->>, @>, ?)", "use SUPER with"
            " PartiQL paths, or json_extract_path_text()")))  # fmt: skip
    if series:
        rules.append((series, lambda n: ("generate_series()", POSTGRES_FUNCTIONS[
            "generate_series"])))  # fmt: skip
    return rules


def check_sql(statement: str) -> list[tuple[str, str]]:
    """The PostgreSQL-only constructs in one SQL text: (construct, fix) pairs, each once."""
    import sqlglot
    from sqlglot.errors import ParseError

    try:
        trees = [t for t in sqlglot.parse(statement, read="redshift") if t is not None]
    except ParseError as exc:
        return [
            (f"SQL Redshift's grammar does not parse ({first_line(exc)})", "rewrite the statement")
        ]
    found: list[tuple[str, str]] = []
    tokens = sqlglot.tokenize(statement, read="redshift")
    for token, following in itertools.pairwise(tokens):
        name = token.text.lower()
        if name in POSTGRES_FUNCTIONS and following.token_type.name == "L_PAREN":
            named = (f"{name}()", POSTGRES_FUNCTIONS[name])
            if named not in found:
                found.append(named)
    rules = _rules()
    for tree in trees:
        for node in tree.walk():
            for kinds, rule in rules:
                if isinstance(node, kinds):
                    hit = rule(node)
                    if hit and hit not in found:
                        found.append(hit)
    return found


def _invoke(args: list[str], project: Path, work: Path) -> Any:
    from zetl_transform.runner import invoke_dbt

    result, exception = invoke_dbt(
        [*args, "--target", "aws"], project, OFFLINE_ENV, progress=False, work=work
    )
    if exception is not None:
        raise ConfigError(f"dbt {args[0]} failed offline: {first_line(exception)}")
    return result


def _compiled_models(work: Path, project_name: str) -> Iterator[tuple[str, str]]:
    root = work / "target" / "compiled" / project_name / "models"
    for path in sorted(root.rglob("*.sql")):
        relative = path.relative_to(root)
        if relative.parts and relative.parts[0].endswith(".yml"):
            continue  # a data test's compiled SQL, not a model
        yield "models/" + relative.as_posix(), path.read_text("utf-8")


def _late_binding_findings(manifest: dict[str, Any]) -> list[Finding]:
    """A view whose SQL reads a source (the replica, another database on Redshift) must be
    late-binding: `bind: false`."""
    findings = []
    for node in manifest["nodes"].values():
        if node["resource_type"] != "model" or node["config"].get("materialized") != "view":
            continue
        reads_replica = any(d.startswith("source.") for d in node["depends_on"]["nodes"])
        if reads_replica and node["config"].get("bind", True) is not False:
            findings.append(
                Finding(
                    node["original_file_path"],
                    "view over the replica database that is not late-binding",
                    "set `bind: false` (config or dbt_project.yml) so Redshift creates it WITH"
                    " NO SCHEMA BINDING",
                )
            )
    return findings


def run_check(project: Path) -> list[Finding]:
    findings: set[Finding] = set()
    with tempfile.TemporaryDirectory(prefix="zetl-check-") as tmp:
        parse_dir = Path(tmp) / "parse"
        _invoke(["parse"], project, parse_dir)
        manifest = json.loads((parse_dir / "target" / "manifest.json").read_text("utf-8"))
        findings.update(_late_binding_findings(manifest))
        project_name = manifest["metadata"].get("project_name") or "zetl"
        for branch in BRANCHES:
            work = Path(tmp) / branch
            shutil.copytree(parse_dir, work)  # reuse the parse: partial parsing
            _invoke(
                [
                    "compile",
                    "--no-populate-cache",
                    "--select",
                    "resource_type:model",
                    "--vars",
                    json.dumps({"zetl_offline_render": branch}),
                ],
                project,
                work,
            )
            for model_file, statement in _compiled_models(work, project_name):
                for construct, fix in check_sql(statement):
                    findings.add(Finding(model_file, construct, fix, branch))
    return _merge_branches(sorted(findings))


def _merge_branches(findings: list[Finding]) -> list[Finding]:
    """One finding per model and construct: the branch is named only when one branch has it."""
    by_key: dict[tuple[str, str, str], set[str]] = {}
    for finding in findings:
        by_key.setdefault((finding.model_file, finding.construct, finding.fix), set()).add(
            finding.branch
        )
    merged = []
    for (model_file, construct, fix), branches in sorted(by_key.items()):
        branch = "" if len(branches - {""}) != 1 else next(iter(branches - {""}))
        merged.append(Finding(model_file, construct, fix, branch))
    return merged
