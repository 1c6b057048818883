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


def test_character_128_text_is_read_without_its_padding(warehouse_url: str) -> None:
    """Redshift types the views' text character(128): blank-padded, stripped by the reader."""
    with psycopg2.connect(warehouse_url) as conn, conn.cursor() as cur:
        cur.execute(
            VIEWS.replace(" text", " character(128)").replace(
                "reason character(128)", "reason character(256)"
            )
        )
        tables = integration.read_tables(cur, "replica")
        status = integration.read_integration(cur, "replica")
    assert tables is not None and status is not None
    assert [(t.table_name, t.table_state) for t in tables] == [
        ("customer", "Synced"),
        ("game", "ResyncInitiated"),
    ]
    assert (status.integration_id, status.state, status.last_replicated_checkpoint) == (
        "i-1",
        "CdcRefreshState",
        "0/16B3748",
    )


def test_six_table_states_as_redshift_names_them() -> None:
    redshift = {"Synced", "Failed", "Deleted", "ResyncRequired", "ResyncInitiated", "DroppedSource"}
    assert redshift <= {str(s) for s in TableState}
    assert str(TableState.RESYNC_DELETED) == "ResyncDeleted"  # in the state change log
    assert TableState.DELETED not in integration.UNSETTLED
    assert TableState.DROPPED_SOURCE not in integration.UNSETTLED


def test_refresh_interval_is_bounded_to_awss_0_to_432000_seconds() -> None:
    option = integration.DATABASE_OPTIONS["REFRESH_INTERVAL"]
    assert option.parse("0") == 0 and option.parse("432000") == 432_000
    for bad in ("432001", "-1", "ten"):
        with pytest.raises(ValueError, match="0 to 432000"):
            option.parse(bad)


def test_one_definition_of_the_options_renders_redshifts_set_clause() -> None:
    clause = integration.set_clause(
        {
            "QUERY_ALL_STATES": True,
            "REFRESH_INTERVAL": 60,
            "AUTO_REMEDIATION": False,
            "TRUNCATECOLUMNS": None,
        }
    )
    assert clause == "SET QUERY_ALL_STATES = TRUE REFRESH_INTERVAL 60 AUTO_REMEDIATION = FALSE"
    assert integration.set_clause({}) == ""
    with pytest.raises(ValueError, match="unknown option"):
        integration.set_clause({"COMPRESSION": True})
    with pytest.raises(ValueError, match="0 to 432000"):
        integration.set_clause({"REFRESH_INTERVAL": 500_000})
