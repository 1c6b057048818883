"""The great_expectations project in ``expectations/``: a file context whose datasources,
suites, validation definitions and checkpoints are (re)defined from ``checks`` on every run.

Connection strings never reach the project's files: the datasources name environment
variables (``${ZETL_DQ_SOURCE_URL}``...) that great_expectations substitutes when it connects,
and this module sets them from zetl's settings (``*_FILE`` variants included).

Importing great_expectations takes seconds, so only the functions here import it.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from zetl.errors import ConfigError, first_line
from zetl.settings import EnvSpec, env_of, setting
from zetl_quality.checks import CHECKPOINTS, Asset, Check, Datasource, Target

URL_VARIABLES = {
    Datasource.SOURCE: "ZETL_DQ_SOURCE_URL",
    Datasource.WAREHOUSE: "ZETL_DQ_WAREHOUSE_URL",
}
RESULT_FORMAT = "SUMMARY"


@dataclass(frozen=True)
class QualitySettings(EnvSpec):
    # Empty: expectations/ under the working directory.
    expectations_dir: str = setting("ZETL_EXPECTATIONS_DIR", "")


@dataclass(frozen=True)
class RedshiftSettings(EnvSpec):
    """The Redshift workgroup, from the variables the AWS tasks get (--target aws)."""

    host: str = setting("REDSHIFT_HOST", "")
    user: str = setting("REDSHIFT_USER", "")
    password: str = setting("REDSHIFT_PASSWORD", "", secret=True)
    port: str = setting("REDSHIFT_PORT", "5439")
    database: str = setting("REDSHIFT_DATABASE", "dev")


def project_dir(environ: Mapping[str, str] | None = None) -> Path:
    """``ZETL_EXPECTATIONS_DIR``, else ``expectations/`` under the working directory."""
    configured = QualitySettings.from_env(environ).expectations_dir
    path = Path(configured) if configured else Path.cwd() / "expectations"
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            f"the great_expectations project directory {path} cannot be created:"
            f" {exc.strerror} (set ZETL_EXPECTATIONS_DIR)"
        ) from exc
    return path


def redshift_url(environ: Mapping[str, str] | None = None) -> str:
    """The Redshift workgroup from the variables the AWS tasks get (REDSHIFT_HOST...)."""
    redshift = RedshiftSettings.from_env(environ)
    for attribute in ("host", "user", "password"):
        if not getattr(redshift, attribute):
            name = env_of(RedshiftSettings)[attribute].name
            raise ConfigError(f"{name} (or {name}_FILE) must be set for --target aws")
    return (
        f"redshift+psycopg2://{quote(redshift.user, safe='')}:"
        f"{quote(redshift.password, safe='')}@{redshift.host}:{redshift.port}/"
        f"{redshift.database}?sslmode=require"
    )


def _sqlalchemy_url(url: str) -> str:
    # libpq URLs may say postgres://; SQLAlchemy knows only postgresql://
    return "postgresql://" + url.split("://", 1)[1] if url.startswith("postgres://") else url


@dataclass
class Outcome:
    """One expectation's result, matched back to its check."""

    check: Check
    success: bool
    observed: str


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    # great_expectations prints (not logs) advice about queries without {batch} and progress
    # bars; the command's own output is the report.
    with contextlib.redirect_stdout(io.StringIO()):
        yield


def open_context(path: Path) -> Any:
    """The file context ``path/gx`` (scaffolded on first use). Everything in it is generated
    from code on each run, so none of it is committed."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")  # no calls home from a data job
    # Its INFO lines (config substitution, batch slicing) say nothing a data team acts on.
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    with _quiet():
        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig

        context = gx.get_context(mode="file", project_root_dir=str(path))
        # Its progress bars would bury the report; the command prints its own progress.
        context.variables.progress_bars = ProgressBarsConfig(globally=False)
        return context


def _datasource(context: Any, kind: Datasource, target: Target, urls: Mapping[str, str]) -> Any:
    variable = URL_VARIABLES[kind]
    os.environ[variable] = urls[kind]
    if target is Target.AWS and kind is Datasource.WAREHOUSE:
        return context.data_sources.add_or_update_redshift(
            name=f"{kind}_{target}", connection_string="${" + variable + "}"
        )
    return context.data_sources.add_or_update_postgres(
        name=f"{kind}_{target}", connection_string="${" + variable + "}"
    )


def _add_asset(datasource: Any, asset: Asset) -> Any:
    with contextlib.suppress(LookupError):
        datasource.delete_asset(asset.name)
    if asset.query is not None:
        data_asset = datasource.add_query_asset(name=asset.name, query=asset.query)
    else:
        assert asset.table is not None
        schema, table = asset.table.split(".", 1)
        data_asset = datasource.add_table_asset(
            name=asset.name, table_name=table, schema_name=schema
        )
    return data_asset.add_batch_definition_whole_table("whole table")


def _expectation(check: Check) -> Any:
    import great_expectations.expectations as gxe

    from zetl_quality import expectations

    cls = getattr(expectations, check.expectation, None) or getattr(gxe, check.expectation)
    return cls(**check.kwargs, meta={"zetl_check": check.name})


def define_checkpoint(
    context: Any, name: str, target: Target, urls: Mapping[str, str], replica_database: str
) -> tuple[Any, list[Check]]:
    """The checkpoint ``name`` (suites, validation definitions, Data Docs action) as the
    checks module defines it today, saved into the project."""
    with _quiet():
        return _define(context, name, target, urls, replica_database)


def _define(
    context: Any, name: str, target: Target, urls: Mapping[str, str], replica_database: str
) -> tuple[Any, list[Check]]:
    import great_expectations as gx

    assets, checks = CHECKPOINTS[name].build(target, replica_database)
    sources = {
        kind: _datasource(context, kind, target, urls) for kind in {a.datasource for a in assets}
    }
    validations = []
    by_asset: dict[str, list[Check]] = {}
    for check in checks:
        by_asset.setdefault(check.asset, []).append(check)
    for asset in assets:
        asset_checks = by_asset.get(asset.table or asset.name, [])
        if not asset_checks:
            continue
        batch_definition = _add_asset(sources[asset.datasource], asset)
        suite_name = f"{name}.{asset.name}"
        suite = context.suites.add_or_update(
            gx.ExpectationSuite(
                name=suite_name, expectations=[_expectation(c) for c in asset_checks]
            )
        )
        validations.append(
            context.validation_definitions.add_or_update(
                gx.ValidationDefinition(name=suite_name, data=batch_definition, suite=suite)
            )
        )
    checkpoint = context.checkpoints.add_or_update(
        gx.Checkpoint(
            name=name,
            validation_definitions=validations,
            # No UpdateDataDocsAction: it rebuilds the site once per validation definition
            # (templates compiled afresh each time, most of a run's cost); run_checkpoint
            # builds the same pages once for all of them.
            actions=[],
            result_format={"result_format": RESULT_FORMAT},
        )
    )
    return checkpoint, checks


def run_checkpoint(context: Any, checkpoint: Any, checks: list[Check]) -> list[Outcome]:
    """Run it, rebuild Data Docs for its results, and match each result to its check."""
    by_name = {c.name: c for c in checks}
    with _quiet():
        result = checkpoint.run()
        context.build_data_docs(resource_identifiers=list(result.run_results))
    outcomes = []
    for suite_result in result.run_results.values():
        for item in suite_result.results:
            check = by_name[str((item.expectation_config.meta or {}).get("zetl_check"))]
            exception = _exception(item.exception_info or {})
            observed = f"error: {exception}" if exception else _observed(check, item.result or {})
            outcomes.append(Outcome(check, bool(item.success), observed))
    return outcomes


def _exception(info: Mapping[str, Any]) -> str | None:
    """The first line of the database's complaint, when the expectation could not run."""
    candidates = [info, *(v for v in info.values() if isinstance(v, Mapping))]
    for candidate in candidates:
        if candidate.get("raised_exception"):
            message = str(candidate.get("exception_message") or "error")
            return first_line(message)
    return None


def _observed(check: Check, result: Mapping[str, Any]) -> str:
    if check.expectation == "ExpectNoViolatingRows" and "observed_value" in result:
        return f"{result['observed_value']} unexpected rows"
    if "unexpected_count" in result:
        return f"{result['unexpected_count']} unexpected"
    if "observed_value" in result:
        return f"observed {result['observed_value']}"
    return ""


def data_docs_index(context: Any) -> str | None:
    sites = context.get_docs_sites_urls()
    return str(sites[0]["site_url"]) if sites else None
