"""The soak's compose platform: its own project, ports, passwords and small warehouse disk,
and the few things the soak asks of it (containers, superuser SQL, positions, zetl itself)."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg2

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILES = ("docker-compose.yml", "bench/soak/docker-compose.soak.yml")
SERVICES = (
    "source",
    "warehouse",
    "source-proxy",
    "warehouse-proxy",
    "migrate",
    "loader",
    "generator",
    "replicator",
)
SUPERUSER = "zetl"
PASSWORDS = {
    "SOURCE_PASSWORD": "soak-source",
    "WAREHOUSE_PASSWORD": "soak-warehouse",
    "ZETL_OWNER_PASSWORD": "soak-owner",
    "ZETL_APP_PASSWORD": "soak-app",
    "ZETL_REPLICATION_PASSWORD": "soak-replication",
    "ZETL_ANALYST_PASSWORD": "soak-analyst",
    "ZETL_REPLICATOR_PASSWORD": "soak-replicator",
    "ZETL_TRANSFORM_PASSWORD": "soak-transform",
    "ZETL_DQ_PASSWORD": "soak-dq",
    "ZETL_DASHBOARD_PASSWORD": "soak-dashboard",
    "ZETL_ORCHESTRATION_PASSWORD": "soak-orchestration",
    "ZETL_REDSHIFT_PASSWORD": "soak-redshift",
}
WAREHOUSE_DISK_BYTES = 1 << 30


def log(message: str) -> None:
    print(f"[soak {datetime.now(UTC):%H:%M:%S}] {message}", flush=True)


def run(*args: str, check: bool = True, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, check=check, **kwargs)


def compose_command() -> list[str]:
    configured = os.environ.get("COMPOSE")
    if configured:
        return shlex.split(configured)
    probe = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
    return ["docker", "compose"] if probe.returncode == 0 else ["docker-compose"]


@contextmanager
def small_disk(name: str) -> Iterator[str]:
    """An ext4 filesystem of WAREHOUSE_DISK_BYTES on a loop device (no reserved blocks, so
    filling it as root fills it for the server too); the device path."""
    with tempfile.TemporaryDirectory(prefix=f"{name}-") as folder:
        image = Path(folder) / "warehouse.img"
        with image.open("wb") as f:
            f.truncate(WAREHOUSE_DISK_BYTES)  # sparse: takes room only as it fills
        run("mkfs.ext4", "-q", "-F", "-m", "0", str(image))
        # losetup needs root: sudo where the soak runs as a user (a hosted CI runner).
        sudo = ["sudo"] if os.geteuid() != 0 else []
        device = run(*sudo, "losetup", "--find", "--show", str(image)).stdout.strip()
        try:
            yield device
        finally:
            run(*sudo, "losetup", "-d", device, check=False)


@dataclass
class Platform:
    project: str
    env: dict[str, str]

    def compose(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        files = [arg for f in COMPOSE_FILES for arg in ("-f", f)]
        return subprocess.run(
            [*compose_command(), "-p", self.project, *files, *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            check=check,
        )

    def container(self, service: str) -> str:
        return self.compose("ps", "-q", service).stdout.strip()

    def state(self, service: str) -> str:
        """running, exited, restarting... and the health where there is a check."""
        found = run(
            "docker",
            "inspect",
            "-f",
            "{{.State.Status}}{{if .State.Health}} {{.State.Health.Status}}{{end}}",
            self.container(service),
            check=False,
        )
        return found.stdout.strip() or "absent"

    def kill_9(self, service: str) -> None:
        """SIGKILL to the container's main process from the host, as a crash or the OOM killer
        would send it: to Docker the container died (so its restart policy applies), unlike
        `docker kill`, which Docker counts as stopping it on purpose."""
        pid = run("docker", "inspect", "-f", "{{.State.Pid}}", self.container(service)).stdout
        sudo = ["sudo"] if os.geteuid() != 0 else []
        run(*sudo, "kill", "-KILL", pid.strip())

    def ensure_running(self, service: str, grace: float = 10.0) -> bool:
        """Docker's restart policy brings a killed container back; start it if it did not.
        Whether the policy did."""
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            if self.state(service).startswith("running"):
                return True
            time.sleep(0.5)
        self.compose("start", service)
        return False

    def superuser_sql(self, service: str, *statements: str) -> str:
        """Each statement in its own transaction (ALTER SYSTEM runs outside one)."""
        database = "storefront" if service == "source" else "dev"
        commands = [arg for statement in statements for arg in ("-c", statement)]
        return run(
            "docker",
            "exec",
            self.container(service),
            "psql",
            "-U",
            SUPERUSER,
            "-d",
            database,
            "-Atq",
            "-v",
            "ON_ERROR_STOP=1",
            *commands,
        ).stdout.strip()

    def logs_since(self, service: str, since: datetime) -> str:
        found = run(
            "docker", "logs", "--since", since.isoformat(), self.container(service), check=False
        )
        return found.stdout + found.stderr

    def url(self, which: str, database: str, role: str = SUPERUSER) -> str:
        if role == SUPERUSER:
            password = PASSWORDS[f"{which}_PASSWORD"]
        else:
            password = PASSWORDS[f"ZETL_{role.removeprefix('zetl_').upper()}_PASSWORD"]
        return f"postgresql://{role}:{password}@127.0.0.1:{self.env[f'{which}_PORT']}/{database}"

    def zetl(
        self, *args: str, timeout: float = 300, warehouse_role: str = "zetl_dashboard"
    ) -> subprocess.CompletedProcess[str]:
        """The host's zetl with the read-only roles, as the README runs it (a refresh writes
        to the replica database: the replicator's role)."""
        env = dict(
            self.env,
            SOURCE_DATABASE_URL=self.url("SOURCE", "storefront", "zetl_analyst"),
            WAREHOUSE_DATABASE_URL=self.url("WAREHOUSE", "dev", warehouse_role),
        )
        try:
            return subprocess.run(
                [str(ROOT / ".venv/bin/zetl"), *args],
                env=env,
                capture_output=True,
                text=True,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired as exc:
            return subprocess.CompletedProcess(exc.cmd, 124, "", f"timed out after {timeout} s")

    def volume(self, name: str) -> str:
        return f"{self.project}_{name}"

    def on_warehouse_disk(self, script: str) -> str:
        """A shell script run as root in a helper container that mounts the warehouse's volume
        at /d: it works while the warehouse itself cannot start."""
        return run(
            "docker",
            "run",
            "--rm",
            "-v",
            f"{self.volume('warehouse-data')}:/d",
            self.env["POSTGRES_IMAGE"],
            "sh",
            "-c",
            script,
        ).stdout.strip()

    def healthy(self) -> bool:
        """The replicator's /healthz (it fails once apply has not moved for a while)."""
        url = f"http://127.0.0.1:{self.env['REPLICATOR_METRICS_PORT']}/healthz"
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return bool(response.status == 200)
        except OSError:  # an HTTP error status too
            return False

    def generated(self) -> int:
        url = f"http://127.0.0.1:{self.env['GENERATOR_METRICS_PORT']}/metrics"
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                text = response.read().decode()
        except OSError:
            return -1
        return sum(
            int(float(line.rsplit(" ", 1)[1]))
            for line in text.splitlines()
            if line.startswith("zetl_generator_events_total")
        )


def lsn(text: str) -> int:
    high, _, low = text.partition("/")
    return (int(high, 16) << 32) + int(low, 16)


def source_lsn(platform: Platform) -> int:
    url = platform.url("SOURCE", "storefront")
    with psycopg2.connect(url, connect_timeout=5) as conn, conn.cursor() as cur:
        cur.execute("SELECT pg_current_wal_lsn()::text")
        return lsn(cur.fetchone()[0])  # type: ignore[index]


def replica_lsn(platform: Platform) -> int:
    """The replicator's applied position (0 while the warehouse does not answer)."""
    try:
        url = platform.url("WAREHOUSE", platform.env["ZETL_REPLICA_DATABASE"])
        with psycopg2.connect(url, connect_timeout=5) as conn, conn.cursor() as cur:
            cur.execute("SELECT max(applied_lsn)::text FROM zetl.replication_progress")
            row = cur.fetchone()
            return lsn(row[0]) if row and row[0] else 0
    except psycopg2.Error:
        return 0


def wait_until(condition: Callable[[], bool], limit: float, every: float = 2.0) -> float | None:
    """Seconds until ``condition`` held, or None after ``limit``."""
    started = time.monotonic()
    while time.monotonic() - started < limit:
        try:
            if condition():
                return time.monotonic() - started
        except (psycopg2.Error, OSError, subprocess.CalledProcessError):
            pass
        time.sleep(every)
    return None


def status_of(platform: Platform) -> dict[str, Any]:
    """`zetl status --json` (printed also when it exits 1 for an unhealthy integration)."""
    status = platform.zetl("status", "--json", timeout=60)
    try:
        found = json.loads(status.stdout)
    except ValueError:
        return {"error": (status.stderr.strip() or status.stdout.strip())[-300:]}
    return found if isinstance(found, dict) else {}


def table_states(platform: Platform) -> dict[str, str]:
    return {t["table"]: t["state"] for t in status_of(platform).get("tables", [])}


def all_synced(platform: Platform) -> bool:
    states = table_states(platform)
    return bool(states) and all(s == "Synced" for s in states.values())
