"""The state store's schema in the replica database, as numbered migrations.

Each migration is plain SQL applied once, in order, in a transaction of its own together with
the row in ``zetl.state_version`` that records it (as Alembic's version table does for the
source's schema). A change to the store is a new migration at the end, never an edit of one
that has shipped: replicas that exist already have run it.

Stores created before versioning have no version table but hold everything up to
``UNVERSIONED_BASELINE`` (their code brought each one up to that form at every start): they are
recorded as being there, and upgrade in place from the migrations after it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import psycopg2.extensions

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


MIGRATIONS = (
    Migration(
        1,
        "progress and table states",
        """
        CREATE TABLE zetl.replication_progress (
            slot_name text PRIMARY KEY,
            applied_lsn pg_lsn NOT NULL,
            source_commit_time timestamptz,
            applied_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE TABLE zetl.table_state (
            schema_name text NOT NULL,
            table_name text NOT NULL,
            state text NOT NULL
                CHECK (state IN ('Synced', 'Initializing', 'ResyncRequired', 'Failed')),
            reason text,
            sync_lsn pg_lsn,
            rows_applied bigint NOT NULL DEFAULT 0,
            resync_requested boolean NOT NULL DEFAULT false,
            updated_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (schema_name, table_name)
        );
        """,
    ),
    Migration(
        2,
        "tables failed by a refused change",
        # Failed because the warehouse refused its changes (not for an eligibility rule): a
        # re-copy is asked for by hand, not taken whenever the table looks eligible.
        "ALTER TABLE zetl.table_state ADD COLUMN apply_failed boolean NOT NULL DEFAULT false;",
    ),
    Migration(
        3,
        "the integration",
        # The integration this database is the target of (CREATE DATABASE ... FROM INTEGRATION).
        """
        CREATE TABLE zetl.integration (
            integration_id uuid PRIMARY KEY,
            creation_time timestamptz NOT NULL DEFAULT now()
        );
        INSERT INTO zetl.integration (integration_id) VALUES (gen_random_uuid());
        """,
    ),
    Migration(
        4,
        "the target database's options",
        # CREATE / ALTER DATABASE ... INTEGRATION SET ...
        """
        ALTER TABLE zetl.integration
            ADD COLUMN query_all_states boolean NOT NULL DEFAULT false,
            ADD COLUMN truncatecolumns boolean NOT NULL DEFAULT false,
            ADD COLUMN acceptinvchars boolean NOT NULL DEFAULT false,
            ADD COLUMN refresh_interval integer CHECK (refresh_interval >= 0),
            ADD COLUMN history_mode boolean NOT NULL DEFAULT false;
        """,
    ),
    Migration(
        5,
        "visibility of replicated tables",
        # Only Synced tables can be queried (unless QUERY_ALL_STATES): called with every state
        # change and for every table when the option changes. The replicator owns the tables
        # and reads them whatever their state.
        """
        CREATE OR REPLACE FUNCTION zetl.apply_visibility(s text, t text) RETURNS void
        LANGUAGE plpgsql AS $$
        DECLARE
            visible boolean;
        BEGIN
            IF to_regclass(format('%I.%I', s, t)) IS NULL THEN
                RETURN;
            END IF;
            SELECT ts.state = 'Synced'
                   OR coalesce((SELECT i.query_all_states FROM zetl.integration i LIMIT 1), false)
              INTO visible
              FROM zetl.table_state ts WHERE ts.schema_name = s AND ts.table_name = t;
            IF coalesce(visible, false) THEN
                EXECUTE format('GRANT SELECT ON %I.%I TO PUBLIC', s, t);
            ELSE
                EXECUTE format('REVOKE SELECT ON %I.%I FROM PUBLIC', s, t);
            END IF;
        END
        $$;
        REVOKE CREATE ON SCHEMA public FROM PUBLIC;
        GRANT USAGE ON SCHEMA zetl TO PUBLIC;
        GRANT SELECT ON ALL TABLES IN SCHEMA zetl TO PUBLIC;
        """,
    ),
    Migration(
        6,
        "every table state, the state change log, AUTO_REMEDIATION",
        # Redshift's six table states (and Initializing, zetl's name for a copy under way);
        # one row per transition, written by a trigger so that no write path can miss one (a
        # re-copy of a table that had a copy logs ResyncDeleted before it, as the old copy is
        # deleted); DroppedSource tables stay queryable; AWS's REFRESH_INTERVAL bound.
        """
        ALTER TABLE zetl.table_state DROP CONSTRAINT table_state_state_check;
        ALTER TABLE zetl.table_state ADD CONSTRAINT table_state_state_check CHECK (state IN
            ('Synced', 'Initializing', 'ResyncRequired', 'Failed', 'Deleted', 'DroppedSource',
             'ResyncDeleted'));
        CREATE TABLE zetl.table_state_change (
            change_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            schema_name text NOT NULL,
            table_name text NOT NULL,
            new_state text NOT NULL,
            table_last_replicated_checkpoint pg_lsn,
            state_change_reason text,
            record_time timestamptz NOT NULL DEFAULT clock_timestamp()
        );
        CREATE FUNCTION zetl.log_state_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'UPDATE' AND OLD.state = NEW.state THEN
                RETURN NULL;
            END IF;
            IF TG_OP = 'UPDATE' AND NEW.state = 'Initializing' THEN
                INSERT INTO zetl.table_state_change (schema_name, table_name, new_state,
                    table_last_replicated_checkpoint, state_change_reason)
                VALUES (NEW.schema_name, NEW.table_name, 'ResyncDeleted', OLD.sync_lsn,
                    'the copy is deleted to be copied again');
            END IF;
            INSERT INTO zetl.table_state_change (schema_name, table_name, new_state,
                table_last_replicated_checkpoint, state_change_reason)
            VALUES (NEW.schema_name, NEW.table_name, NEW.state, NEW.sync_lsn, NEW.reason);
            RETURN NULL;
        END
        $$;
        CREATE TRIGGER table_state_change AFTER INSERT OR UPDATE OF state ON zetl.table_state
            FOR EACH ROW EXECUTE FUNCTION zetl.log_state_change();
        INSERT INTO zetl.table_state_change (schema_name, table_name, new_state,
            table_last_replicated_checkpoint, state_change_reason, record_time)
        SELECT schema_name, table_name, state, sync_lsn, reason, updated_at FROM zetl.table_state;
        GRANT SELECT ON zetl.table_state_change TO PUBLIC;

        ALTER TABLE zetl.integration ADD COLUMN auto_remediation boolean NOT NULL DEFAULT false;
        UPDATE zetl.integration SET refresh_interval = 432000 WHERE refresh_interval > 432000;
        ALTER TABLE zetl.integration ADD CONSTRAINT refresh_interval_range
            CHECK (refresh_interval BETWEEN 0 AND 432000);

        CREATE OR REPLACE FUNCTION zetl.apply_visibility(s text, t text) RETURNS void
        LANGUAGE plpgsql AS $$
        DECLARE
            visible boolean;
        BEGIN
            IF to_regclass(format('%I.%I', s, t)) IS NULL THEN
                RETURN;
            END IF;
            SELECT ts.state IN ('Synced', 'DroppedSource')
                   OR coalesce((SELECT i.query_all_states FROM zetl.integration i LIMIT 1), false)
              INTO visible
              FROM zetl.table_state ts WHERE ts.schema_name = s AND ts.table_name = t;
            IF coalesce(visible, false) THEN
                EXECUTE format('GRANT SELECT ON %I.%I TO PUBLIC', s, t);
            ELSE
                EXECUTE format('REVOKE SELECT ON %I.%I FROM PUBLIC', s, t);
            END IF;
        END
        $$;
        """,
    ),
)
CURRENT_VERSION = MIGRATIONS[-1].version
UNVERSIONED_BASELINE = 5  # what a store created before versioning holds

# The version table itself, the one thing created "if not exists" (it says what else exists).
_VERSION_TABLE_SQL = """
CREATE SCHEMA IF NOT EXISTS zetl;
CREATE TABLE IF NOT EXISTS zetl.state_version (
    version integer PRIMARY KEY,
    name text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);
GRANT USAGE ON SCHEMA zetl TO PUBLIC;
GRANT SELECT ON zetl.state_version TO PUBLIC;
"""
_LOCK = "SELECT pg_advisory_lock(hashtext('zetl.state_store'))"
_UNLOCK = "SELECT pg_advisory_unlock(hashtext('zetl.state_store'))"


def migrate(conn: psycopg2.extensions.connection) -> list[int]:
    """Bring the state store in ``conn``'s database to ``CURRENT_VERSION``; return the versions
    applied now. One replicator at a time (a session lock): the others wait, then find nothing
    left to do."""
    with conn.cursor() as cur:
        cur.execute(_LOCK)
    conn.commit()
    try:
        _record_unversioned_store(conn)
        applied = []
        for migration in MIGRATIONS:
            if migration.version > _version(conn):
                _apply(conn, migration)
                applied.append(migration.version)
        return applied
    finally:
        if not conn.closed:
            conn.rollback()
            with conn.cursor() as cur:
                cur.execute(_UNLOCK)
            conn.commit()


def _version(conn: psycopg2.extensions.connection) -> int:
    with conn.cursor() as cur:
        cur.execute("SELECT coalesce(max(version), 0) FROM zetl.state_version")
        row = cur.fetchone()
    conn.commit()
    return int(row[0]) if row else 0


def _apply(conn: psycopg2.extensions.connection, migration: Migration) -> None:
    with conn, conn.cursor() as cur:
        cur.execute(migration.sql)
        cur.execute(
            "INSERT INTO zetl.state_version (version, name) VALUES (%s, %s)",
            (migration.version, migration.name),
        )
    log.info(
        "state store migrated", extra={"version": migration.version, "migration": migration.name}
    )


def _record_unversioned_store(conn: psycopg2.extensions.connection) -> None:
    """Create the version table; a store older than it holds the baseline: record that."""
    with conn, conn.cursor() as cur:
        cur.execute(
            "SELECT to_regclass('zetl.state_version') IS NULL"
            " AND to_regclass('zetl.table_state') IS NOT NULL"
        )
        row = cur.fetchone()
        unversioned = bool(row and row[0])
        cur.execute(_VERSION_TABLE_SQL)
        if unversioned:
            for migration in MIGRATIONS[:UNVERSIONED_BASELINE]:
                cur.execute(
                    "INSERT INTO zetl.state_version (version, name) VALUES (%s, %s)",
                    (migration.version, migration.name),
                )
            # Left by versions before monitoring moved to the warehouse database.
            cur.execute("DROP VIEW IF EXISTS zetl.integration_table_state")
    if unversioned:
        log.info("state store from before versioning", extra={"version": UNVERSIONED_BASELINE})
