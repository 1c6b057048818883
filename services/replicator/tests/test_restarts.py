"""Restarting the source or the warehouse for real (the container, not just its connections)
while changes stream: the replicator reconnects with backoff and the replica ends identical."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import psycopg2
import pytest

from services.replicator.tests.support import REFUSE_WRITES, Query, execute, table_state, zetl
from tests.harness import SOURCE_SETTINGS, PostgresServer, running_postgres
from tests.support import running, wait_for
from zetl_replicator.config import ReplicatorConfig


@pytest.fixture(scope="module")
def restartable_servers() -> Iterator[tuple[PostgresServer, PostgresServer]]:
    with (
        running_postgres(SOURCE_SETTINGS, restartable=True) as source,
        running_postgres({}, restartable=True) as warehouse,
    ):
        yield source, warehouse


def write_rows(url: str, stop: threading.Event, written: list[int]) -> None:
    """Insert one row per transaction until stopped, through the source's restarts."""
    while not stop.is_set():
        try:
            conn = psycopg2.connect(url, connect_timeout=2)
            conn.autocommit = True
            with conn.cursor() as cur:
                while not stop.is_set():
                    cur.execute("INSERT INTO ticks (note) VALUES ('tick') RETURNING id")
                    written.append(cur.fetchone()[0])  # type: ignore[index]
                    time.sleep(0.005)
        except psycopg2.Error:
            time.sleep(0.2)  # the source is restarting


def count(url: str) -> int:
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM ticks")
        return int(cur.fetchone()[0])  # type: ignore[index]


@pytest.mark.parametrize("restarted", ["source", "warehouse"])
def test_replicator_rides_through_a_server_restart(
    restartable_servers: tuple[PostgresServer, PostgresServer], restarted: str
) -> None:
    source, warehouse = restartable_servers
    database = source.create_database("restart")
    source_url = source.url(database)
    source.execute(
        "CREATE TABLE ticks (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
        " note text NOT NULL)",
        database,
    )
    config = ReplicatorConfig(
        source_url=source_url,
        warehouse_url=warehouse.url(),
        replica_database=f"replica_{database}",
        slot=f"slot_{database}",
        batch_max_seconds=0.2,
        discovery_interval_seconds=0.5,
    )
    stop, written = threading.Event(), []  # type: ignore[var-annotated]
    writer = threading.Thread(target=write_rows, args=(source_url, stop, written), daemon=True)
    with running(config) as replicator:
        writer.start()
        wait_for(lambda: len(written) > 100, "writes before the restart")
        (source if restarted == "source" else warehouse).restart()
        wait_for(lambda: replicator.metrics.reconnects >= 1, "a reconnect", timeout=60)
        before = len(written)
        wait_for(lambda: len(written) > before + 100, "writes after the restart", timeout=60)
        stop.set()
        writer.join(timeout=10)
        replica_url = warehouse.url(config.replica_database)
        wait_for(lambda: count(replica_url) == count(source_url), "the replica to catch up", 60)
    # a commit cut by the restart may have landed without its acknowledgement
    assert count(source_url) >= len(written) > 200


STATES = "SELECT schema_name || '.' || table_name, state, reason FROM zetl.table_state"


def test_a_synced_table_that_loses_its_primary_key_fails_without_breaking_the_source(
    config: ReplicatorConfig, replica: Query
) -> None:
    execute(
        config.source_url,
        "CREATE TABLE keyed (id int PRIMARY KEY, v int)",
        "CREATE TABLE other (id int PRIMARY KEY, v int)",
        "INSERT INTO keyed VALUES (1, 1)",
    )
    with running(config):
        wait_for(lambda: replica("SELECT * FROM keyed") == [(1, 1)], "keyed copied")
        execute(config.source_url, "ALTER TABLE keyed DROP CONSTRAINT keyed_pkey")
        wait_for(
            lambda: {n: s for n, s, _ in replica(STATES)}.get("public.keyed") == "Failed",
            "keyed to be Failed",
        )
        # Still in the publication, the source itself would refuse this UPDATE.
        execute(config.source_url, "UPDATE keyed SET v = 2", "INSERT INTO other VALUES (1, 1)")
        wait_for(lambda: replica("SELECT * FROM other") == [(1, 1)], "the others to keep streaming")
    reason = {n: r for n, _, r in replica(STATES)}["public.keyed"]
    assert "primary key" in str(reason)


def test_a_full_warehouse_disk_is_retried_and_fails_no_table(
    config: ReplicatorConfig, replica: Query, warehouse_server: PostgresServer
) -> None:
    """Postgres' own disk-full error (SQLSTATE 53100) on the replica is a condition of the
    warehouse: the replicator says so and retries from its last commit, the table stays
    Synced, and once space is back every change arrives."""
    execute(
        config.source_url,
        "CREATE TABLE stored (id int PRIMARY KEY, note text)",
        "INSERT INTO stored VALUES (1, 'before')",
    )
    with running(config) as replicator:
        wait_for(lambda: replica("SELECT count(*) FROM stored") == [(1,)], "the copy")
        message = 'could not extend file "base/16384/16385": No space left on device'
        warehouse_server.execute(
            REFUSE_WRITES.format(message=message, code="53100", table="stored"),
            config.replica_database,
        )
        execute(
            config.source_url, "INSERT INTO stored SELECT g, 'full' FROM generate_series(2, 50) g"
        )

        def told() -> bool:
            return "cannot take changes now" in (replicator.metrics.last_error or "")

        wait_for(told, "the replicator to say the warehouse cannot take changes")
        reconnects = replicator.metrics.reconnects
        wait_for(lambda: replicator.metrics.reconnects > reconnects, "a retry")
        assert table_state(config, "public.stored") == ("Synced", None)
        assert replica("SELECT count(*) FROM stored") == [(1,)]

        warehouse_server.execute(
            "DROP TRIGGER zetl_test_refuse ON public.stored", config.replica_database
        )  # space is back
        wait_for(lambda: replica("SELECT count(*) FROM stored") == [(50,)], "every change")
        assert table_state(config, "public.stored") == ("Synced", None)
        assert replicator.metrics.tables_failed == 0
    result = zetl(config, "verify")
    assert result.returncode == 0, result.stdout
