"""The replication gate: the daily refresh runs only on a healthy, fresh replica.

Healthy means every replicated table is ``Synced`` (or ``DroppedSource``: its history kept,
final), the integration is not in ``ErrorState`` and replication lags the source by no more
than a bound. ``read_replication_health`` is the
one place that knows where those facts live: the system views ``svv_integration_table_state``
(``table_state`` per table) and ``svv_integration`` (``state``, ``current_lag`` in
milliseconds), resolved unqualified in the warehouse database, on Redshift and locally alike
(the replicator keeps them there), for the integration whose target is the replica database.

The platform's own reader of those views is ``zetl.integration``; the DAG folder runs without
the zetl package (Airflow's image, Amazon MWAA), so this module reads them itself and
orchestration/tests/test_health_reader.py holds both to the same answer and state names.

``svv_integration.current_lag`` is the lag now, not the replicator's last word: locally the
view adds the silence of a replicator that stopped or stopped reporting (and says ErrorState),
so the gate reads nothing else. The views' text columns are ``character(128)``, blank-padded
as on Redshift: every text value is stripped.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg2
import psycopg2.extensions

SYNCED = "Synced"
# A history-mode table whose source was dropped: settled and queryable, its history final.
DROPPED_SOURCE = "DroppedSource"
ERROR_STATE = "ErrorState"  # svv_integration.state of an integration that stopped


@dataclass(frozen=True)
class TableHealth:
    schema: str
    table: str
    state: str
    reason: str | None


@dataclass(frozen=True)
class ReplicationHealth:
    tables: list[TableHealth]
    lag_seconds: float | None  # None: replication never recorded any progress
    source: str  # where the facts were read, for the log and the failure reason
    integration_state: str | None = None  # svv_integration.state where known


class ReplicationGateError(Exception):
    """Replication is not healthy enough to refresh on; the message says why."""


def check(health: ReplicationHealth, max_lag_seconds: float) -> None:
    """Raise ReplicationGateError with every reason at once, or return when the replica is fit."""
    problems: list[str] = []
    if health.integration_state == ERROR_STATE:
        problems.append(f"the integration is in {ERROR_STATE}")
    if not health.tables:
        problems.append("no replicated tables")
    unsynced = [t for t in health.tables if t.state not in (SYNCED, DROPPED_SOURCE)]
    if unsynced:
        shown = ", ".join(
            f"{t.schema}.{t.table} {t.state}" + (f" ({t.reason})" if t.reason else "")
            for t in unsynced[:10]
        )
        more = f" and {len(unsynced) - 10} more" if len(unsynced) > 10 else ""
        problems.append(f"{len(unsynced)} of {len(health.tables)} tables not Synced: {shown}{more}")
    if health.lag_seconds is None:
        problems.append("replication has recorded no progress yet")
    elif health.lag_seconds > max_lag_seconds:
        problems.append(
            f"replication lag {health.lag_seconds:.0f} s is over the bound of"
            f" {max_lag_seconds:.0f} s (ZETL_MAX_LAG_SECONDS)"
        )
    if problems:
        raise ReplicationGateError(f"replication gate ({health.source}): " + "; ".join(problems))


def read_replication_health(warehouse_url: str, replica_database: str) -> ReplicationHealth:
    """The replication facts of the integration whose target is the replica database."""
    conn = psycopg2.connect(warehouse_url)
    try:
        if not (_is_redshift(conn) or _has_svv_views(conn)):
            raise ReplicationGateError(
                "replication gate: the warehouse database has no svv_integration_table_state /"
                " svv_integration views (the replicator creates them: is it running?)"
            )
        return _from_svv_views(conn, replica_database)
    finally:
        conn.close()


def _is_redshift(conn: psycopg2.extensions.connection) -> bool:
    with conn.cursor() as cur:
        cur.execute("SELECT version()")
        row = cur.fetchone()
    return bool(row and "redshift" in str(row[0]).lower())


def _has_svv_views(conn: psycopg2.extensions.connection) -> bool:
    with conn.cursor() as cur:
        cur.execute(
            "SELECT to_regclass('svv_integration_table_state') IS NOT NULL"
            " AND to_regclass('svv_integration') IS NOT NULL"
        )
        row = cur.fetchone()
    return bool(row and row[0])


def _from_svv_views(
    conn: psycopg2.extensions.connection, replica_database: str
) -> ReplicationHealth:
    """The integration whose target database is the replica database."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT schema_name, table_name, table_state, reason"
            " FROM svv_integration_table_state WHERE target_database = %s"
            " ORDER BY schema_name, table_name",
            (replica_database,),
        )
        tables = [
            TableHealth(_text(s), _text(t), _text(st), _text(r) or None)
            for s, t, st, r in cur.fetchall()
        ]
        cur.execute(
            "SELECT state, current_lag FROM svv_integration WHERE target_database = %s",
            (replica_database,),
        )
        row = cur.fetchone()
        state = _text(row[0]) if row else None
        # current_lag is in milliseconds.
        lag = float(row[1]) / 1000.0 if row and row[1] is not None else None
    conn.rollback()
    return ReplicationHealth(tables, lag, "svv_integration_table_state, svv_integration", state)


def _text(value: object) -> str:
    """A text column's value without Redshift's character(n) padding."""
    return "" if value is None else str(value).rstrip(" ")
