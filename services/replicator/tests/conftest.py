"""Fixtures for the replicator's tests: a config per test (tests.support runs a replicator)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest

from tests.harness import PostgresServer
from tests.support import drop_slots
from zetl_replicator.config import ReplicatorConfig

pytestmark = pytest.mark.docker


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
