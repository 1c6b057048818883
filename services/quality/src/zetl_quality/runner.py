"""``zetl dq run``: prepare the evidence, run the checkpoint, report, store the result."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg2
import psycopg2.extensions

from zetl.db import connect
from zetl.errors import ConfigError, first_line
from zetl.settings import Settings
from zetl_quality import results
from zetl_quality.checks import CHECKPOINTS, Check, CheckpointSpec, Datasource, Target

log = logging.getLogger("zetl.quality")
SAMPLE_ROWS = 5


@dataclass(frozen=True)
class Failure:
    check: Check
    observed: str
    sample: list[tuple[Any, ...]]


def _urls(
    spec: CheckpointSpec, target: Target, environ: Mapping[str, str] | None
) -> dict[str, str]:
    """The datasources' URLs (great_expectations) and the libpq URL results are stored with."""
    from zetl_quality.project import redshift_url

    settings = Settings.from_env(environ)
    urls: dict[str, str] = {}
    if spec.needs_source:
        urls[Datasource.SOURCE] = settings.require_source()
    if target is Target.AWS:
        urls[Datasource.WAREHOUSE] = redshift_url(environ)
        urls["results"] = "postgresql://" + urls[Datasource.WAREHOUSE].split("://", 1)[1]
    else:
        urls[Datasource.WAREHOUSE] = settings.require_warehouse()
        urls["results"] = urls[Datasource.WAREHOUSE]
    return urls


def _sample(url: str, check: Check) -> list[tuple[Any, ...]]:
    """A few rows that break the check, by its plain SQL (never fails the run itself)."""
    try:
        conn = connect(url)
    except ConfigError:
        return []
    try:
        with conn.cursor() as cur:
            cur.execute(f"SELECT * FROM ({check.plain_sql()}) AS v LIMIT {SAMPLE_ROWS}")
            return [tuple(r) for r in cur.fetchall()]
    except psycopg2.Error:
        return []
    finally:
        conn.close()


def render_report(
    name: str, target: Target, evaluated: int, failures: list[Failure], docs: str | None
) -> str:
    if failures:
        lines = [
            f"checkpoint {name} ({target}): FAILED, {len(failures)} of {evaluated}"
            " expectations failed"
        ]
    else:
        lines = [f"checkpoint {name} ({target}): passed, {evaluated} expectations"]
    for failure in failures:
        lines.append(f"  FAILED {failure.check.name}: {failure.observed}".rstrip(": "))
        lines.append(f"    {failure.check.description}")
        lines.extend(f"    e.g. {row}" for row in failure.sample)
    if docs:
        lines.append(f"Data Docs: {docs}")
    return "\n".join(lines)


def run(
    name: str, target: Target = Target.LOCAL, environ: Mapping[str, str] | None = None
) -> results.CheckpointResult:
    """Run checkpoint ``name``; the result is stored in the warehouse and returned."""
    spec = CHECKPOINTS.get(name)
    if spec is None:
        raise ConfigError(f"no checkpoint {name!r}; checkpoints: {', '.join(CHECKPOINTS)}")
    if spec.local_only and target is Target.AWS:
        raise ConfigError(spec.local_only)
    urls = _urls(spec, target, environ)
    run_id = str(uuid.uuid4())
    started_at = datetime.now(UTC)
    clock = time.monotonic()
    warehouse = connect(urls["results"])
    try:
        if spec.prepare is not None:
            spec.prepare(run_id, warehouse, environ)
        log.info("loading great_expectations", extra={"checkpoint": name})
        from zetl_quality import project

        path = project.project_dir(environ)
        context = project.open_context(path)
        try:
            checkpoint, checks = project.define_checkpoint(
                context, name, target, urls, Settings.from_env(environ).replica_database
            )
        except Exception as exc:  # great_expectations' own kinds: connection, missing table...
            reason = first_line(_database_error(exc) or exc)
            raise ConfigError(f"checkpoint {name} cannot be set up: {reason}") from exc
        log.info("running checkpoint", extra={"checkpoint": name, "expectations": len(checks)})
        outcomes = project.run_checkpoint(context, checkpoint, checks)
        failures = [
            Failure(
                o.check,
                o.observed,
                _sample(
                    urls[Datasource.SOURCE]
                    if spec.checks_read is Datasource.SOURCE
                    else urls["results"],
                    o.check,
                ),
            )
            for o in outcomes
            if not o.success
        ]
        docs = project.data_docs_index(context)
        report = render_report(name, target, len(outcomes), failures, docs)
        result = results.CheckpointResult(
            run_id=run_id,
            checkpoint=name,
            target=str(target),
            started_at=started_at,
            finished_at=datetime.now(UTC),
            success=not failures,
            evaluated=len(outcomes),
            successful=len(outcomes) - len(failures),
            failed=len(failures),
            failed_expectations=[
                {
                    "name": f.check.name,
                    "expectation": f.check.expectation,
                    "asset": f.check.asset,
                    "observed": f.observed,
                    "sample": [list(r) for r in f.sample],
                }
                for f in failures
            ],
            report=report,
        )
        with warehouse.cursor() as cur:
            results.store(cur, result, target)
        warehouse.commit()
        log.info(
            "checkpoint finished",
            extra={
                "checkpoint": name,
                "success": result.success,
                "failed": result.failed,
                "seconds": round(time.monotonic() - clock, 2),
            },
        )
        return result
    finally:
        warehouse.close()


def _database_error(exc: BaseException) -> BaseException | None:
    """The driver's own error behind great_expectations' and SQLAlchemy's wrappings (which
    quote it with its newlines escaped), if one is in the chain."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, psycopg2.Error):
            return seen
        orig = getattr(seen, "orig", None)  # SQLAlchemy's DBAPIError
        if isinstance(orig, psycopg2.Error):
            return orig
        seen = seen.__cause__ or seen.__context__
    return None
