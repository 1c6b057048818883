"""Every checkpoint run is stored in the warehouse: ``zetl_dq.checkpoint_result`` in ``dev``.

The dashboard and the orchestration read it. Created on first use; on Redshift the JSON
column is SUPER instead of jsonb.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg2.extensions

from zetl_quality.checks import RESULTS_SCHEMA, Target

RESULTS_TABLE = f"{RESULTS_SCHEMA}.checkpoint_result"


@dataclass(frozen=True)
class CheckpointResult:
    run_id: str
    checkpoint: str
    target: str
    started_at: datetime
    finished_at: datetime
    success: bool
    evaluated: int
    successful: int
    failed: int
    failed_expectations: list[dict[str, Any]]
    report: str


def ensure_table(cur: psycopg2.extensions.cursor, target: Target) -> None:
    json_type = "super" if target is Target.AWS else "jsonb"
    text_type = "varchar(65535)" if target is Target.AWS else "text"
    cur.execute(f"CREATE SCHEMA IF NOT EXISTS {RESULTS_SCHEMA}")
    cur.execute(
        f"""CREATE TABLE IF NOT EXISTS {RESULTS_TABLE} (
            run_id varchar(36) PRIMARY KEY,
            checkpoint varchar(64) NOT NULL,
            target varchar(16) NOT NULL,
            started_at timestamptz NOT NULL,
            finished_at timestamptz NOT NULL,
            success boolean NOT NULL,
            evaluated integer NOT NULL,
            successful integer NOT NULL,
            failed integer NOT NULL,
            failed_expectations {json_type} NOT NULL,
            report {text_type} NOT NULL
        )"""
    )


def store(cur: psycopg2.extensions.cursor, result: CheckpointResult, target: Target) -> None:
    ensure_table(cur, target)
    as_json = "json_parse(%s)" if target is Target.AWS else "%s::jsonb"
    cur.execute(
        f"INSERT INTO {RESULTS_TABLE} (run_id, checkpoint, target, started_at, finished_at,"
        " success, evaluated, successful, failed, failed_expectations, report)"
        f" VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, {as_json}, %s)",
        (
            result.run_id,
            result.checkpoint,
            result.target,
            result.started_at,
            result.finished_at,
            result.success,
            result.evaluated,
            result.successful,
            result.failed,
            json.dumps(result.failed_expectations, default=str),
            result.report[:65535],
        ),
    )
