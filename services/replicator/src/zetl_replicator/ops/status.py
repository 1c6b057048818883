"""What ``zetl status`` reports: the monitoring views of the warehouse database, read into typed
rows, and the slot's health when the source answers (when it does not, the replica's side is
reported all the same).

The state and lag are the views', which say what is true now (a replicator that stopped or
went silent is in ErrorState, its lag growing with its silence), so status, the orchestration
gate and the dashboard agree; with the source at hand the lag in bytes is the source's current
WAL position against the replica's applied one, read now."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import psycopg2

from zetl.db import connect
from zetl.errors import ConfigError, DataError, first_line
from zetl.integration import ERROR_STATE, read_integration, read_tables
from zetl_replicator.config import ReplicatorConfig
from zetl_replicator.source import server
from zetl_replicator.source.pgoutput import lsn_to_str, str_to_lsn

# What only zetl keeps beside the views (zetl.integration reads the views themselves): the
# replicator's last report and error, and each table's applied row count.
_REPORT_SQL = """
SELECT last_error, heartbeat FROM zetl.integration_status WHERE target_database = %s
"""
_ROWS_APPLIED_SQL = """
SELECT schema_name || '.' || table_name, rows_applied
FROM zetl.integration_table_status WHERE target_database = %s
"""


@dataclass(frozen=True)
class IntegrationRow:
    """svv_integration's row with the replicator's last report."""

    integration_id: str
    state: str
    lag_seconds: float | None
    last_replicated_checkpoint: str | None
    tables_replicated: int
    tables_failed: int
    last_error: str | None
    heartbeat: datetime


@dataclass(frozen=True)
class TableRow:
    """One table of svv_integration_table_state, with the rows zetl applied to it."""

    table: str  # schema.table
    state: str
    reason: str | None
    table_rows: int | None
    rows_applied: int
    updated_at: datetime | None


@dataclass(kw_only=True)
class Status:
    """The integration, its slot and its tables, as ``zetl status`` shows them."""

    integration_id: str
    integration_state: str
    last_error: str | None
    reported_at: str
    slot: str
    slot_health: str | None = None  # the slot's wal_status; "missing": no slot
    slot_active: bool | None = None
    source_lsn: str | None = None
    source_error: str | None = None  # the source did not answer: why
    applied_lsn: str | None
    lag_bytes: int | None = None
    lag_seconds: float | None
    tables_replicated: int
    tables_failed: int
    tables: list[TableRow] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        """The report as ``zetl status --json`` prints it."""
        data = asdict(self)
        for table in data["tables"]:
            if table["updated_at"] is not None:
                table["updated_at"] = table["updated_at"].isoformat()
        return data


def read_status(config: ReplicatorConfig) -> Status:
    """The monitoring views' report for ``config``'s replica database, with the slot's health
    when the source answers. DataError when the replicator has not reported yet."""
    integration, tables = _read_views(config)
    applied_text = integration.last_replicated_checkpoint
    status = Status(
        integration_id=integration.integration_id,
        integration_state=integration.state,
        last_error=integration.last_error,
        reported_at=integration.heartbeat.isoformat(),
        slot=config.slot,
        applied_lsn=applied_text,
        lag_seconds=integration.lag_seconds,
        tables_replicated=integration.tables_replicated,
        tables_failed=integration.tables_failed,
        tables=tables,
    )
    _add_slot_health(status, config)
    return status


def _read_views(config: ReplicatorConfig) -> tuple[IntegrationRow, list[TableRow]]:
    not_initialised = DataError(
        f"replica database {config.replica_database} is not initialised: run zetl replicate"
    )
    dev = connect(config.warehouse_url)
    try:
        dev.set_session(readonly=True)
        with dev.cursor() as cur:
            view = read_integration(cur, config.replica_database)
            states = read_tables(cur, config.replica_database)
            if view is None or states is None:
                raise not_initialised
            cur.execute(_REPORT_SQL, (config.replica_database,))
            report = cur.fetchone()
            if report is None:
                raise not_initialised
            cur.execute(_ROWS_APPLIED_SQL, (config.replica_database,))
            rows_applied = dict(cur.fetchall())
    finally:
        dev.close()
    last_error, heartbeat = report
    row = IntegrationRow(
        view.integration_id,
        view.state,
        view.lag_seconds,
        view.last_replicated_checkpoint,
        view.total_tables_replicated or 0,
        view.total_tables_failed or 0,
        last_error,
        heartbeat,
    )
    tables = []
    for t in states:
        name = f"{t.schema_name}.{t.table_name}"
        if name in rows_applied:  # the join the views' reader does not need
            tables.append(
                TableRow(
                    name,
                    t.table_state,
                    t.reason,
                    t.table_rows,
                    rows_applied[name],
                    t.last_updated_timestamp,
                )
            )
    return row, tables


def _add_slot_health(status: Status, config: ReplicatorConfig) -> None:
    """The slot's health and the lag in bytes, from the source; its error when it is down."""
    try:
        src = server.connect_source(config.source_url)
    except ConfigError as exc:  # the source is down: the replica's side still stands
        status.source_error = str(exc)
        return
    try:
        slot = server.slot_info(src, config.slot)
        with src.cursor() as cur:
            cur.execute("SELECT pg_current_wal_lsn()::text")
            row = cur.fetchone()
    except (psycopg2.Error, ConfigError) as exc:  # ConfigError: ConnectionLost, say
        status.source_error = first_line(exc)
        return
    finally:
        src.close()
    current = str_to_lsn(row[0]) if row else 0
    status.slot_health = (slot.wal_status or "unknown") if slot else "missing"
    status.slot_active = bool(slot and slot.active)
    status.source_lsn = lsn_to_str(current)
    if status.applied_lsn:
        applied = str_to_lsn(status.applied_lsn)
        status.lag_bytes = max(0, current - applied)
        if applied >= current and status.integration_state != ERROR_STATE:
            status.lag_seconds = 0.0  # caught up, however old the last commit is
