"""Fixtures for the replicator's tests: a config per test (tests.support runs a replicator),
and the ``docker`` mark on every test here that starts a Postgres server."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.harness import PostgresServer
from tests.support import drop_slots
from zetl_replicator.config import ReplicatorConfig

# The fixtures that start a server in a container: the harness's (the URL and config fixtures
# depend on them) and test_restarts' own.
SERVER_FIXTURES = frozenset({"source_server", "warehouse_server", "restartable_servers"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark ``docker`` each test of this directory that needs a server, from the fixtures it
    uses: pytest reads no ``pytestmark`` in a conftest, and a mark that follows the fixtures
    cannot be forgotten on a new test, nor put on a module's tests that need no server."""
    here = Path(__file__).parent
    for item in items:
        uses = set(getattr(item, "fixturenames", ()))
        if item.path.is_relative_to(here) and uses & SERVER_FIXTURES:
            item.add_marker(pytest.mark.docker)


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
