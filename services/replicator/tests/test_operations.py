"""Operations: reconnecting after lost connections, /healthz and /metrics, a slot that lost WAL."""

from __future__ import annotations

import threading
import urllib.error
import urllib.request

import psycopg2
import pytest

from services.replicator.tests.support import Query, execute, zetl
from tests.harness import PostgresServer
from tests.support import running, wait_for
from zetl.errors import DataError
from zetl.http import serve_metrics
from zetl_replicator.config import ReplicatorConfig
from zetl_replicator.ops.verify import verify
from zetl_replicator.pipeline import Replicator, reset


def terminate_others(server: PostgresServer, database: str) -> int:
    """Cut every connection to ``database`` (and every walsender), as a server restart would."""
    conn = server.connect()
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE pid <> pg_backend_pid() AND (datname = %s OR backend_type = 'walsender')",
                (database,),
            )
            row = cur.fetchone()
            return int(row[0]) if row else 0
    finally:
        conn.close()


def test_reconnects_when_either_server_drops_connections(
    config: ReplicatorConfig,
    replica: Query,
    source_server: PostgresServer,
    warehouse_server: PostgresServer,
) -> None:
    src = config.source_url
    execute(src, "CREATE TABLE t (id int PRIMARY KEY)")
    source_db = src.rsplit("/", 1)[1]
    with running(config) as replicator:
        for round_, (server, database) in enumerate(
            [(source_server, source_db), (warehouse_server, config.replica_database)] * 2
        ):
            assert terminate_others(server, database) > 0
            execute(src, f"INSERT INTO t VALUES ({round_})")
            expected = [(round_ + 1,)]
            wait_for(
                lambda: replica("SELECT count(*) FROM public.t") == expected,  # noqa: B023
                f"row {round_} after a lost connection",
            )
        assert replicator.metrics.reconnects >= 4
        assert verify(config).ok


def test_healthz_and_metrics(config: ReplicatorConfig, replica: Query) -> None:
    execute(config.source_url, "CREATE TABLE t (id int PRIMARY KEY)")
    with running(config) as replicator:
        server = serve_metrics(
            replicator.metrics.render, replicator.metrics.healthy, 0, host="127.0.0.1"
        )
        base = f"http://127.0.0.1:{server.server_address[1]}"
        try:
            execute(config.source_url, "INSERT INTO t SELECT generate_series(1, 25)")
            wait_for(lambda: replica("SELECT count(*) FROM public.t") == [(25,)], "rows")
            with urllib.request.urlopen(f"{base}/healthz", timeout=5) as response:  # noqa: S310
                assert response.status == 200
            with urllib.request.urlopen(f"{base}/metrics", timeout=5) as response:  # noqa: S310
                text = response.read().decode()
            assert 'zetl_replicator_rows_applied_total{table="public.t"} 25' in text
            assert "zetl_replicator_streaming 1" in text
            assert "zetl_replicator_lag_seconds" in text
        finally:
            server.shutdown()
    # Stopped: no longer healthy.
    server = serve_metrics(
        replicator.metrics.render, replicator.metrics.healthy, 0, host="127.0.0.1"
    )
    try:
        with pytest.raises(urllib.error.HTTPError) as failure:
            urllib.request.urlopen(
                f"http://127.0.0.1:{server.server_address[1]}/healthz", timeout=5
            )
        assert failure.value.code == 503
    finally:
        server.shutdown()


def test_slot_that_lost_its_wal_is_reported_with_the_recovery_command(
    config: ReplicatorConfig, replica: Query, source_server: PostgresServer
) -> None:
    src = config.source_url
    execute(src, "CREATE TABLE t (id int PRIMARY KEY, pad text)", "INSERT INTO t VALUES (0, '')")
    with running(config):
        pass
    source_server.execute("ALTER SYSTEM SET max_slot_wal_keep_size = '1MB'")
    source_server.execute("SELECT pg_reload_conf()")
    try:
        conn = psycopg2.connect(src)
        conn.autocommit = True
        with conn.cursor() as cur:
            for i in range(1, 6):  # write past the limit, then let a checkpoint invalidate
                cur.execute(
                    "INSERT INTO t SELECT g, repeat('w', 1000) FROM"
                    f" generate_series({i * 10000}, {i * 10000 + 3000}) g"
                )
                cur.execute("SELECT pg_switch_wal()")
                cur.execute("CHECKPOINT")
            cur.execute(
                "SELECT wal_status FROM pg_replication_slots WHERE slot_name = %s", (config.slot,)
            )
            assert cur.fetchone() == ("lost",)
        conn.close()
    finally:
        source_server.execute("ALTER SYSTEM RESET max_slot_wal_keep_size")
        source_server.execute("SELECT pg_reload_conf()")
    with pytest.raises(DataError, match="zetl replicate --reset"):
        Replicator(config).run(threading.Event())
    result = zetl(config, "status")
    assert result.returncode == 1 and "lost" in result.stdout
    # The documented recovery: drop the slot and copy again.
    reset(config)
    with running(config):
        assert replica("SELECT count(*) FROM public.t") == [(15006,)]
        assert verify(config).ok
