"""``zetl transform``: refresh the replica link, then ``dbt build``, and record the run."""

from __future__ import annotations

import logging
import os
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg2.errors

from zetl.db import connect
from zetl.errors import ConfigError, first_line
from zetl_transform.project import LOCAL_TARGETS, dbt_env, work_dir

logger = logging.getLogger("zetl.transform")
# The warehouse role that builds the marts and records the runs (docs/roles.md).
TRANSFORM_ROLE = "zetl_transform"

RUN_LOG_DDL = """
CREATE SCHEMA IF NOT EXISTS zetl_transform;
CREATE TABLE IF NOT EXISTS zetl_transform.run_log (
    run_id text PRIMARY KEY,
    started_at timestamptz NOT NULL,
    finished_at timestamptz,
    success boolean,
    command text NOT NULL,
    selector text,
    full_refresh boolean NOT NULL,
    models_ok integer NOT NULL DEFAULT 0,
    models_error integer NOT NULL DEFAULT 0,
    tests_failed integer NOT NULL DEFAULT 0,
    message text
);
"""


@dataclass
class RunOutcome:
    run_id: str
    started_at: datetime
    command: str
    selector: str | None
    full_refresh: bool
    finished_at: datetime | None = None
    success: bool = False
    models_ok: int = 0
    models_error: int = 0
    tests_failed: int = 0
    # dbt unit tests that passed (a failed one counts in tests_failed); not in run_log
    unit_tests_ok: int = 0
    message: str = ""
    failures: list[str] = field(default_factory=list)
    node_seconds: dict[str, float] = field(default_factory=dict)


@contextmanager
def dbt_environment(env: dict[str, str]) -> Iterator[None]:
    """dbt reads its profile's env_var()s from the process environment."""
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class Progress:
    """One line per finished node on a terminal, a structured log line otherwise."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.done = 0

    def __call__(self, event: Any) -> None:
        name = event.info.name
        if name not in ("LogModelResult", "LogTestResult"):
            return
        data = event.data
        self.done += 1
        what = data.node_info.node_name
        status = data.status
        seconds = round(float(data.execution_time), 2)
        if self.tty:
            print(f"  {self.done:3} {status:8} {what} ({seconds} s)", file=sys.stderr)
        else:
            logger.info("dbt node done", extra={"node": what, "status": status, "seconds": seconds})


def invoke_dbt(
    args: list[str],
    project: Path,
    env: dict[str, str],
    progress: bool = True,
    work: Path | None = None,
) -> tuple[Any, BaseException | None]:
    """Run one dbt command in process; returns (result, exception)."""
    from dbt.cli.main import dbtRunner  # heavy: imported only when a command runs

    work = work or work_dir(project)
    full = [
        *args,
        "--project-dir", str(project),
        "--profiles-dir", str(project),
        "--target-path", str(work / "target"),
        "--log-path", str(work / "logs"),
        "--log-level", "none",
        "--log-level-file", "info",
    ]  # fmt: skip
    runner = dbtRunner(callbacks=[Progress()] if progress else [])
    with dbt_environment(env):
        outcome = runner.invoke(full)
    return outcome.result, outcome.exception


def build(
    *,
    project: Path,
    warehouse_url: str | None,
    replica_database: str,
    target: str,
    select: list[str],
    full_refresh: bool,
) -> RunOutcome:
    """Refresh the link (local targets), run ``dbt build``, record the run; the outcome says
    whether every model and test passed."""
    run = RunOutcome(
        run_id=str(uuid.uuid4()),
        started_at=datetime.now(UTC),
        command="build",
        selector=" ".join(select) or None,
        full_refresh=full_refresh,
    )
    env = dbt_env(warehouse_url, replica_database, target)
    if target in LOCAL_TARGETS:
        assert warehouse_url is not None  # dbt_env checked it
        _record(warehouse_url, run)
        from zetl_transform.link import refresh

        try:
            refresh(warehouse_url, replica_database)
        except ConfigError as exc:
            run.message = str(exc)
            run.finished_at = datetime.now(UTC)
            _record(warehouse_url, run)
            raise
    args = ["build", "--target", target]
    for item in select:
        args += ["--select", item]
    if full_refresh:
        args.append("--full-refresh")
    started = time.monotonic()
    result, exception = invoke_dbt(args, project, env)
    run.finished_at = datetime.now(UTC)
    # dbt only warns ("Nothing to do") when a selection matches nothing: a typo is not a run.
    nothing_selected = exception is None and bool(select) and not getattr(result, "results", None)
    if exception is not None:
        run.message = "dbt could not run: " + " / ".join(
            line.strip() for line in str(exception).strip().splitlines()[:4]
        )
    elif nothing_selected:
        run.message = f"--select {' '.join(select)} matches no model, seed, snapshot or test"
    else:
        _count(run, result)
        run.success = not run.models_error and not run.tests_failed and not run.failures
        run.message = (
            f"{run.models_ok} models ok, {run.models_error} failed, {run.tests_failed} tests"
            f" failed in {time.monotonic() - started:.1f} s"
        )
    if target in LOCAL_TARGETS and warehouse_url:
        _record(warehouse_url, run)
    logger.info(
        "transform finished",
        extra={"run_id": run.run_id, "success": run.success, "summary": run.message},
    )
    if exception is not None or nothing_selected:
        raise ConfigError(run.message)
    return run


def _count(run: RunOutcome, result: Any) -> None:
    for item in getattr(result, "results", []) or []:
        node = item.node
        status = str(item.status)
        run.node_seconds[node.name] = float(item.execution_time or 0)
        kind = str(node.resource_type)
        if kind in ("model", "seed", "snapshot"):
            if status == "success":
                run.models_ok += 1
            elif status != "skipped":
                run.models_error += 1
                run.failures.append(f"{node.name}: {(item.message or status).strip()}")
            else:
                run.models_error += 1
                run.failures.append(f"{node.name}: skipped (an upstream node failed)")
        elif kind in ("test", "unit_test") and status in ("fail", "error"):
            run.tests_failed += 1
            run.failures.append(f"{node.name}: {(item.message or status).strip()}")
        elif kind == "unit_test" and status == "pass":
            run.unit_tests_ok += 1


def _record(url: str, run: RunOutcome) -> None:
    """Insert or update this run's row in zetl_transform.run_log (in the warehouse `dev`)."""
    conn = connect(url, application_name="zetl-transform")
    try:
        _write_run(conn, run)
    except psycopg2.errors.InsufficientPrivilege as exc:
        # The first write of a run: a read-only URL (the dashboard's, in .env) stops here.
        info = conn.info
        raise ConfigError(
            f"zetl transform writes to the warehouse as {TRANSFORM_ROLE}, not as {info.user}"
            f" ({first_line(exc)}): set WAREHOUSE_DATABASE_URL to postgresql://"
            f"{TRANSFORM_ROLE}:PASSWORD@{info.host}:{info.port}/{info.dbname}"
        ) from exc
    finally:
        conn.close()


def _write_run(conn: psycopg2.extensions.connection, run: RunOutcome) -> None:
    """The run's row, created with its table on the first run."""
    with conn, conn.cursor() as cur:
        cur.execute("SELECT to_regclass('zetl_transform.run_log') IS NOT NULL")
        row = cur.fetchone()
        if not (row and row[0]):
            cur.execute(RUN_LOG_DDL)
        cur.execute(
            """
            INSERT INTO zetl_transform.run_log (run_id, started_at, finished_at, success,
                command, selector, full_refresh, models_ok, models_error, tests_failed,
                message)
            VALUES (%(run_id)s, %(started_at)s, %(finished_at)s, %(success)s, %(command)s,
                %(selector)s, %(full_refresh)s, %(models_ok)s, %(models_error)s,
                %(tests_failed)s, %(message)s)
            ON CONFLICT (run_id) DO UPDATE SET finished_at = EXCLUDED.finished_at,
                success = EXCLUDED.success, models_ok = EXCLUDED.models_ok,
                models_error = EXCLUDED.models_error, tests_failed = EXCLUDED.tests_failed,
                message = EXCLUDED.message
            """,
            {
                k: v
                for k, v in vars(run).items()
                if k not in ("failures", "node_seconds", "unit_tests_ok")
            }
            | {"success": run.success if run.finished_at else None},
        )
