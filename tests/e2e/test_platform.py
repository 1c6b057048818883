"""The whole local platform from docker-compose.yml, as a newcomer starts it.

source + warehouse → migrate → loader (data/raw) → generator → replicator: the sample export
and a live workload must reach the warehouse replica, every table Synced, and `zetl verify`
must find source and replica identical once the workload stops.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg2
import pytest

from tests.harness import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.docker]
ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "zetl-e2e"
TIMEOUT_S = 240


def _compose_command() -> list[str]:
    configured = os.environ.get("COMPOSE")
    if configured:
        return shlex.split(configured)
    probe = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
    return ["docker", "compose"] if probe.returncode == 0 else ["docker-compose"]


@dataclass
class Platform:
    project: str
    env: dict[str, str]

    def compose(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*_compose_command(), "-p", self.project, *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            check=check,
        )

    def url(self, which: str, database: str) -> str:
        return f"postgresql://zetl:{PASSWORD}@127.0.0.1:{self.env[f'{which}_PORT']}/{database}"

    def zetl(self, *args: str) -> subprocess.CompletedProcess[str]:
        """The host's zetl, pointed at the platform's published ports."""
        env = dict(
            self.env,
            SOURCE_DATABASE_URL=self.url("SOURCE", "storefront"),
            WAREHOUSE_DATABASE_URL=self.url("WAREHOUSE", "dev"),
        )
        return subprocess.run(
            [str(ROOT / ".venv/bin/zetl"), *args], env=env, capture_output=True, text=True
        )

    def exit_code(self, service: str) -> int | None:
        container = self.compose("ps", "-q", service).stdout.strip()
        if not container:
            return None
        state = subprocess.run(
            ["docker", "inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", container],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        return int(state[1]) if state[0] == "exited" else None


def wait_for(what: str, condition: Callable[[], bool], platform: Platform) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except (psycopg2.Error, OSError):
            pass  # not up yet
        time.sleep(2)
    logs = platform.compose("logs", "--tail", "40", check=False).stdout
    pytest.fail(f"timed out waiting for {what}\n{logs}")


@pytest.fixture(scope="module")
def platform() -> Iterator[Platform]:
    env = dict(
        os.environ,
        SOURCE_PASSWORD=PASSWORD,
        WAREHOUSE_PASSWORD=PASSWORD,
        SOURCE_PORT=str(free_port()),
        WAREHOUSE_PORT=str(free_port()),
        GENERATOR_METRICS_PORT=str(free_port()),
        REPLICATOR_METRICS_PORT=str(free_port()),
        ZETL_GENERATOR_RATE="20",
    )
    running = Platform(f"zetl-e2e-{uuid.uuid4().hex[:8]}", env)
    build = running.compose("build", check=False)
    assert build.returncode == 0, build.stdout + build.stderr
    up = running.compose("up", "-d", check=False)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        yield running
    finally:
        running.compose("down", "--volumes", "--remove-orphans", check=False)


def table_counts(url: str) -> dict[str, int]:
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT table_name FROM information_schema.tables"
            " WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY 1"
        )
        tables = [name for (name,) in cur.fetchall()]
        counts = {}
        for table in tables:
            cur.execute(f'SELECT count(*) FROM public."{table}"')
            counts[table] = cur.fetchone()[0]  # type: ignore[index]
        return counts


def test_sample_export_and_workload_reach_the_warehouse(platform: Platform) -> None:
    wait_for("the loader to finish", lambda: platform.exit_code("loader") is not None, platform)
    assert platform.exit_code("migrate") == 0
    assert platform.exit_code("loader") == 0, platform.compose("logs", "loader").stdout

    metrics_url = f"http://127.0.0.1:{platform.env['GENERATOR_METRICS_PORT']}/metrics"

    def generated() -> int:
        text = urllib.request.urlopen(metrics_url, timeout=5).read().decode()
        return sum(
            int(float(line.rsplit(" ", 1)[1]))
            for line in text.splitlines()
            if line.startswith("zetl_generator_events_total")
        )

    wait_for("the generator to write 100 events", lambda: generated() >= 100, platform)

    def all_synced() -> bool:
        status = platform.zetl("status", "--json")
        tables = json.loads(status.stdout)["tables"] if status.returncode == 0 else []
        return bool(tables) and all(t["state"] == "Synced" for t in tables)

    wait_for("every table to be Synced", all_synced, platform)

    platform.compose("stop", "generator")
    source = platform.url("SOURCE", "storefront")
    replica = platform.url("WAREHOUSE", "raw_transactions")
    wait_for(
        "the replica to catch up",
        lambda: table_counts(replica) == table_counts(source),
        platform,
    )
    counts = table_counts(source)
    assert counts["store_transaction"] > 12 and counts["customer"] > 9
    verify = platform.zetl("verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr
