"""The harness gives real Postgres servers shaped like RDS (source) and Redshift (warehouse)."""

from __future__ import annotations

import psycopg2
import psycopg2.extras
import pytest

from tests.harness import PostgresServer

pytestmark = pytest.mark.docker


def test_source_has_logical_replication_on(source_server: PostgresServer) -> None:
    with source_server.connect() as conn, conn.cursor() as cur:
        cur.execute("SHOW wal_level")
        assert cur.fetchone() == ("logical",)


def test_source_creates_and_drops_a_pgoutput_slot(source_url: str) -> None:
    """The replicator's first step: a logical slot with pgoutput and an exported snapshot."""
    conn = psycopg2.connect(
        source_url, connection_factory=psycopg2.extras.LogicalReplicationConnection
    )
    try:
        replication = conn.cursor()
        replication.create_replication_slot("zetl_harness_slot", output_plugin="pgoutput")
        row = replication.fetchone()
        assert row is not None
        slot_name, consistent_point, snapshot_name, plugin = row
        assert (slot_name, plugin) == ("zetl_harness_slot", "pgoutput")
        assert "/" in consistent_point and snapshot_name
        replication.drop_replication_slot("zetl_harness_slot")
    finally:
        conn.close()
    with psycopg2.connect(source_url) as check, check.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'zetl_harness_slot'"
        )
        assert cur.fetchone() == (0,)


def test_each_test_gets_its_own_empty_database(source_url: str, warehouse_url: str) -> None:
    for url in (source_url, warehouse_url):
        with psycopg2.connect(url) as conn, conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
            assert cur.fetchone() == (0,)
            cur.execute("CREATE TABLE scratch (id int PRIMARY KEY)")


def test_warehouse_is_a_separate_server(
    source_server: PostgresServer, warehouse_server: PostgresServer
) -> None:
    assert source_server.port != warehouse_server.port
    with warehouse_server.connect() as conn, conn.cursor() as cur:
        cur.execute("SHOW wal_level")
        assert cur.fetchone() == ("replica",)
