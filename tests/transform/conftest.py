"""A replicated warehouse for the transform tests: a migrated source filled by the generator,
the replicator streaming it into a replica database of the warehouse, and ``dev`` beside it."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import psycopg2
import pytest

from tests.harness import PostgresServer
from zetl.schema.migrate import upgrade
from zetl_generator.workload import Workload, WorkloadOptions
from zetl_replicator.config import ReplicatorConfig
from zetl_replicator.pipeline import Replicator

TABLES = (
    "affiliate",
    "customer",
    "game",
    "game_listing",
    "game_source_key",
    "publisher",
    "publisher_source_key",
    "store_transaction",
    "store_transaction_line",
    "wallet_transaction",
)


def query(url: str, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    conn = psycopg2.connect(url)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(statement, params)
            return cur.fetchall() if cur.description else []
    finally:
        conn.close()


def wait_for(predicate: Callable[[], bool], what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def fingerprint(url: str) -> list[tuple[Any, ...]]:
    """Per replicated table: rows, id total and latest change (equal once caught up)."""
    union = " UNION ALL ".join(
        f"SELECT '{t}', count(*), coalesce(sum(id), 0), max(updated_at) FROM {t}" for t in TABLES
    )
    return query(url, union + " ORDER BY 1")


@dataclass
class Platform:
    source_url: str
    warehouse_url: str  # the warehouse database dbt builds in (`dev`)
    replica_url: str
    replica_database: str
    server: PostgresServer

    def generate(self, events: int, seed: int) -> None:
        Workload(self.source_url, WorkloadOptions(max_events=events, seed=seed)).run(
            threading.Event()
        )

    def wait_replicated(self) -> None:
        wait_for(
            lambda: fingerprint(self.source_url) == fingerprint(self.replica_url),
            "the replica to catch up with the source",
        )


@pytest.fixture(scope="module")
def platform(source_server: PostgresServer, warehouse_server: PostgresServer) -> Iterator[Platform]:
    source_db = source_server.create_database("transform_src")
    dev_db = warehouse_server.create_database("transform_dev")
    tag = uuid.uuid4().hex[:10]
    replica = f"replica_{tag}"
    source_url = source_server.url(source_db)
    upgrade(source_url)
    config = ReplicatorConfig(
        source_url=source_url,
        warehouse_url=warehouse_server.url(dev_db),
        replica_database=replica,
        slot=f"zetl_{tag}",
        publication="zetl_publication",
        batch_max_seconds=0.2,
        discovery_interval_seconds=0.5,
    )
    replicator = Replicator(config)
    stop = threading.Event()
    errors: list[BaseException] = []

    def target() -> None:
        try:
            replicator.run(stop)
        except BaseException as exc:
            errors.append(exc)

    platform = Platform(
        source_url, warehouse_server.url(dev_db), warehouse_server.url(replica), replica,
        warehouse_server,
    )  # fmt: skip
    platform.generate(3000, seed=7)
    thread = threading.Thread(target=target, name="transform-replicator", daemon=True)
    thread.start()
    try:
        wait_for(lambda: replicator.metrics.streaming or bool(errors), "replicator streaming")
        if errors:
            raise errors[0]
        platform.wait_replicated()
        yield platform
    finally:
        stop.set()
        thread.join(timeout=30)
        _drop_slots(source_url)
        warehouse_server.drop_database(replica)
        warehouse_server.drop_database(dev_db)
        source_server.drop_database(source_db)


def _drop_slots(source_url: str) -> None:
    conn = psycopg2.connect(source_url)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots"
                " WHERE database = current_database() AND active_pid IS NOT NULL"
            )
            wait_for(
                lambda: (
                    not query(
                        source_url,
                        "SELECT 1 FROM pg_replication_slots WHERE database = current_database()"
                        " AND active",
                    )
                ),
                "the slot to be released",
                timeout=30,
            )
            cur.execute(
                "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots"
                " WHERE database = current_database()"
            )
    finally:
        conn.close()
