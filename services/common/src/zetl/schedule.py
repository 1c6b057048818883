"""``zetl schedule``: the compose platform's clock for the batch services.

- ``zetl schedule transform``: waits until the replica is settled (every table Synced, or
  Failed for good), runs ``zetl transform``, then again every ZETL_TRANSFORM_INTERVAL seconds
  (default 300; the models are incremental, so a run costs what changed).
- ``zetl schedule dq``: after each transform that finished (a new row in
  zetl_transform.run_log), runs every checkpoint (``zetl dq list --names``), or those
  ZETL_DQ_CHECKPOINTS names.

Each step runs as a child ``zetl`` process, exactly the command a person would type; a
failed step is logged with its exit code and tried again at the next turn, so one bad run
never stops the platform. SIGTERM (docker stop) ends the wait at once.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import psycopg2
import typer

from zetl import integration
from zetl.db import connect, is_connection_lost, with_database
from zetl.errors import ConfigError, ZetlError, first_line
from zetl.settings import EnvSpec, Settings, seconds, setting

logger = logging.getLogger("zetl.schedule")
schedule_app = typer.Typer(
    help="Run transform on a clock and the data-quality checkpoints after each transform.",
    no_args_is_help=True,
)
DEFAULT_TRANSFORM_INTERVAL = 300.0
POLL_SECONDS = 5.0


def register(app: typer.Typer) -> None:
    app.add_typer(schedule_app, name="schedule")


@dataclass(frozen=True)
class ScheduleSettings(EnvSpec):
    transform_interval: float = setting(
        "ZETL_TRANSFORM_INTERVAL", DEFAULT_TRANSFORM_INTERVAL, seconds
    )
    # Comma-separated; empty: every checkpoint `zetl dq list` names.
    dq_checkpoints: str = setting("ZETL_DQ_CHECKPOINTS", "")


def dq_checkpoints(chosen: str | None) -> list[str]:
    """The checkpoints a dq round runs: those ``chosen`` names (comma-separated), else every
    one the quality service defines (``zetl dq list --names``: its list is the one source)."""
    if chosen:
        checkpoints = [c.strip() for c in chosen.split(",") if c.strip()]
        if not checkpoints:
            raise ConfigError("ZETL_DQ_CHECKPOINTS names no checkpoint")
        return checkpoints
    command = [sys.executable, "-m", "zetl", "dq", "list", "--names"]
    done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    listed = done.stdout.split()
    if done.returncode != 0 or not listed:
        reason = first_line(done.stderr) or f"exit code {done.returncode}"
        raise ConfigError(f"`zetl dq list --names` gave no checkpoint: {reason}")
    return listed


def _stop_event() -> threading.Event:
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    return stop


def run_zetl(args: Sequence[str]) -> int:
    """One step, as the command line runs it; its output goes to this service's logs."""
    logger.info("step started", extra={"command": "zetl " + " ".join(args)})
    command = [sys.executable, "-m", "zetl", *args]
    code = subprocess.run(command, check=False).returncode  # noqa: S603 - our own CLI
    log = logger.info if code == 0 else logger.warning
    log("step finished", extra={"command": "zetl " + " ".join(args), "exit_code": code})
    return code


@dataclass(frozen=True)
class ReplicaState:
    tables: int
    unsettled: int

    @property
    def settled(self) -> bool:
        return self.tables > 0 and self.unsettled == 0


def replica_state(warehouse_url: str, replica_database: str) -> ReplicaState:
    """Per-table states from svv_integration_table_state in the warehouse database, or from the
    replicator's own state store in the replica where that view is not there."""
    conn = connect(warehouse_url, connect_timeout=5)
    try:
        with conn.cursor() as cur:
            tables = integration.read_tables(cur)
            if tables is not None:
                return ReplicaState(len(tables), sum(not t.settled for t in tables))
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (replica_database,))
            if cur.fetchone() is None:
                return ReplicaState(0, 0)  # the replicator has not created it yet
    finally:
        conn.close()
    replica = connect(with_database(warehouse_url, replica_database), connect_timeout=5)
    try:
        with replica.cursor() as cur:
            cur.execute("SELECT to_regclass('zetl.table_state') IS NOT NULL")
            row = cur.fetchone()
            if not (row and row[0]):
                return ReplicaState(0, 0)
            cur.execute(
                "SELECT count(*), count(*) FILTER (WHERE state = ANY(%s)) FROM zetl.table_state",
                (sorted(integration.UNSETTLED),),
            )
            found = cur.fetchone()
            return ReplicaState(*(found or (0, 0)))
    finally:
        replica.close()


def last_transform(warehouse_url: str) -> str | None:
    """The run_id of the newest finished transform, if any."""
    conn = connect(warehouse_url, connect_timeout=5)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT to_regclass('zetl_transform.run_log') IS NOT NULL")
            row = cur.fetchone()
            if not (row and row[0]):
                return None
            cur.execute(
                "SELECT run_id::text FROM zetl_transform.run_log WHERE finished_at IS NOT NULL"
                " ORDER BY finished_at DESC LIMIT 1"
            )
            found = cur.fetchone()
            return None if found is None else str(found[0])
    finally:
        conn.close()


def _probe(what: str, probe: Callable[[], object]) -> object | None:
    """A probe of the warehouse; a server not up yet (or restarting) is a None, not a crash."""
    try:
        return probe()
    except (ZetlError, psycopg2.Error) as exc:
        if not is_connection_lost(exc):
            raise
        logger.info("warehouse not reachable yet", extra={"probe": what})
        return None


@schedule_app.command("transform")
def schedule_transform(
    once: bool = typer.Option(False, "--once", help="one run once the replica is settled"),
) -> None:
    """`zetl transform` once the replica is Synced, then every ZETL_TRANSFORM_INTERVAL s."""
    settings = Settings.from_env()
    url = settings.require_warehouse()
    interval = ScheduleSettings.from_env().transform_interval
    stop = _stop_event()
    waiting_logged = False
    while not stop.is_set():
        state = _probe("replica state", lambda: replica_state(url, settings.replica_database))
        if isinstance(state, ReplicaState) and state.settled:
            break
        if not waiting_logged:
            logger.info("waiting for the replica to be Synced before the first transform")
            waiting_logged = True
        stop.wait(POLL_SECONDS)
    while not stop.is_set():
        run_zetl(["transform"])
        if once:
            return
        stop.wait(interval)


@schedule_app.command("dq")
def schedule_dq(
    once: bool = typer.Option(False, "--once", help="stop after the first round of checkpoints"),
) -> None:
    """Every checkpoint (or those of ZETL_DQ_CHECKPOINTS) after each finished transform run."""
    url = Settings.from_env().require_warehouse()
    checkpoints = dq_checkpoints(ScheduleSettings.from_env().dq_checkpoints)
    stop = _stop_event()
    seen: str | None = None
    logger.info("waiting for a transform run", extra={"checkpoints": checkpoints})
    while not stop.is_set():
        newest = _probe("transform runs", lambda: last_transform(url))
        if isinstance(newest, str) and newest != seen:
            seen = newest
            for checkpoint in checkpoints:
                run_zetl(["dq", "run", checkpoint])
            if once:
                return
        stop.wait(POLL_SECONDS)
