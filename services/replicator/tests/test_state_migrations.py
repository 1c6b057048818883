"""The state store's schema as numbered migrations: a new replica gets every one, and a replica
made before versioning upgrades in place with its data."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg2.extensions
import pytest
from psycopg2 import sql

from tests.harness import PostgresServer
from zetl.integration import TableState
from zetl_replicator.destination.replica import connect_replica, ensure_replica_database
from zetl_replicator.state.migrations import CURRENT_VERSION, MIGRATIONS, migrate
from zetl_replicator.state.options import read_options
from zetl_replicator.state.store import PostgresStateStore

# The state store as the replicator created it before its schema had versions (kept as it
# was: what an existing replica holds).
UNVERSIONED_STATE_DDL = """
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


@pytest.fixture
def replica_name(warehouse_url: str, warehouse_server: PostgresServer) -> Iterator[str]:
    name = f"replica_{uuid.uuid4().hex[:10]}"
    yield name
    warehouse_server.drop_database(name)


def versions(conn: psycopg2.extensions.connection) -> list[int]:
    with conn.cursor() as cur:
        cur.execute("SELECT version FROM zetl.state_version ORDER BY version")
        found = [int(r[0]) for r in cur.fetchall()]
    conn.rollback()
    return found


def test_a_new_replica_gets_every_migration_once(warehouse_url: str, replica_name: str) -> None:
    ensure_replica_database(warehouse_url, replica_name)
    conn = connect_replica(warehouse_url, replica_name)
    try:
        assert versions(conn) == [m.version for m in MIGRATIONS]
        assert migrate(conn) == []  # nothing left: a second start changes nothing
        store = PostgresStateStore(conn)
        store.set_table_state("public", "t", TableState.SYNCED, sync_lsn=8)
        assert store.table_states()["public.t"].state == TableState.SYNCED
    finally:
        conn.close()


def test_a_replica_from_before_versioning_upgrades_in_place(
    warehouse_url: str, warehouse_server: PostgresServer, replica_name: str
) -> None:
    warehouse_server.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(replica_name)))
    conn = connect_replica(warehouse_url, replica_name)
    try:
        with conn, conn.cursor() as cur:  # the old store, with data in it
            cur.execute(UNVERSIONED_STATE_DDL)
            cur.execute(
                "INSERT INTO zetl.replication_progress (slot_name, applied_lsn)"
                " VALUES ('zetl_old', '0/1A2B')"
            )
            cur.execute(
                "INSERT INTO zetl.table_state (schema_name, table_name, state, reason,"
                " sync_lsn, rows_applied, apply_failed) VALUES"
                " ('public', 'kept', 'Synced', NULL, '0/10', 42, false),"
                " ('public', 'broken', 'Failed', 'refused', NULL, 7, true)"
            )
            cur.execute("UPDATE zetl.integration SET truncatecolumns = true, refresh_interval = 9")
            cur.execute("SELECT integration_id FROM zetl.integration")
            row = cur.fetchone()
            assert row is not None
            integration_id = row[0]
    finally:
        conn.close()

    ensure_replica_database(warehouse_url, replica_name)  # the new code starts on it

    conn = connect_replica(warehouse_url, replica_name)
    try:
        assert versions(conn)[-1] == CURRENT_VERSION
        store = PostgresStateStore(conn)
        progress = store.progress("zetl_old")
        assert progress is not None and progress.applied_lsn == 0x1A2B
        states = store.table_states()
        assert (states["public.kept"].state, states["public.kept"].rows_applied) == (
            TableState.SYNCED,
            42,
        )
        assert states["public.kept"].sync_lsn == 0x10
        assert states["public.broken"].apply_failed and states["public.broken"].reason == "refused"
        options = read_options(conn)
        assert options.truncatecolumns and options.refresh_interval == 9
        with conn.cursor() as cur:
            cur.execute("SELECT integration_id FROM zetl.integration")
            assert [r[0] for r in cur.fetchall()] == [integration_id]  # the same integration
        conn.rollback()
        assert migrate(conn) == []
    finally:
        conn.close()
