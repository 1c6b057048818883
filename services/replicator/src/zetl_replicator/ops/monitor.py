"""Replication monitoring in the warehouse database, under Redshift's own names.

On Redshift an analyst watches a zero-ETL integration through the system views
``svv_integration`` and ``svv_integration_table_state``, from whatever database they work in.
Here the same views (same columns, same state values) live in the warehouse database
(``WAREHOUSE_DATABASE_URL``, ``dev``), in schema ``public`` so that they resolve unqualified,
and monitoring SQL written locally runs unchanged on Redshift.

Postgres cannot query across databases, and the replica database holds the state (written
in the same transactions as the data): a thread of the replicator copies it into
``zetl.integration_status`` / ``zetl.integration_table_status`` of the warehouse database
every few seconds and at once after a state change, and appends a lag sample to
``zetl.lag_history`` (kept for ``LAG_HISTORY_DAYS``). Monitoring never stops replication:
its errors are logged and retried.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

import psycopg2
import psycopg2.extensions

from zetl.db import ConnectionLost, connect
from zetl.errors import ConfigError, MissingDatabaseError
from zetl.integration import ERROR_STATE, TableState
from zetl_replicator.destination.replica import connect_replica
from zetl_replicator.source.pgoutput import lsn_to_str
from zetl_replicator.state.store import PostgresStateStore, TableStatus

log = logging.getLogger(__name__)

SAMPLE_SECONDS = 2.0  # how often the views and the lag history are brought up to date
LAG_HISTORY_DAYS = 7  # lag samples older than this are deleted
STALE_SECONDS = 30  # a replicator silent for longer is not replicating: ErrorState

WAREHOUSE_DDL = f"""
CREATE SCHEMA IF NOT EXISTS zetl;
CREATE TABLE IF NOT EXISTS zetl.integration_status (
    target_database text PRIMARY KEY,
    integration_id uuid NOT NULL,
    source text NOT NULL DEFAULT 'PostgreSQL',
    state text NOT NULL,
    current_lag bigint,
    last_replicated_checkpoint text,
    creation_time timestamptz NOT NULL,
    refresh_interval integer,
    source_database text,
    is_history_mode boolean NOT NULL DEFAULT false,
    last_error text,
    heartbeat timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS zetl.integration_table_status (
    target_database text NOT NULL,
    schema_name text NOT NULL,
    table_name text NOT NULL,
    table_state text NOT NULL,
    table_last_replicated_checkpoint text,
    reason text,
    last_updated_timestamp timestamptz NOT NULL,
    table_rows bigint,
    table_size bigint,
    is_history_mode boolean NOT NULL DEFAULT false,
    rows_applied bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (target_database, schema_name, table_name)
);
CREATE TABLE IF NOT EXISTS zetl.lag_history (
    sampled_at timestamptz NOT NULL DEFAULT now(),
    lag_seconds double precision,
    applied_lsn pg_lsn,
    target_database text
);
CREATE INDEX IF NOT EXISTS lag_history_sampled_at ON zetl.lag_history (sampled_at);
CREATE OR REPLACE VIEW public.svv_integration_table_state AS
SELECT i.integration_id::varchar(128) AS integration_id,
       t.target_database::varchar(128) AS target_database,
       t.schema_name::varchar(128) AS schema_name,
       t.table_name::varchar(128) AS table_name,
       t.table_state::varchar(128) AS table_state,
       t.table_last_replicated_checkpoint::varchar(128) AS table_last_replicated_checkpoint,
       t.reason::varchar(256) AS reason,
       (t.last_updated_timestamp AT TIME ZONE 'UTC') AS last_updated_timestamp,
       t.table_rows,
       t.table_size,
       t.is_history_mode
FROM zetl.integration_table_status t
JOIN zetl.integration_status i USING (target_database);
CREATE OR REPLACE VIEW public.svv_integration AS
SELECT i.integration_id::varchar(128) AS integration_id,
       i.target_database::varchar(128) AS target_database,
       i.source::varchar(128) AS source,
       (CASE WHEN i.heartbeat < now() - interval '{STALE_SECONDS} seconds' THEN '{ERROR_STATE}'
             ELSE i.state END)::varchar(128) AS state,
       i.current_lag,
       i.last_replicated_checkpoint::varchar(128) AS last_replicated_checkpoint,
       (SELECT count(*) FROM zetl.integration_table_status t
         WHERE t.target_database = i.target_database
           AND t.table_state = '{TableState.SYNCED}')::integer
         AS total_tables_replicated,
       (SELECT count(*) FROM zetl.integration_table_status t
         WHERE t.target_database = i.target_database
           AND t.table_state = '{TableState.FAILED}')::integer
         AS total_tables_failed,
       (i.creation_time AT TIME ZONE 'UTC') AS creation_time,
       i.refresh_interval,
       i.source_database::varchar(128) AS source_database,
       i.is_history_mode
FROM zetl.integration_status i;
GRANT USAGE ON SCHEMA zetl TO PUBLIC;
GRANT SELECT ON ALL TABLES IN SCHEMA zetl TO PUBLIC;
GRANT SELECT ON public.svv_integration_table_state, public.svv_integration TO PUBLIC;
"""

# The replica tables' size and kind, beside their states (which the state store reads).
_TABLE_STATS_SQL = """
SELECT n.nspname || '.' || c.relname, st.n_live_tup,
       (pg_total_relation_size(c.oid) + 524288) / 1048576,
       EXISTS (SELECT FROM pg_attribute a WHERE a.attrelid = c.oid
               AND a.attname = '_record_is_active' AND NOT a.attisdropped)
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_stat_user_tables st ON st.relid = c.oid
WHERE c.relkind = 'r' AND n.nspname || '.' || c.relname = ANY (%s)
"""
# Redshift's table states; zetl's own "Initializing" (a copy under way) is ResyncInitiated.
_REDSHIFT_STATE = {TableState.INITIALIZING: TableState.RESYNC_INITIATED}


@dataclass(frozen=True)
class Sample:
    """What the replicator reports about itself at one moment."""

    state: str  # svv_integration.state
    lag_seconds: float | None
    applied_lsn: str | None
    last_error: str | None
    refresh_interval: int | None = None


def ensure_monitoring(warehouse_url: str) -> None:
    """Create the monitoring tables and views in the warehouse database (idempotent)."""
    conn = connect(warehouse_url)
    try:
        with conn, conn.cursor() as cur:
            # Two replicators starting at once must not race on CREATE ... IF NOT EXISTS.
            cur.execute("SELECT pg_advisory_xact_lock(hashtext('zetl.monitoring'))")
            cur.execute(WAREHOUSE_DDL)
    finally:
        conn.close()


class Monitor(threading.Thread):
    """Keeps the warehouse database's monitoring views in step with one replica database."""

    def __init__(
        self,
        warehouse_url: str,
        replica_database: str,
        slot: str,
        source_database: str,
        sample: Callable[[], Sample],
    ) -> None:
        super().__init__(name="zetl-monitor", daemon=True)
        self.warehouse_url = warehouse_url
        self.replica_database = replica_database
        self.slot = slot
        self.source_database = source_database
        self.sample = sample
        self.stopping = threading.Event()
        self.poked = threading.Event()
        self._warehouse: psycopg2.extensions.connection | None = None
        self._replica: psycopg2.extensions.connection | None = None
        self._ready = False
        self._warned = False

    def poke(self) -> None:
        """A table's state changed: publish it now rather than at the next sample."""
        self.poked.set()

    def stop(self) -> None:
        self.stopping.set()
        self.poked.set()
        self.join(timeout=10)

    def run(self) -> None:
        while not self.stopping.is_set():
            self.publish()
            self.poked.wait(SAMPLE_SECONDS)
            self.poked.clear()
        self.publish()  # the last word: e.g. that nothing replicates any more
        for conn in (self._warehouse, self._replica):
            if conn is not None and not conn.closed:
                conn.close()

    def publish(self) -> None:
        try:
            self._publish()
            self._warned = False
        except (ConnectionLost, psycopg2.Error, OSError) as exc:
            # The replica database may not exist yet, a server may be restarting: next time.
            self._close()
            if not self._warned and not isinstance(exc, ConnectionLost):
                log.warning("monitoring not updated", extra={"error": str(exc).strip()})
            self._warned = True
        except MissingDatabaseError:  # not yet: the replicator creates the replica database first
            self._close()
        except ConfigError as exc:
            self._close()
            if not self._warned:
                log.warning("monitoring not updated", extra={"error": str(exc).strip()})
                self._warned = True
        except Exception as exc:  # monitoring must never stop replication
            if not self._warned:
                log.warning("monitoring not updated", extra={"error": str(exc).strip()})
            self._warned = True

    def _close(self) -> None:
        for conn in (self._warehouse, self._replica):
            if conn is not None and not conn.closed:
                conn.close()
        self._warehouse = self._replica = None

    def _connections(
        self,
    ) -> tuple[psycopg2.extensions.connection, psycopg2.extensions.connection]:
        if not self._ready:
            ensure_monitoring(self.warehouse_url)
            self._ready = True
        if self._warehouse is None or self._warehouse.closed:
            self._warehouse = connect(self.warehouse_url)
        if self._replica is None or self._replica.closed:
            self._replica = connect_replica(self.warehouse_url, self.replica_database)
            self._replica.set_session(readonly=True, autocommit=True)
        return self._warehouse, self._replica

    def _publish(self) -> None:
        sample = self.sample()
        warehouse, replica = self._connections()
        with replica.cursor() as cur:
            cur.execute(
                "SELECT integration_id, creation_time, history_mode FROM zetl.integration LIMIT 1"
            )
            integration = cur.fetchone()
            if integration is None:
                return  # the state store is being created
        store = PostgresStateStore(replica)
        states = store.table_states()
        # The durable position, not this process's: it may not have applied anything yet.
        progress = store.progress(self.slot)
        tables = _table_rows(replica, states, progress.applied_lsn if progress else None)
        applied_lsn = lsn_to_str(progress.applied_lsn) if progress else sample.applied_lsn
        lag_ms = None if sample.lag_seconds is None else round(sample.lag_seconds * 1000)
        with warehouse, warehouse.cursor() as cur:
            cur.execute(
                "INSERT INTO zetl.integration_status AS i (target_database, integration_id,"
                " state, current_lag, last_replicated_checkpoint, creation_time,"
                " refresh_interval, source_database, last_error, is_history_mode, heartbeat)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, now())"
                " ON CONFLICT (target_database) DO UPDATE SET"
                " integration_id = excluded.integration_id, state = excluded.state,"
                " current_lag = excluded.current_lag,"
                " last_replicated_checkpoint = excluded.last_replicated_checkpoint,"
                " creation_time = excluded.creation_time,"
                " refresh_interval = excluded.refresh_interval,"
                " source_database = excluded.source_database,"
                " last_error = excluded.last_error,"
                " is_history_mode = excluded.is_history_mode, heartbeat = now()",
                (
                    self.replica_database,
                    integration[0],
                    sample.state,
                    lag_ms,
                    applied_lsn,
                    integration[1],
                    sample.refresh_interval,
                    self.source_database,
                    sample.last_error,
                    integration[2],
                ),
            )
            cur.execute(
                "DELETE FROM zetl.integration_table_status WHERE target_database = %s",
                (self.replica_database,),
            )
            if tables:  # one statement for all: this runs beside a busy applier
                values = b",".join(
                    cur.mogrify(
                        "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                        (self.replica_database, *row),
                    )
                    for row in tables
                )
                cur.execute(
                    b"INSERT INTO zetl.integration_table_status (target_database, schema_name,"
                    b" table_name, table_state, table_last_replicated_checkpoint, reason,"
                    b" last_updated_timestamp, table_rows, table_size, rows_applied,"
                    b" is_history_mode) VALUES " + values
                )
            if sample.lag_seconds is not None:  # only while this process replicates
                cur.execute(
                    "INSERT INTO zetl.lag_history (lag_seconds, applied_lsn, target_database)"
                    " VALUES (%s, %s::pg_lsn, %s)",
                    (sample.lag_seconds, applied_lsn, self.replica_database),
                )
            cur.execute(  # an index range scan: next to nothing when there is nothing to delete
                "DELETE FROM zetl.lag_history WHERE sampled_at < now() - make_interval(days => %s)",
                (LAG_HISTORY_DAYS,),
            )


def _table_rows(
    replica: psycopg2.extensions.connection,
    states: dict[str, TableStatus],
    applied_lsn: int | None,
) -> list[tuple[object, ...]]:
    """Each table's row of ``zetl.integration_table_status`` (after target_database): its
    state as Redshift names it, the position it is replicated to, reason, time, rows, size,
    rows applied, history mode."""
    with replica.cursor() as cur:
        cur.execute(_TABLE_STATS_SQL, (list(states),))
        stats = {name: (rows, size, history) for name, rows, size, history in cur.fetchall()}
    found: list[tuple[object, ...]] = []
    for name, s in states.items():
        rows, size, history = stats.get(name, (None, None, False))
        positions = [lsn for lsn in (s.sync_lsn, applied_lsn) if lsn is not None]
        if s.state != TableState.SYNCED:
            positions = [s.sync_lsn] if s.sync_lsn is not None else []
        checkpoint = lsn_to_str(max(positions)) if positions else None
        state = _REDSHIFT_STATE.get(s.state, str(s.state))
        when = s.updated_at
        found.append(
            (
                s.schema,
                s.name,
                state,
                checkpoint,
                s.reason,
                when,
                rows,
                size,
                s.rows_applied,
                history,
            )
        )
    return found
