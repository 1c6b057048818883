"""``zetl transform check``: what Redshift would reject, found without a Redshift.

1. ``dbt parse`` against the ``aws`` target (offline: no connection is opened);
2. every model compiled with the redshift adapter and ``--no-populate-cache``, twice: once as a
   full build and once as an incremental run (``is_incremental()`` and the run-time queries of
   the incremental macros are answered offline, see transform/macros/incremental.sql), so both
   branches of an incremental model are checked;
3. each compiled statement parsed with sqlglot and its syntax tree walked for PostgreSQL-only
   constructs (``zetl_redshift.dialect``: the same rules by which the Redshift front refuses a
   statement);
4. every view that reads the replica (another database on Redshift) must be late-binding
   (``bind: false``), or Redshift refuses to create it.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zetl.errors import ConfigError, first_line
from zetl_redshift.dialect import check_sql

# Placeholders only: the aws profile is rendered, never connected to.
OFFLINE_ENV = {
    "ZETL_DBT_TARGET": "aws",
    "REDSHIFT_METHOD": "database",
    "REDSHIFT_HOST": "redshift.invalid",
    "REDSHIFT_USER": "zetl_check",
    "REDSHIFT_PASSWORD": "offline-check",
}
BRANCHES = ("full", "incremental")


@dataclass(frozen=True, order=True)
class Finding:
    model_file: str
    construct: str
    fix: str
    branch: str = ""

    def render(self) -> str:
        where = f" ({self.branch} build)" if self.branch else ""
        return f"{self.model_file}{where}: {self.construct} — fix: {self.fix}"


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
