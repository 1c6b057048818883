"""A replicated warehouse for the transform tests: a migrated source filled by the generator,
the replicator streaming it into a replica database of the warehouse, and ``dev`` beside it.
These tests drive three services together, so they live in tests/, not beside one of them."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.harness import PostgresServer
from tests.support import drop_slots, fingerprint, running, wait_for
from zetl.schema.migrate import upgrade
from zetl_generator.workload import Workload, WorkloadOptions
from zetl_replicator.config import ReplicatorConfig


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
            timeout=120,
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
    platform = Platform(
        source_url, warehouse_server.url(dev_db), warehouse_server.url(replica), replica,
        warehouse_server,
    )  # fmt: skip
    platform.generate(3000, seed=7)
    try:
        with running(config, timeout=120):
            platform.wait_replicated()
            yield platform
    finally:
        drop_slots(source_url)
        warehouse_server.drop_database(replica)
        warehouse_server.drop_database(dev_db)
        source_server.drop_database(source_db)
