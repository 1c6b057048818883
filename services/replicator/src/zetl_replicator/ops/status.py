"""What ``zetl status`` reports: the monitoring views of the warehouse database, read into typed
rows, and the slot's health when the source answers (when it does not, the replica's side is
reported all the same)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import psycopg2

from zetl.db import connect
from zetl.errors import ConfigError, DataError, first_line
from zetl_replicator.config import ReplicatorConfig
from zetl_replicator.source import server
from zetl_replicator.source.pgoutput import lsn_to_str, str_to_lsn

# Each query's columns are its row class's fields, in order.
_INTEGRATION_SQL = """
SELECT i.integration_id, i.state, i.current_lag, i.last_replicated_checkpoint,
       i.total_tables_replicated, i.total_tables_failed, s.last_error, s.heartbeat
FROM svv_integration i
JOIN zetl.integration_status s USING (target_database)
WHERE i.target_database = %s
"""
_TABLES_SQL = """
SELECT v.schema_name || '.' || v.table_name, v.table_state, v.reason, v.table_rows,
       t.rows_applied, v.last_updated_timestamp
FROM svv_integration_table_state v
JOIN zetl.integration_table_status t USING (target_database, schema_name, table_name)
WHERE v.target_database = %s
ORDER BY 1
"""


@dataclass(frozen=True)
class IntegrationRow:
    """A row of ``_INTEGRATION_SQL``: svv_integration with the replicator's last report."""

    integration_id: object  # uuid
    state: str
    current_lag_ms: int | None
    last_replicated_checkpoint: str | None
    tables_replicated: int
    tables_failed: int
    last_error: str | None
    heartbeat: datetime


@dataclass(frozen=True)
class TableRow:
    """A row of ``_TABLES_SQL``: one table of svv_integration_table_state."""

    table: str  # schema.table
    state: str
    reason: str | None
    table_rows: int | None
    rows_applied: int
    updated_at: datetime


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
            table["updated_at"] = table["updated_at"].isoformat()
        return data


def read_status(config: ReplicatorConfig) -> Status:
    """The monitoring views' report for ``config``'s replica database, with the slot's health
    when the source answers. DataError when the replicator has not reported yet."""
    integration, tables = _read_views(config)
    applied_text = integration.last_replicated_checkpoint
    status = Status(
        integration_id=str(integration.integration_id),
        integration_state=integration.state,
        last_error=integration.last_error,
        reported_at=integration.heartbeat.isoformat(),
        slot=config.slot,
        applied_lsn=applied_text,
        lag_seconds=None
        if integration.current_lag_ms is None
        else integration.current_lag_ms / 1000,
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
            cur.execute("SELECT to_regclass('svv_integration') IS NOT NULL")
            row = cur.fetchone()
            if not (row and row[0]):
                raise not_initialised
            cur.execute(_INTEGRATION_SQL, (config.replica_database,))
            integration = cur.fetchone()
            if integration is None:
                raise not_initialised
            cur.execute(_TABLES_SQL, (config.replica_database,))
            tables = [TableRow(*r) for r in cur.fetchall()]
    finally:
        dev.close()
    return IntegrationRow(*integration), tables


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
        if applied >= current:
            status.lag_seconds = 0.0  # caught up, however old the last commit is
