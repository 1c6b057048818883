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
from datetime import datetime

import psycopg2
import psycopg2.extensions

from zetl.db import ConnectionLost, connect
from zetl.errors import ConfigError, MissingDatabaseError
from zetl.integration import ERROR_STATE, TableState
from zetl_replicator.destination.replica import connect_replica
from zetl_replicator.source.pgoutput import lsn_to_str, str_to_lsn
from zetl_replicator.state.store import PostgresStateStore, Progress, TableStatus

log = logging.getLogger(__name__)

SAMPLE_SECONDS = 2.0  # how often the views and the lag history are brought up to date
CHECKPOINT_SECONDS = 10.0  # a SYS_INTEGRATION_ACTIVITY cdc row covers at least this long
LAG_HISTORY_DAYS = 7  # lag samples, state changes and activity older than this are deleted
STALE_SECONDS = 30  # a replicator silent for longer is not replicating: ErrorState
# Redshift's sys:monitor: the role whose members read the monitoring views (and superusers).
MONITOR_ROLE = "zetl_sys_monitor"

# Each text column as Redshift types it: character(128) (reason: character(256)), blank-padded.
_C = "::character(128)"

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
ALTER TABLE zetl.integration_status
    ADD COLUMN IF NOT EXISTS latest_detected_change_time timestamptz,
    ADD COLUMN IF NOT EXISTS latest_applied_change_time timestamptz,
    ADD COLUMN IF NOT EXISTS latest_shipped_source_commit_time timestamptz,
    ADD COLUMN IF NOT EXISTS auto_remediation boolean NOT NULL DEFAULT false;
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
CREATE TABLE IF NOT EXISTS zetl.integration_table_state_change (
    target_database text NOT NULL,
    integration_id uuid NOT NULL,
    change_id bigint NOT NULL,  -- the replica's zetl.table_state_change row
    schema_name text NOT NULL,
    table_name text NOT NULL,
    new_state text NOT NULL,
    table_last_replicated_checkpoint text,
    state_change_reason text,
    record_time timestamptz NOT NULL,
    PRIMARY KEY (target_database, integration_id, change_id)
);
CREATE INDEX IF NOT EXISTS integration_table_state_change_time
    ON zetl.integration_table_state_change (record_time);
CREATE TABLE IF NOT EXISTS zetl.integration_activity (
    target_database text NOT NULL,
    integration_id uuid NOT NULL,
    checkpoint_name text NOT NULL,
    checkpoint_type text NOT NULL CHECK (checkpoint_type IN ('snapshot', 'cdc')),
    checkpoint_bytes bigint NOT NULL,
    last_commit_timestamp timestamptz,
    modified_tables integer NOT NULL,
    integration_start_time timestamptz NOT NULL,
    integration_end_time timestamptz NOT NULL,
    end_lsn pg_lsn  -- where the next cdc checkpoint starts
);
CREATE INDEX IF NOT EXISTS integration_activity_end
    ON zetl.integration_activity (target_database, integration_end_time);

-- Dropped and created again: a view's column types cannot be changed in place.
DROP VIEW IF EXISTS public.svv_integration_table_state, public.svv_integration,
    public.sys_integration_table_state_change, public.sys_integration_activity;
CREATE VIEW public.svv_integration_table_state AS
SELECT i.integration_id{_C} AS integration_id,
       t.target_database{_C} AS target_database,
       t.schema_name{_C} AS schema_name,
       t.table_name{_C} AS table_name,
       t.table_state{_C} AS table_state,
       t.table_last_replicated_checkpoint{_C} AS table_last_replicated_checkpoint,
       t.reason::character(256) AS reason,
       (t.last_updated_timestamp AT TIME ZONE 'UTC') AS last_updated_timestamp,
       t.table_rows,
       t.table_size,
       t.is_history_mode
FROM zetl.integration_table_status t
JOIN zetl.integration_status i USING (target_database);
-- state and current_lag say what is true now, not what the replicator said last: one that has
-- not reported for {STALE_SECONDS} s, or said its last word, is in {ERROR_STATE}, and its lag
-- grows with its silence (nothing is applied while it is away).
CREATE VIEW public.svv_integration AS
SELECT i.integration_id{_C} AS integration_id,
       i.target_database{_C} AS target_database,
       i.source{_C} AS source,
       (CASE WHEN i.heartbeat < now() - interval '{STALE_SECONDS} seconds' THEN '{ERROR_STATE}'
             ELSE i.state END){_C} AS state,
       (CASE WHEN i.state = '{ERROR_STATE}'
                  OR i.heartbeat < now() - interval '{STALE_SECONDS} seconds'
             THEN i.current_lag
                  + (extract(epoch FROM now() - i.heartbeat) * 1000)::bigint
             ELSE i.current_lag END) AS current_lag,
       i.last_replicated_checkpoint{_C} AS last_replicated_checkpoint,
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
       i.source_database{_C} AS source_database,
       i.is_history_mode,
       (i.latest_detected_change_time AT TIME ZONE 'UTC') AS latest_detected_change_time,
       (i.latest_applied_change_time AT TIME ZONE 'UTC') AS latest_applied_change_time,
       i.auto_remediation,
       (i.latest_shipped_source_commit_time AT TIME ZONE 'UTC')
         AS latest_shipped_source_commit_time
FROM zetl.integration_status i;
CREATE VIEW public.sys_integration_table_state_change AS
SELECT c.integration_id{_C} AS integration_id,
       c.target_database{_C} AS database_name,
       c.schema_name{_C} AS schema_name,
       c.table_name{_C} AS table_name,
       (CASE WHEN c.new_state = '{TableState.INITIALIZING}' THEN '{TableState.RESYNC_INITIATED}'
             ELSE c.new_state END){_C} AS new_state,
       c.table_last_replicated_checkpoint{_C} AS table_last_replicated_checkpoint,
       c.state_change_reason::character(256) AS state_change_reason,
       (c.record_time AT TIME ZONE 'UTC') AS record_time
FROM zetl.integration_table_state_change c;
CREATE VIEW public.sys_integration_activity AS
SELECT a.integration_id{_C} AS integration_id,
       a.target_database{_C} AS target_database,
       'PostgreSQL'{_C} AS source,
       a.checkpoint_name{_C} AS checkpoint_name,
       a.checkpoint_type::character(16) AS checkpoint_type,
       a.checkpoint_bytes,
       (a.last_commit_timestamp AT TIME ZONE 'UTC') AS last_commit_timestamp,
       a.modified_tables,
       (a.integration_start_time AT TIME ZONE 'UTC') AS integration_start_time,
       (a.integration_end_time AT TIME ZONE 'UTC') AS integration_end_time
FROM zetl.integration_activity a;

-- Access as on Redshift: superusers and members of the sys:monitor role, nobody else.
DO $$
DECLARE
    relation regclass;
    grantee oid;
BEGIN
    FOREACH relation IN ARRAY ARRAY[
        'public.svv_integration_table_state', 'public.svv_integration',
        'public.sys_integration_table_state_change', 'public.sys_integration_activity',
        'zetl.integration_status', 'zetl.integration_table_status', 'zetl.lag_history',
        'zetl.integration_table_state_change', 'zetl.integration_activity']::regclass[]
    LOOP
        EXECUTE format('REVOKE ALL ON %s FROM PUBLIC', relation);
        FOR grantee IN
            SELECT DISTINCT a.grantee FROM pg_class c, aclexplode(c.relacl) a
            WHERE c.oid = relation AND a.grantee <> 0 AND a.grantee <> c.relowner
        LOOP
            EXECUTE format('REVOKE ALL ON %s FROM %s', relation, grantee::regrole);
        END LOOP;
        -- The role, and its members that do not inherit (NOINHERIT): they see it too.
        FOR grantee IN
            SELECT to_regrole('{MONITOR_ROLE}')::oid WHERE to_regrole('{MONITOR_ROLE}') IS NOT NULL
            UNION
            SELECT m.member FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.member
            WHERE m.roleid = to_regrole('{MONITOR_ROLE}') AND NOT r.rolinherit
        LOOP
            EXECUTE format('GRANT SELECT ON %s TO %s', relation, grantee::regrole);
            EXECUTE format('GRANT USAGE ON SCHEMA zetl TO %s', grantee::regrole);
        END LOOP;
    END LOOP;
END
$$;
"""

# The replica tables' size and kind, beside their states (which the state store reads).
_TABLE_STATS_SQL = """
SELECT n.nspname || '.' || c.relname, st.n_live_tup,
       (pg_total_relation_size(c.oid) + 524288) / 1048576,
       EXISTS (SELECT FROM pg_attribute a WHERE a.attrelid = c.oid
               AND a.attname = '_record_is_active' AND NOT a.attisdropped),
       pg_total_relation_size(c.oid)
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
    detected_commit_time: datetime | None = None  # newest source commit received
    shipped_commit_time: datetime | None = None  # newest source commit sent in a batch


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
        counts: Callable[[int, int], None] | None = None,
        stall_seconds: float | None = None,
    ) -> None:
        super().__init__(name="zetl-monitor", daemon=True)
        self.warehouse_url = warehouse_url
        self.stall_seconds = stall_seconds  # its round trips are watched as the session's
        self.replica_database = replica_database
        self.slot = slot
        self.source_database = source_database
        self.sample = sample
        self.counts = counts  # told the Synced and Failed table counts at every publish
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
            self._warehouse = connect(
                self.warehouse_url, raise_lost=True, stall_seconds=self.stall_seconds
            )
        if self._replica is None or self._replica.closed:
            self._replica = connect_replica(
                self.warehouse_url, self.replica_database, self.stall_seconds
            )
            self._replica.set_session(readonly=True, autocommit=True)
        return self._warehouse, self._replica

    def _publish(self) -> None:
        sample = self.sample()
        warehouse, replica = self._connections()
        with replica.cursor() as cur:
            cur.execute(
                "SELECT integration_id, creation_time, history_mode, auto_remediation"
                " FROM zetl.integration LIMIT 1"
            )
            integration = cur.fetchone()
            if integration is None:
                return  # the state store is being created
            integration_id = integration[0]
        store = PostgresStateStore(replica)
        states = store.table_states()
        # The durable position, not this process's: it may not have applied anything yet.
        progress = store.progress(self.slot)
        tables, sizes = _table_rows(replica, states, progress.applied_lsn if progress else None)
        applied_lsn = lsn_to_str(progress.applied_lsn) if progress else sample.applied_lsn
        lag_ms = None if sample.lag_seconds is None else round(sample.lag_seconds * 1000)
        if self.counts is not None:
            self.counts(
                sum(s.state == TableState.SYNCED for s in states.values()),
                sum(s.state == TableState.FAILED for s in states.values()),
            )
        applied_time = progress.source_commit_time if progress else None
        with warehouse, warehouse.cursor() as cur:
            cur.execute(
                "INSERT INTO zetl.integration_status AS i (target_database, integration_id,"
                " state, current_lag, last_replicated_checkpoint, creation_time,"
                " refresh_interval, source_database, last_error, is_history_mode,"
                " latest_detected_change_time, latest_applied_change_time,"
                " latest_shipped_source_commit_time, auto_remediation, heartbeat)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, now())"
                " ON CONFLICT (target_database) DO UPDATE SET"
                " integration_id = excluded.integration_id, state = excluded.state,"
                " current_lag = excluded.current_lag,"
                " last_replicated_checkpoint = excluded.last_replicated_checkpoint,"
                " creation_time = excluded.creation_time,"
                " refresh_interval = excluded.refresh_interval,"
                " source_database = excluded.source_database,"
                " last_error = excluded.last_error,"
                " is_history_mode = excluded.is_history_mode,"
                # What this process saw, or, before it saw anything, what was recorded.
                " latest_detected_change_time = coalesce(excluded.latest_detected_change_time,"
                "   i.latest_detected_change_time, excluded.latest_applied_change_time),"
                " latest_applied_change_time = excluded.latest_applied_change_time,"
                " latest_shipped_source_commit_time = coalesce("
                "   excluded.latest_shipped_source_commit_time,"
                "   i.latest_shipped_source_commit_time, excluded.latest_applied_change_time),"
                " auto_remediation = excluded.auto_remediation, heartbeat = now()",
                (
                    self.replica_database,
                    integration_id,
                    sample.state,
                    lag_ms,
                    applied_lsn,
                    integration[1],
                    sample.refresh_interval,
                    self.source_database,
                    sample.last_error,
                    integration[2],
                    sample.detected_commit_time,
                    applied_time,
                    sample.shipped_commit_time,
                    integration[3],
                ),
            )
            changes = self._copy_state_changes(replica, cur, integration_id)
            self._record_activity(cur, integration_id, progress, states, changes, sizes)
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
            for table, column in (
                ("zetl.lag_history", "sampled_at"),
                ("zetl.integration_table_state_change", "record_time"),
                ("zetl.integration_activity", "integration_end_time"),
            ):  # an index range scan: next to nothing when there is nothing to delete
                cur.execute(
                    f"DELETE FROM {table} WHERE {column} < now() - make_interval(days => %s)",
                    (LAG_HISTORY_DAYS,),
                )

    def _copy_state_changes(
        self,
        replica: psycopg2.extensions.connection,
        cur: psycopg2.extensions.cursor,
        integration_id: object,
    ) -> list[tuple[str, str, str, datetime]]:
        """Copy the replica's new state change rows into the warehouse's log; return the new
        ones as (schema, table, state, time)."""
        cur.execute(
            "SELECT coalesce(max(change_id), 0) FROM zetl.integration_table_state_change"
            " WHERE target_database = %s AND integration_id = %s",
            (self.replica_database, integration_id),
        )
        row = cur.fetchone()
        copied = int(row[0]) if row else 0
        with replica.cursor() as rcur:
            rcur.execute("SELECT to_regclass('zetl.table_state_change') IS NOT NULL")
            found = rcur.fetchone()
            if not (found and found[0]):
                return []  # a state store before migration 6: nothing logged yet
            rcur.execute(
                "SELECT change_id, schema_name, table_name, new_state,"
                " table_last_replicated_checkpoint::text, state_change_reason, record_time"
                " FROM zetl.table_state_change WHERE change_id > %s ORDER BY change_id",
                (copied,),
            )
            new = rcur.fetchall()
        if new:
            values = b",".join(
                cur.mogrify(
                    "(%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                    (self.replica_database, integration_id, *r),
                )
                for r in new
            )
            cur.execute(
                b"INSERT INTO zetl.integration_table_state_change (target_database,"
                b" integration_id, change_id, schema_name, table_name, new_state,"
                b" table_last_replicated_checkpoint, state_change_reason, record_time)"
                b" VALUES " + values + b" ON CONFLICT DO NOTHING"
            )
        return [(r[1], r[2], r[3], r[6]) for r in new]

    def _record_activity(
        self,
        cur: psycopg2.extensions.cursor,
        integration_id: object,
        progress: Progress | None,
        states: dict[str, TableStatus],
        changes: list[tuple[str, str, str, datetime]],
        sizes: dict[str, int],
    ) -> None:
        """SYS_INTEGRATION_ACTIVITY's rows: a snapshot checkpoint for the copies that finished
        since the last publish, a cdc checkpoint once CHECKPOINT_SECONDS of applied changes
        have gathered (from the end of the last one, durable in the warehouse, so that a
        restart neither loses nor repeats bytes)."""
        finished = [(s, t, when) for s, t, state, when in changes if state == TableState.SYNCED]
        if finished:
            started = [
                when
                for s, t, state, when in changes
                if state == TableState.INITIALIZING and (s, t) in {(f[0], f[1]) for f in finished}
            ]
            copied = [states[f"{s}.{t}"] for s, t, _ in finished if f"{s}.{t}" in states]
            lsn = max((c.sync_lsn or 0 for c in copied), default=0)
            cur.execute(
                "INSERT INTO zetl.integration_activity (target_database, integration_id,"
                " checkpoint_name, checkpoint_type, checkpoint_bytes, last_commit_timestamp,"
                " modified_tables, integration_start_time, integration_end_time)"
                " VALUES (%s, %s, %s, 'snapshot', %s, NULL, %s, %s, %s)",
                (
                    self.replica_database,
                    integration_id,
                    f"snapshot/{lsn_to_str(lsn)}",
                    sum(sizes.get(f"{s}.{t}", 0) for s, t, _ in finished),
                    len(finished),
                    min(started or [f[2] for f in finished]),
                    max(f[2] for f in finished),
                ),
            )
        if progress is None:
            return
        cur.execute(
            "SELECT end_lsn::text, integration_end_time FROM zetl.integration_activity"
            " WHERE target_database = %s AND integration_id = %s AND checkpoint_type = 'cdc'"
            " ORDER BY integration_end_time DESC LIMIT 1",
            (self.replica_database, integration_id),
        )
        last = cur.fetchone()
        cur.execute("SELECT now()")
        now_row = cur.fetchone()
        assert now_row is not None
        now: datetime = now_row[0]
        if last is None:  # the first: from where the tables' copies were taken
            begin = min((s.sync_lsn for s in states.values() if s.sync_lsn), default=0)
            since = min((s.updated_at for s in states.values()), default=now)
        else:
            begin, since = str_to_lsn(last[0]), last[1]
        if progress.applied_lsn <= begin or (now - since).total_seconds() < CHECKPOINT_SECONDS:
            return
        modified = sum(
            s.state == TableState.SYNCED and s.updated_at > since for s in states.values()
        )
        cur.execute(
            "INSERT INTO zetl.integration_activity (target_database, integration_id,"
            " checkpoint_name, checkpoint_type, checkpoint_bytes, last_commit_timestamp,"
            " modified_tables, integration_start_time, integration_end_time, end_lsn)"
            " VALUES (%s, %s, %s, 'cdc', %s, %s, %s, %s, %s, %s::pg_lsn)",
            (
                self.replica_database,
                integration_id,
                f"cdc/{lsn_to_str(begin)}-{lsn_to_str(progress.applied_lsn)}",
                progress.applied_lsn - begin,
                progress.source_commit_time,
                modified,
                since,
                now,
                lsn_to_str(progress.applied_lsn),
            ),
        )


def _table_rows(
    replica: psycopg2.extensions.connection,
    states: dict[str, TableStatus],
    applied_lsn: int | None,
) -> tuple[list[tuple[object, ...]], dict[str, int]]:
    """Each table's row of ``zetl.integration_table_status`` (after target_database): its
    state as Redshift names it, the position it is replicated to, reason, time, rows, size,
    rows applied, history mode."""
    with replica.cursor() as cur:
        cur.execute(_TABLE_STATS_SQL, (list(states),))
        found_stats = cur.fetchall()
    stats = {name: (rows, size, history) for name, rows, size, history, _ in found_stats}
    sizes = {name: int(total) for name, _, _, _, total in found_stats}
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
    return found, sizes
