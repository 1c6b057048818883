"""The harness gives real Postgres servers shaped like RDS (source) and Redshift (warehouse)."""

from __future__ import annotations

from pathlib import Path

import psycopg2
import psycopg2.extras
import pytest

from tests.harness import PostgresServer, tls_directory
from zetl.tls import CA_FILE, ServerCertificate, ensure_certificates

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


@pytest.mark.parametrize("which", ["source_server", "warehouse_server"])
def test_a_plaintext_connection_is_refused(which: str, request: pytest.FixtureRequest) -> None:
    """TLS or nothing, as RDS enforces (rds.force_ssl = 1), for logins and replication alike;
    the same settings as compose's servers (compose/pg_hba.conf)."""
    server: PostgresServer = request.getfixturevalue(which)
    for query in ("sslmode=disable", "sslmode=disable&replication=database"):
        with pytest.raises(psycopg2.OperationalError, match="no encryption"):
            psycopg2.connect(f"{server.url()}?{query}")
    with server.connect() as conn, conn.cursor() as cur:  # the session's default: require
        cur.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        assert cur.fetchone() == (True,)


def test_the_certificate_verifies_against_the_sessions_ca(
    source_server: PostgresServer, tmp_path: Path
) -> None:
    """One CA signs the servers' certificates: a client can check them (verify-ca: the
    container's address is not one of the names, which compose's certificates carry)."""
    ca = tls_directory() / CA_FILE
    conn = psycopg2.connect(source_server.url(), sslmode="verify-ca", sslrootcert=str(ca))
    conn.close()
    other_ca = tmp_path / CA_FILE
    ensure_certificates(other_ca, [ServerCertificate(tmp_path / "other", ("localhost",))])
    with pytest.raises(psycopg2.OperationalError, match="certificate verify failed"):
        psycopg2.connect(source_server.url(), sslmode="verify-ca", sslrootcert=str(other_ca))
