"""Fixtures for the replicator's tests: a config per test and a replicator running in a thread."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import psycopg2
import pytest

from tests.harness import PostgresServer
from zetl_replicator.config import ReplicatorConfig
from zetl_replicator.pipeline import Replicator

pytestmark = pytest.mark.docker


def drop_slots(source_url: str) -> None:
    """Drop the test database's slots (Postgres refuses to drop a database that has any)."""
    conn = psycopg2.connect(source_url)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            for _ in range(50):
                cur.execute(
                    "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots"
                    " WHERE database = current_database() AND active_pid IS NOT NULL"
                )
                cur.execute(
                    "SELECT count(*) FROM pg_replication_slots"
                    " WHERE database = current_database() AND active"
                )
                row = cur.fetchone()
                if row is not None and row[0] == 0:
                    break
                time.sleep(0.1)
            cur.execute(
                "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots"
                " WHERE database = current_database() AND NOT temporary"
            )
    finally:
        conn.close()


@pytest.fixture
def config(
    source_url: str, warehouse_url: str, warehouse_server: PostgresServer
) -> Iterator[ReplicatorConfig]:
    """A replicator configuration of its own: its slot, publication and replica database."""
    tag = uuid.uuid4().hex[:10]
    replica = f"replica_{tag}"
    yield ReplicatorConfig(
        source_url=source_url,
        warehouse_url=warehouse_url,
        replica_database=replica,
        slot=f"zetl_{tag}",
        publication="zetl_publication",
        batch_max_seconds=0.2,
        discovery_interval_seconds=0.5,
    )
    drop_slots(source_url)
    warehouse_server.drop_database(replica)


@pytest.fixture
def replica(config: ReplicatorConfig, warehouse_server: PostgresServer) -> Callable[[str], list]:  # type: ignore[type-arg]
    """Run a query in the replica database and return its rows."""

    def query(statement: str) -> list:  # type: ignore[type-arg]
        conn = warehouse_server.connect(config.replica_database)
        try:
            with conn.cursor() as cur:
                cur.execute(statement)
                return cur.fetchall()
        finally:
            conn.close()

    return query


@contextmanager
def running(config: ReplicatorConfig) -> Iterator[Replicator]:
    """A replicator streaming in a background thread for the duration of the block."""
    replicator = Replicator(config)
    stop = threading.Event()
    errors: list[BaseException] = []

    def target() -> None:
        try:
            replicator.run(stop)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=target, name="test-replicator", daemon=True)
    thread.start()
    try:
        wait_for(lambda: replicator.metrics.streaming or bool(errors), "replicator streaming")
        if errors:
            raise errors[0]
        yield replicator
    finally:
        stop.set()
        thread.join(timeout=30)
    if errors:
        raise errors[0]


def wait_for(predicate: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def env_for(config: ReplicatorConfig) -> dict[str, str]:
    """The environment that makes ``zetl`` commands use ``config``."""
    return {
        "SOURCE_DATABASE_URL": config.source_url,
        "WAREHOUSE_DATABASE_URL": config.warehouse_url,
        "ZETL_REPLICA_DATABASE": config.replica_database,
        "ZETL_SLOT": config.slot,
        "ZETL_PUBLICATION": config.publication,
        "ZETL_BATCH_MAX_SECONDS": str(config.batch_max_seconds),
        "ZETL_DISCOVERY_INTERVAL_SECONDS": str(config.discovery_interval_seconds),
        "ZETL_DATA_FILTER": config.data_filter,
    }
