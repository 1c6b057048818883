"""What Redshift refuses that PostgreSQL accepts: one rule set over sqlglot's syntax tree.

Two users: ``zetl transform check`` walks every compiled model with :func:`check_sql`, and the
front (``zetl_redshift.translate``) walks every statement that reads or writes user tables with
:func:`refusals`, so a construct is refused locally exactly where the check names it.
sqlglot's ``read='redshift'`` parses these constructs without complaint, so parsing alone
proves nothing: each rule looks for one construct in the tree.

Only sqlglot is imported here (the check runs it without the front's dependencies).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from functools import cache
from typing import Any

from sqlglot import exp

from zetl.errors import first_line

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

UNSUPPORTED_TYPES = {
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
TYPE_FIX = (
    "use a Redshift type: varchar for uuid/json text, SUPER for semi-structured data,"
    " bigint with IDENTITY for serial, numeric(12,2) for money"
)

Finding = tuple[str, str]  # (construct, fix)
Rule = Callable[[Any], Finding | None]


def _in_insert(node: exp.Expr) -> bool:
    return node.find_ancestor(exp.Insert) is not None


def _function_name(node: exp.Expr) -> str:
    if isinstance(node, exp.Anonymous):
        return str(node.name).lower()
    return str(node.sql_name()).lower() if hasattr(node, "sql_name") else ""


def _json_operator(node: exp.Expr) -> Finding | None:
    # sqlglot parses `a ->> 'k'` and json_extract_path_text(a, 'k') into the same node; only
    # the operators are PostgreSQL's.
    if isinstance(node, exp.JSONExtract | exp.JSONExtractScalar) and not node.args.get(
        "only_json_types"
    ):
        return None
    return (
        "JSON operator (->, ->>, @>, ?)",
        "use SUPER with PartiQL paths, or json_extract_path_text()",
    )


@cache
def rules() -> tuple[tuple[type[Any] | tuple[type[Any], ...], Rule], ...]:
    """(node type, test returning (construct, fix) or None) pairs over sqlglot's tree."""
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
    found: list[tuple[type[Any] | tuple[type[Any], ...], Rule]] = [
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
        # Subscripts are PartiQL navigation of SUPER values on Redshift; ARRAY[...] is not.
        (exp.Array, lambda n: ("ARRAY[...] constructor",
            "Redshift has no arrays: use rows, or SUPER (json_parse('[...]'))")),
        (exp.Collate, lambda n: ("COLLATE", "Redshift has no collations: use lower()/upper()")),
        (exp.Values, lambda n: None if _in_insert(n) else ("VALUES list as a constant table",
            "select literals joined with UNION ALL")),
        (exp.DataType, lambda n: (UNSUPPORTED_TYPES[n.this], TYPE_FIX)
            if n.this in UNSUPPORTED_TYPES else None),
        (exp.AtTimeZone, lambda n: ("AT TIME ZONE with an interval", "use convert_timezone("
            "'UTC', ts) (the utc_date macro dispatches per adapter)")
            if isinstance(n.args.get("zone"), exp.Interval) else None),
        (exp.Explode, lambda n: ("unnest()", POSTGRES_FUNCTIONS["unnest"])),
        (exp.Anonymous, lambda n: (f"{_function_name(n)}()", POSTGRES_FUNCTIONS[
            _function_name(n)]) if _function_name(n) in POSTGRES_FUNCTIONS else None),
    ]  # fmt: skip
    if json_ops:
        found.append((json_ops, _json_operator))
    if series:
        series_fix = POSTGRES_FUNCTIONS["generate_series"]
        found.append((series, lambda n: ("generate_series()", series_fix)))
    return tuple(found)


def refusals(trees: Iterable[exp.Expr]) -> list[Finding]:
    """The PostgreSQL-only constructs in parsed statements, each once, in order of appearance."""
    found: list[Finding] = []
    table = rules()
    for tree in trees:
        for node in tree.walk():
            for kinds, rule in table:
                if isinstance(node, kinds):
                    hit = rule(node)
                    if hit and hit not in found:
                        found.append(hit)
    return found


def postgres_function_calls(tokens: Iterable[Any]) -> list[Finding]:
    """PostgreSQL-only functions called by name, from sqlglot tokens (some have no node)."""
    found: list[Finding] = []
    for token, following in itertools.pairwise(tokens):
        name = token.text.lower()
        if name in POSTGRES_FUNCTIONS and following.token_type.name == "L_PAREN":
            named = (f"{name}()", POSTGRES_FUNCTIONS[name])
            if named not in found:
                found.append(named)
    return found


def check_sql(statement: str) -> list[Finding]:
    """The PostgreSQL-only constructs in one SQL text: (construct, fix) pairs, each once."""
    import sqlglot
    from sqlglot.errors import ParseError

    try:
        trees = [t for t in sqlglot.parse(statement, read="redshift") if t is not None]
    except ParseError as exc:
        found_error = f"SQL Redshift's grammar does not parse ({first_line(exc)})"
        return [(found_error, "rewrite the statement")]
    found = postgres_function_calls(sqlglot.tokenize(statement, read="redshift"))
    for hit in refusals(trees):
        if hit not in found:
            found.append(hit)
    return found
