"""A small platform for the data-quality checks: a source filled by the generator's workload,
replicated by the replicator (in a thread) into a warehouse, and the marts built by dbt in the
warehouse's own ``dev`` database. These tests drive four services together (generator,
replicator, dbt, the checks), so they live in tests/, not beside one of them."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg2
import pytest

from tests.harness import PostgresServer, require_docker
from tests.support import build_marts, drop_slots, running
from zetl.schema.migrate import upgrade
from zetl_generator.workload import Workload, WorkloadOptions
from zetl_replicator.config import ReplicatorConfig
from zetl_replicator.ops.verify import verify

EVENTS = 3_000


@dataclass(frozen=True)
class Platform:
    source: PostgresServer
    warehouse: PostgresServer
    config: ReplicatorConfig
    dev: str  # the warehouse's own database (WAREHOUSE_DATABASE_URL)
    expectations: Path

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "SOURCE_DATABASE_URL": self.config.source_url,
            "WAREHOUSE_DATABASE_URL": self.config.warehouse_url,
            "ZETL_REPLICA_DATABASE": self.config.replica_database,
            "ZETL_SLOT": self.config.slot,
            "ZETL_PUBLICATION": self.config.publication,
            "ZETL_EXPECTATIONS_DIR": str(self.expectations),
            "ZETL_LOG_LEVEL": "WARNING",
        }

    def dq(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "zetl", "dq", *args],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=600,
        )

    def execute(self, server: PostgresServer, database: str, statement: str) -> list[tuple]:  # type: ignore[type-arg]
        conn = server.connect(database)
        try:
            with conn.cursor() as cur:
                cur.execute(statement)
                return cur.fetchall() if cur.description else []
        finally:
            conn.close()


@pytest.fixture(scope="module")
def platform(
    source_server: PostgresServer,
    warehouse_server: PostgresServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Platform]:
    require_docker()
    source_db = source_server.create_database("dq_source")
    dev = warehouse_server.create_database("dq_dev")
    tag = uuid.uuid4().hex[:10]
    config = ReplicatorConfig(
        source_url=source_server.url(source_db),
        warehouse_url=warehouse_server.url(dev),
        replica_database=f"replica_{tag}",
        slot=f"zetl_{tag}",
        batch_max_seconds=0.2,
        discovery_interval_seconds=0.5,
    )
    upgrade(config.source_url)
    Workload(config.source_url, WorkloadOptions(max_events=EVENTS, seed=9)).run(threading.Event())
    try:
        with running(config, timeout=120):
            assert verify(config).ok, "the replica caught up with the source"
            build_marts(config.warehouse_url, config.replica_database)
            yield Platform(
                source_server,
                warehouse_server,
                config,
                dev,
                tmp_path_factory.mktemp("expectations"),
            )
    finally:
        drop_slots(config.source_url)
        warehouse_server.drop_database(config.replica_database)
        warehouse_server.drop_database(dev)
        source_server.drop_database(source_db)


def checkpoint_results(platform: Platform) -> list[tuple]:  # type: ignore[type-arg]
    conn = psycopg2.connect(platform.config.warehouse_url)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT checkpoint, success, evaluated, successful, failed,"
                " failed_expectations, report FROM zetl_dq.checkpoint_result ORDER BY started_at"
            )
            return cur.fetchall()
    finally:
        conn.close()
