"""The zero-ETL integration's status, read where Redshift shows it: the system views
``svv_integration`` and ``svv_integration_table_state``, resolved unqualified in the warehouse
database (the replicator keeps the same views there locally, under the same names and
columns). This is the one reader of those views and the one list of table states; every
service that watches replication uses it.

psycopg2 and the standard library only: every image installs this package.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import psycopg2.extensions

INTEGRATION_VIEW = "svv_integration"
TABLE_STATE_VIEW = "svv_integration_table_state"
# svv_integration.state of an integration that stopped (locally: a replicator gone silent).
ERROR_STATE = "ErrorState"


class TableState(StrEnum):
    """A replicated table's state. The replicator's state store holds ``Initializing`` while
    a table's initial copy runs; the views show it under Redshift's name, ``ResyncInitiated``."""

    SYNCED = "Synced"
    INITIALIZING = "Initializing"
    RESYNC_INITIATED = "ResyncInitiated"
    RESYNC_REQUIRED = "ResyncRequired"
    FAILED = "Failed"


# States a table leaves by itself: the replicator is still working on it. Failed is final
# until someone acts, so it does not count as unsettled.
UNSETTLED = frozenset(
    {TableState.INITIALIZING, TableState.RESYNC_INITIATED, TableState.RESYNC_REQUIRED}
)


@dataclass(frozen=True)
class TableStatus:
    """One row of svv_integration_table_state (the columns the platform reads)."""

    schema_name: str
    table_name: str
    table_state: str  # a TableState value; kept as text, as Redshift may add states
    reason: str | None
    table_rows: int | None
    last_updated_timestamp: datetime | None

    @property
    def settled(self) -> bool:
        return self.table_state not in UNSETTLED


@dataclass(frozen=True)
class IntegrationStatus:
    """One row of svv_integration: the integration into one target database."""

    target_database: str
    integration_id: str
    state: str
    lag_seconds: float | None  # current_lag is in milliseconds; None before any progress
    last_replicated_checkpoint: str | None
    total_tables_replicated: int | None
    total_tables_failed: int | None


# The column order of TableStatus: a row of this query is a TableStatus.
_TABLES_SQL = (
    "SELECT schema_name, table_name, table_state, reason, table_rows, last_updated_timestamp"
    f" FROM {TABLE_STATE_VIEW}"
)
_ORDER = " ORDER BY schema_name, table_name"


def has_views(cur: psycopg2.extensions.cursor, *views: str) -> bool:
    """Whether every one of ``views`` (both, by default) resolves in this database."""
    for view in views or (TABLE_STATE_VIEW, INTEGRATION_VIEW):
        cur.execute("SELECT to_regclass(%s) IS NOT NULL", (view,))
        row = cur.fetchone()
        if not (row and row[0]):
            return False
    return True


def read_tables(
    cur: psycopg2.extensions.cursor, replica_database: str | None = None
) -> list[TableStatus] | None:
    """Per-table states, by schema and name: of the integration into ``replica_database``, or
    of every integration when it is None. None when the view does not exist (yet)."""
    if not has_views(cur, TABLE_STATE_VIEW):
        return None
    if replica_database is None:
        cur.execute(_TABLES_SQL + _ORDER)
    else:
        cur.execute(_TABLES_SQL + " WHERE target_database = %s" + _ORDER, (replica_database,))
    return [TableStatus(*row) for row in cur.fetchall()]


def read_integration(
    cur: psycopg2.extensions.cursor, replica_database: str
) -> IntegrationStatus | None:
    """The integration whose target is ``replica_database``; None when there is none (or no
    view)."""
    if not has_views(cur, INTEGRATION_VIEW):
        return None
    cur.execute(
        "SELECT target_database, integration_id, state, current_lag,"
        " last_replicated_checkpoint, total_tables_replicated, total_tables_failed"
        f" FROM {INTEGRATION_VIEW} WHERE target_database = %s",
        (replica_database,),
    )
    row = cur.fetchone()
    if row is None:
        return None
    target, integration_id, state, lag, checkpoint, replicated, failed = row
    return IntegrationStatus(
        str(target),
        str(integration_id),
        str(state),
        None if lag is None else float(lag) / 1000.0,
        checkpoint,
        replicated,
        failed,
    )
