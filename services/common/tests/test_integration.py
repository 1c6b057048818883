"""`zetl.integration`: the views read as Redshift shows them, or nothing before they exist."""

from __future__ import annotations

import psycopg2
import pytest

from zetl import integration
from zetl.integration import TableState, TableStatus

pytestmark = pytest.mark.docker

VIEWS = """
CREATE TABLE svv_integration (integration_id text, target_database text, state text,
    current_lag bigint, last_replicated_checkpoint text, total_tables_replicated integer,
    total_tables_failed integer);
CREATE TABLE svv_integration_table_state (target_database text, schema_name text,
    table_name text, table_state text, reason text, table_rows bigint,
    last_updated_timestamp timestamp);
INSERT INTO svv_integration VALUES
    ('i-1', 'replica', 'CdcRefreshState', 1500, '0/16B3748', 1, 0),
    ('i-2', 'other', 'ErrorState', NULL, NULL, 0, 1);
INSERT INTO svv_integration_table_state VALUES
    ('replica', 'public', 'game', 'ResyncInitiated', NULL, NULL, NULL),
    ('replica', 'public', 'customer', 'Synced', NULL, 20, NULL),
    ('other', 'public', 'customer', 'Failed', 'no primary key', NULL, NULL);
"""


def test_nothing_to_read_before_the_views_exist(warehouse_url: str) -> None:
    with psycopg2.connect(warehouse_url) as conn, conn.cursor() as cur:
        assert integration.read_tables(cur) is None
        assert integration.read_integration(cur, "replica") is None


def test_tables_and_integration_of_one_replica_or_of_all(warehouse_url: str) -> None:
    with psycopg2.connect(warehouse_url) as conn, conn.cursor() as cur:
        cur.execute(VIEWS)
        tables = integration.read_tables(cur, "replica")
        everything = integration.read_tables(cur)
        status = integration.read_integration(cur, "replica")
        stopped = integration.read_integration(cur, "other")
    assert tables == [
        TableStatus("public", "customer", "Synced", None, 20, None),
        TableStatus("public", "game", "ResyncInitiated", None, None, None),
    ]
    assert [t.settled for t in tables] == [True, False]
    assert everything is not None and len(everything) == 3
    assert status == integration.IntegrationStatus(
        "replica", "i-1", "CdcRefreshState", 1.5, "0/16B3748", 1, 0
    )
    assert stopped is not None and stopped.state == integration.ERROR_STATE
    assert stopped.lag_seconds is None
    assert {TableState.FAILED, TableState.SYNCED}.isdisjoint(integration.UNSETTLED)
