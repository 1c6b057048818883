"""The replica database: connecting to it, and creating it with its state store.

Layout (docs/architecture.md): replicated tables keep their source schema, names and types in
the replica database; the replicator's own state lives beside them in schema ``zetl``:

- ``zetl.replication_progress`` and ``zetl.table_state``: progress and table states, written
  only through the state store (``state/store.py``);
- ``zetl.integration``: the target database's options (``state/options.py``).
"""

from __future__ import annotations

import psycopg2.extensions
from psycopg2 import sql

from zetl.db import connect, with_database
from zetl.errors import DataError
from zetl_replicator.source.types import TEXT_FORMAT_OPTIONS

_STATE_DDL = """
CREATE SCHEMA IF NOT EXISTS zetl;
CREATE TABLE IF NOT EXISTS zetl.replication_progress (
    slot_name text PRIMARY KEY,
    applied_lsn pg_lsn NOT NULL,
    source_commit_time timestamptz,
    applied_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS zetl.table_state (
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
-- Failed because the warehouse refused its changes (not for an eligibility rule): a re-copy
-- is asked for by hand, not taken whenever the table looks eligible.
ALTER TABLE zetl.table_state ADD COLUMN IF NOT EXISTS apply_failed boolean NOT NULL DEFAULT false;
-- The integration this database is the target of (CREATE DATABASE ... FROM INTEGRATION).
CREATE TABLE IF NOT EXISTS zetl.integration (
    integration_id uuid PRIMARY KEY,
    creation_time timestamptz NOT NULL DEFAULT now()
);
INSERT INTO zetl.integration (integration_id)
SELECT gen_random_uuid()
WHERE NOT EXISTS (SELECT FROM zetl.integration);
-- The target database's options (CREATE / ALTER DATABASE ... INTEGRATION SET ...).
ALTER TABLE zetl.integration
    ADD COLUMN IF NOT EXISTS query_all_states boolean NOT NULL DEFAULT false,
    ADD COLUMN IF NOT EXISTS truncatecolumns boolean NOT NULL DEFAULT false,
    ADD COLUMN IF NOT EXISTS acceptinvchars boolean NOT NULL DEFAULT false,
    ADD COLUMN IF NOT EXISTS refresh_interval integer CHECK (refresh_interval >= 0),
    ADD COLUMN IF NOT EXISTS history_mode boolean NOT NULL DEFAULT false;
-- Only Synced tables can be queried (unless QUERY_ALL_STATES): called with every state change
-- and for every table when the option changes. The replicator owns the tables and reads them
-- whatever their state.
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
-- Monitoring moved to svv_integration_table_state / svv_integration in the warehouse database.
DROP VIEW IF EXISTS zetl.integration_table_state;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA zetl TO PUBLIC;
GRANT SELECT ON ALL TABLES IN SCHEMA zetl TO PUBLIC;
"""


def replica_url(warehouse_url: str, replica_database: str) -> str:
    return with_database(warehouse_url, replica_database)


def connect_replica(warehouse_url: str, replica_database: str) -> psycopg2.extensions.connection:
    return connect(
        replica_url(warehouse_url, replica_database), raise_lost=True, options=TEXT_FORMAT_OPTIONS
    )


def connect_replica_read_only(
    warehouse_url: str, replica_database: str
) -> psycopg2.extensions.connection:
    """A read-only connection to the replica database; DataError when ``zetl replicate`` has
    not created it (or its state store) yet. Never creates anything."""
    admin = connect(warehouse_url)
    try:
        with admin.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (replica_database,))
            exists = cur.fetchone() is not None
    finally:
        admin.close()
    not_initialised = DataError(
        f"replica database {replica_database} is not initialised: run zetl replicate"
    )
    if not exists:
        raise not_initialised
    replica = connect_replica(warehouse_url, replica_database)
    replica.set_session(readonly=True)
    with replica.cursor() as cur:
        cur.execute(
            "SELECT to_regclass('zetl.table_state') IS NOT NULL"
            " AND to_regclass('zetl.replication_progress') IS NOT NULL"
        )
        row = cur.fetchone()
    replica.rollback()
    if not (row and row[0]):
        replica.close()
        raise not_initialised
    return replica


def ensure_replica_database(warehouse_url: str, replica_database: str) -> None:
    """Create the replica database (from the maintenance database) and the state store."""
    admin = connect(warehouse_url, raise_lost=True)
    admin.autocommit = True
    try:
        with admin.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (replica_database,))
            if cur.fetchone() is None:
                cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(replica_database)))
    finally:
        admin.close()
    conn = connect_replica(warehouse_url, replica_database)
    try:
        with conn, conn.cursor() as cur:
            # One replicator at a time creates the store (CREATE ... IF NOT EXISTS can race).
            cur.execute("SELECT pg_advisory_xact_lock(hashtext('zetl.state_store'))")
            cur.execute(_STATE_DDL)
    finally:
        conn.close()
