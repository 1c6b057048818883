"""The DAG's replication gate reads the integration's views on its own: Airflow's image (and
Amazon MWAA) runs the DAG folder without the zetl package. These tests hold it to the platform's
one reader, ``zetl.integration``: the same tables, states, integration state and lag from the
same views, and the same state names."""

from __future__ import annotations

import psycopg2
import pytest
from zetl_orchestration import health

from zetl import integration
from zetl.integration import TableState
from zetl_replicator.ops.monitor import ensure_monitoring

pytestmark = pytest.mark.docker

REPLICA = "raw_transactions"

# Two integrations: the gate and the reader must both pick the one into REPLICA.
ROWS = f"""
INSERT INTO zetl.integration_status (target_database, integration_id, state, current_lag,
    creation_time, heartbeat)
VALUES ('{REPLICA}', gen_random_uuid(), 'CdcRefreshState', 2500, now(), now()),
       ('other_replica', gen_random_uuid(), 'CdcRefreshState', 10, now(), now());
INSERT INTO zetl.integration_table_status (target_database, schema_name, table_name,
    table_state, reason, last_updated_timestamp, table_rows)
VALUES ('{REPLICA}', 'public', 'customer', 'Synced', NULL, now(), 200),
       ('{REPLICA}', 'public', 'game', 'ResyncInitiated', NULL, now(), NULL),
       ('{REPLICA}', 'public', 'orders', 'Failed', 'no primary key', now(), NULL),
       ('other_replica', 'public', 'customer', 'ResyncRequired', NULL, now(), 3);
"""


def test_the_gate_uses_the_platforms_state_names() -> None:
    assert health.SYNCED == TableState.SYNCED
    assert health.DROPPED_SOURCE == TableState.DROPPED_SOURCE
    assert health.ERROR_STATE == integration.ERROR_STATE


def test_a_dropped_source_table_does_not_hold_the_gate() -> None:
    tables = [
        health.TableHealth("public", "t", "Synced", None),
        health.TableHealth("public", "old", "DroppedSource", "dropped on the source"),
    ]
    health.check(health.ReplicationHealth(tables, 1.0, "test", "CdcRefreshState"), 60)
    tables.append(health.TableHealth("public", "u", "ResyncRequired", None))
    with pytest.raises(health.ReplicationGateError, match="1 of 3 tables not Synced"):
        health.check(health.ReplicationHealth(tables, 1.0, "test", "CdcRefreshState"), 60)


def test_the_gate_reads_what_zetl_integration_reads(warehouse_url: str) -> None:
    ensure_monitoring(warehouse_url)
    conn = psycopg2.connect(warehouse_url)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(ROWS)
        with conn.cursor() as cur:
            tables = integration.read_tables(cur, REPLICA)
            status = integration.read_integration(cur, REPLICA)
    finally:
        conn.close()
    assert tables is not None and status is not None

    gate = health.read_replication_health(warehouse_url, REPLICA)

    assert [(t.schema, t.table, t.state, t.reason) for t in gate.tables] == [
        (t.schema_name, t.table_name, t.table_state, t.reason) for t in tables
    ]
    assert [t.state for t in gate.tables] == ["Synced", "ResyncInitiated", "Failed"]
    assert gate.integration_state == status.state
    assert gate.lag_seconds == status.lag_seconds == 2.5


def test_the_gate_and_the_reader_see_a_silent_replicator_as_stale(warehouse_url: str) -> None:
    """One definition of "now": the view's. A replicator silent for longer than the docs'
    30 s is in ErrorState, and its lag has grown by its silence, for both readers."""
    ensure_monitoring(warehouse_url)
    conn = psycopg2.connect(warehouse_url)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(ROWS)
            cur.execute(
                "UPDATE zetl.integration_status SET heartbeat = now() - interval '60 seconds'"
                " WHERE target_database = %s",
                (REPLICA,),
            )
        with conn.cursor() as cur:
            status = integration.read_integration(cur, REPLICA)
    finally:
        conn.close()
    gate = health.read_replication_health(warehouse_url, REPLICA)
    assert status is not None and status.lag_seconds is not None
    assert gate.integration_state == status.state == integration.ERROR_STATE
    assert gate.lag_seconds is not None
    assert 62.5 <= status.lag_seconds <= gate.lag_seconds < 62.5 + 30
    with pytest.raises(health.ReplicationGateError, match="ErrorState"):
        health.check(gate, max_lag_seconds=3600)
