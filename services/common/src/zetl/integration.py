"""The zero-ETL integration's status, read where Redshift shows it: the system views
``svv_integration`` and ``svv_integration_table_state``, resolved unqualified in the warehouse
database (the replicator keeps the same views there locally, under the same names and
columns). This is the one reader of those views and the one list of table states; every
service that watches replication uses it.

Redshift types the views' text columns ``character(128)``, which comes back blank-padded: every
value read here is stripped (``text``), so callers compare plain strings.

psycopg2 and the standard library only: every image installs this package.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from importlib import resources

import psycopg2.extensions

INTEGRATION_VIEW = "svv_integration"
TABLE_STATE_VIEW = "svv_integration_table_state"
# svv_integration.state of an integration that stopped (locally: a replicator gone silent).
ERROR_STATE = "ErrorState"


class TableState(StrEnum):
    """A replicated table's state, as Redshift names them (SVV_INTEGRATION_TABLE_STATE and
    SYS_INTEGRATION_TABLE_STATE_CHANGE). The replicator's state store holds ``Initializing``
    while a table's copy runs; the views show it under Redshift's name, ``ResyncInitiated``."""

    SYNCED = "Synced"
    INITIALIZING = "Initializing"
    RESYNC_INITIATED = "ResyncInitiated"
    RESYNC_REQUIRED = "ResyncRequired"
    FAILED = "Failed"
    # The table was dropped on the source (or left out of the data filter) and from the target.
    DELETED = "Deleted"
    # HISTORY_MODE: the source table was dropped; its history stays in the target, queryable.
    DROPPED_SOURCE = "DroppedSource"
    # The target table was deleted to be copied again (under its new name or afresh): only in
    # SYS_INTEGRATION_TABLE_STATE_CHANGE, followed by the table's ResyncInitiated.
    RESYNC_DELETED = "ResyncDeleted"


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


def text(value: object) -> str | None:
    """A text column's value as a plain string: ``character(n)`` comes back blank-padded."""
    return None if value is None else str(value).rstrip(" ")


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
    return [
        TableStatus(text(s) or "", text(t) or "", text(st) or "", text(reason), rows, updated)
        for s, t, st, reason, rows, updated in cur.fetchall()
    ]


_INTEGRATIONS_SQL = (
    "SELECT target_database, integration_id, state, current_lag,"
    " last_replicated_checkpoint, total_tables_replicated, total_tables_failed"
    f" FROM {INTEGRATION_VIEW}"
)


def read_integrations(
    cur: psycopg2.extensions.cursor, replica_database: str | None = None
) -> list[IntegrationStatus] | None:
    """svv_integration's rows, by target database: the integration into ``replica_database``,
    or every integration when it is None. The state and lag are the view's, computed when it
    is read (a silent replicator is in ErrorState with a growing lag), never a stored sample.
    None when the view does not exist (yet)."""
    if not has_views(cur, INTEGRATION_VIEW):
        return None
    if replica_database is None:
        cur.execute(_INTEGRATIONS_SQL + " ORDER BY target_database")
    else:
        cur.execute(_INTEGRATIONS_SQL + " WHERE target_database = %s", (replica_database,))
    return [
        IntegrationStatus(
            text(target) or "",
            text(integration_id) or "",
            text(state) or "",
            None if lag is None else float(lag) / 1000.0,
            text(checkpoint),
            replicated,
            failed,
        )
        for target, integration_id, state, lag, checkpoint, replicated, failed in cur.fetchall()
    ]


def read_integration(
    cur: psycopg2.extensions.cursor, replica_database: str
) -> IntegrationStatus | None:
    """The integration whose target is ``replica_database``; None when there is none (or no
    view)."""
    found = read_integrations(cur, replica_database)
    return found[0] if found else None


# --- the target database's options ---------------------------------------------------------


@dataclass(frozen=True)
class DatabaseOption:
    """One option of ``CREATE DATABASE ... FROM INTEGRATION ... SET`` and ``ALTER DATABASE ...
    INTEGRATION SET`` (Redshift's CREATE DATABASE / ALTER DATABASE pages). The one definition:
    ``zetl database set``, the Redshift front, the state store and ``zetl aws`` all read it."""

    name: str  # as Redshift spells it
    default: bool | int | None
    maximum: int | None = None  # integer options: 0..maximum
    # Not AWS's for an RDS for PostgreSQL source: zetl's local extension, never sent to AWS.
    local_only: str | None = None

    @property
    def column(self) -> str:
        """Its column in the replica's ``zetl.integration``."""
        return self.name.lower()

    @property
    def is_integer(self) -> bool:
        return self.maximum is not None

    def parse(self, text: str) -> bool | int:
        """The option's value from its SQL text; ValueError (its one-line reason) if not one."""
        if self.maximum is not None:
            if not text.isdigit() or int(text) > self.maximum:
                raise ValueError(
                    f"{self.name} {text!r}: seconds, a whole number 0 to {self.maximum}"
                )
            return int(text)
        if text.upper() not in ("TRUE", "FALSE"):
            raise ValueError(f"{self.name} {text!r}: TRUE or FALSE")
        return text.upper() == "TRUE"

    def sql(self, value: bool | int) -> str:
        """``NAME = value`` as Redshift takes it."""
        if self.maximum is not None:
            if isinstance(value, bool) or not 0 <= int(value) <= self.maximum:
                raise ValueError(f"{self.name} {value!r}: a whole number 0 to {self.maximum}")
            return f"{self.name} {int(value)}"
        if not isinstance(value, bool):
            raise ValueError(f"{self.name} {value!r}: TRUE or FALSE")
        return f"{self.name} = {'TRUE' if value else 'FALSE'}"


REFRESH_INTERVAL_MAX = 432_000  # seconds (five days): ALTER DATABASE's bound
DATABASE_OPTIONS = {
    o.name: o
    for o in (
        DatabaseOption("QUERY_ALL_STATES", False),
        DatabaseOption("ACCEPTINVCHARS", False),
        DatabaseOption("REFRESH_INTERVAL", None, REFRESH_INTERVAL_MAX),
        DatabaseOption("TRUNCATECOLUMNS", False),
        DatabaseOption(
            "HISTORY_MODE",
            False,
            local_only=(
                "AWS's history mode page lists Aurora MySQL, Aurora PostgreSQL, RDS for MySQL and"
                " DynamoDB sources, not RDS for PostgreSQL: zetl's HISTORY_MODE is a local"
                " extension"
            ),
        ),
        DatabaseOption("AUTO_REMEDIATION", False),
    )
}


def set_clause(values: dict[str, bool | int | None]) -> str:
    """``SET A = TRUE B 60 ...`` for AWS, for the options in ``values`` (unset ones: None, left
    out); empty when there is nothing to set. ValueError on an unknown option, a bad value or
    an option AWS does not have for this source (HISTORY_MODE)."""
    parts = []
    for name, value in values.items():
        option = DATABASE_OPTIONS.get(name.upper())
        if option is None:
            raise ValueError(f"unknown option {name!r}: one of {', '.join(DATABASE_OPTIONS)}")
        if value is None:
            continue
        if option.local_only:
            raise ValueError(f"{option.name} cannot be set on AWS: {option.local_only}")
        parts.append(option.sql(value))
    return "SET " + " ".join(parts) if parts else ""


# --- the source versions zero-ETL supports ---------------------------------------------------


def zero_etl_minimum_minors() -> dict[int, int]:
    """The lowest minor of each RDS for PostgreSQL major zero-ETL supports, {major: minor}, from
    ``zero_etl_versions.json`` (Terraform's source module reads the same file)."""
    text = resources.files("zetl").joinpath("zero_etl_versions.json").read_text()
    return {int(major): int(minor) for major, minor in json.loads(text)["minimum_minor"].items()}
