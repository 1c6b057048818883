"""The run record: one row per DAG run in the warehouse, where the dashboard reads it.

``zetl_orchestration.dag_run`` (dag_id, run_id, started_at, finished_at, outcome, reason) in the
warehouse database. The SQL is the subset Redshift and Postgres share (no ON CONFLICT, no
CHECK constraints), so the record works on both targets.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg2
import psycopg2.extensions

RUNNING = "running"
SUCCESS = "success"
FAILED = "failed"
# Redshift's widest varchar; Postgres takes it too.
REASON_LIMIT = 65535

_DDL = (
    "CREATE SCHEMA IF NOT EXISTS zetl_orchestration",
    "CREATE TABLE IF NOT EXISTS zetl_orchestration.dag_run ("
    " dag_id varchar(250) NOT NULL,"
    " run_id varchar(250) NOT NULL,"
    " started_at timestamptz NOT NULL,"
    " finished_at timestamptz,"
    " outcome varchar(16) NOT NULL,"
    " reason varchar(65535),"
    " PRIMARY KEY (dag_id, run_id))",
)


def _clip(reason: str | None) -> str | None:
    if reason is None:
        return None
    # varchar length counts bytes on Redshift: clip the encoded text, then back to whole chars.
    return reason.encode("utf-8")[:REASON_LIMIT].decode("utf-8", "ignore")


@contextmanager
def _cursor(warehouse_url: str, *, create: bool = False) -> Iterator[psycopg2.extensions.cursor]:
    """A cursor in one committed transaction; ``create`` first makes sure the table exists."""
    conn = psycopg2.connect(warehouse_url)
    try:
        with conn, conn.cursor() as cur:
            if create:
                # Only what is missing: CREATE SCHEMA IF NOT EXISTS still asks for CREATE on
                # the database, which the orchestration role lacks (its schema is made for it).
                cur.execute(
                    "SELECT (SELECT count(*) FROM information_schema.schemata"
                    " WHERE schema_name = 'zetl_orchestration'),"
                    " (SELECT count(*) FROM information_schema.tables"
                    " WHERE table_schema = 'zetl_orchestration' AND table_name = 'dag_run')"
                )
                schemas, tables = cur.fetchone() or (0, 0)
                create_schema, create_table = _DDL
                if not schemas:
                    cur.execute(create_schema)
                if not tables:
                    cur.execute(create_table)
            yield cur
    finally:
        conn.close()


def record_start(warehouse_url: str, dag_id: str, run_id: str) -> None:
    """Mark the run as started (a cleared and rerun run starts afresh)."""
    with _cursor(warehouse_url, create=True) as cur:
        cur.execute(
            "UPDATE zetl_orchestration.dag_run SET started_at = now(), finished_at = NULL,"
            " outcome = %s, reason = NULL WHERE dag_id = %s AND run_id = %s",
            (RUNNING, dag_id, run_id),
        )
        if cur.rowcount == 0:
            cur.execute(
                "INSERT INTO zetl_orchestration.dag_run"
                " (dag_id, run_id, started_at, outcome) VALUES (%s, %s, now(), %s)",
                (dag_id, run_id, RUNNING),
            )


def record_failure_reason(warehouse_url: str, dag_id: str, run_id: str, reason: str) -> None:
    """Keep the first failure's reason: later ones are usually its consequences."""
    with _cursor(warehouse_url) as cur:
        cur.execute(
            "UPDATE zetl_orchestration.dag_run SET reason = %s"
            " WHERE dag_id = %s AND run_id = %s AND reason IS NULL",
            (_clip(reason), dag_id, run_id),
        )


def record_end(
    warehouse_url: str, dag_id: str, run_id: str, outcome: str, reason: str | None
) -> None:
    """Close the run: its end, its outcome, and (failed) the first reason recorded or this one."""
    with _cursor(warehouse_url, create=True) as cur:
        cur.execute(
            "UPDATE zetl_orchestration.dag_run SET finished_at = now(), outcome = %s,"
            " reason = CASE WHEN %s = %s THEN NULL ELSE coalesce(reason, %s) END"
            " WHERE dag_id = %s AND run_id = %s",
            (outcome, outcome, SUCCESS, _clip(reason), dag_id, run_id),
        )
        if cur.rowcount == 0:
            # The start was never recorded (the warehouse was down then): record it all now.
            cur.execute(
                "INSERT INTO zetl_orchestration.dag_run"
                " (dag_id, run_id, started_at, finished_at, outcome, reason)"
                " VALUES (%s, %s, now(), now(), %s, %s)",
                (dag_id, run_id, outcome, None if outcome == SUCCESS else _clip(reason)),
            )
