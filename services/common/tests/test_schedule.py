"""`zetl schedule`: when transform may start, and which transform run dq has not seen."""

from __future__ import annotations

import psycopg2
import pytest

from zetl.db import with_database
from zetl.schedule import ReplicaState, last_transform, replica_state

pytestmark = pytest.mark.docker


def execute(url: str, statement: str) -> None:
    conn = psycopg2.connect(url)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(statement)
    finally:
        conn.close()


def test_no_replica_yet_is_not_settled(warehouse_url: str) -> None:
    state = replica_state(warehouse_url, "no_such_replica_database")
    assert state == ReplicaState(0, 0) and not state.settled


def test_the_monitoring_view_decides_when_it_exists(warehouse_url: str) -> None:
    execute(
        warehouse_url,
        # The view's columns the reader selects, as the replicator's view has them.
        "CREATE TABLE svv_integration_table_state (target_database text, schema_name text,"
        " table_name text, table_state text, reason text, table_rows bigint,"
        " last_updated_timestamp timestamp);"
        " INSERT INTO svv_integration_table_state (table_name, table_state)"
        " VALUES ('a', 'Synced'), ('b', 'Initializing')",
    )
    assert not replica_state(warehouse_url, "unused").settled
    execute(warehouse_url, "UPDATE svv_integration_table_state SET table_state = 'Failed'")
    # A table that failed for good does not hold the marts back; it is reported elsewhere.
    assert replica_state(warehouse_url, "unused") == ReplicaState(2, 0)


def test_the_replicators_state_store_decides_otherwise(warehouse_url: str) -> None:
    # The replica database's own state store, here in a database of the same server.
    replica = warehouse_url.rsplit("/", 1)[1]
    execute(
        warehouse_url,
        "CREATE SCHEMA zetl; CREATE TABLE zetl.table_state (table_name text, state text);"
        " INSERT INTO zetl.table_state VALUES ('a', 'Synced'), ('b', 'ResyncRequired')",
    )
    assert replica_state(warehouse_url, replica) == ReplicaState(2, 1)
    execute(with_database(warehouse_url, replica), "UPDATE zetl.table_state SET state = 'Synced'")
    assert replica_state(warehouse_url, replica).settled


def test_last_transform_is_the_newest_finished_run(warehouse_url: str) -> None:
    assert last_transform(warehouse_url) is None
    execute(
        warehouse_url,
        "CREATE SCHEMA zetl_transform; CREATE TABLE zetl_transform.run_log"
        " (run_id text, started_at timestamptz, finished_at timestamptz);"
        " INSERT INTO zetl_transform.run_log VALUES"
        " ('old', now() - interval '2 hours', now() - interval '1 hour'),"
        " ('new', now() - interval '10 minutes', now() - interval '9 minutes'),"
        " ('running', now(), NULL)",
    )
    assert last_transform(warehouse_url) == "new"
