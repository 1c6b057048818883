"""The faults: each injects itself, restores what it broke and notes what it saw; the run
measures the recovery after it."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bench.soak.platform import (
    Platform,
    all_synced,
    replica_lsn,
    run,
    source_lsn,
    status_of,
    wait_until,
)

KINDS = (
    "replicator_kill",
    "source_kill",
    "warehouse_kill",
    "network_cut",
    "stall_source",
    "stall_warehouse",
    "disk_full",
    "slot_lost",
)
FILL_FILE = "zetl-soak-fill"


@dataclass(frozen=True)
class Timing:
    """How long a fault lasts and how long recovery may take: shorter in the CI version."""

    gap: tuple[float, float]  # steady running between two faults
    hold: tuple[float, float]  # a cut network, a full disk, a server down
    stall_limit: float  # how long a frozen connection is left for zetl to notice by itself
    recover_limit: float  # a fault not recovered from within this long is a failure

    @staticmethod
    def for_minutes(minutes: float) -> Timing:
        if minutes < 15:
            return Timing(gap=(5, 15), hold=(5, 15), stall_limit=75, recover_limit=300)
        return Timing(gap=(30, 120), hold=(10, 60), stall_limit=150, recover_limit=600)


@dataclass
class Fault:
    kind: str
    at_s: float  # seconds since the workload started
    held_s: float = 0.0
    recovered_s: float | None = None  # restored -> clean verify with every table Synced
    caught_up_s: float | None = None  # restored -> replica past the source's position then
    verify_attempts: int = 0
    # What an operator had to do, as the docs say, where zetl did not recover by itself.
    operator_action: str | None = None
    observed: dict[str, Any] = field(default_factory=dict)


class Injector:
    def __init__(self, platform: Platform, rng: random.Random, timing: Timing) -> None:
        self.platform = platform
        self.rng = rng
        self.timing = timing

    def hold(self) -> float:
        seconds = round(self.rng.uniform(*self.timing.hold), 1)
        time.sleep(seconds)
        return seconds

    def replicator_kill(self, fault: Fault) -> None:
        self.platform.kill_9("replicator")
        fault.observed["restarted_by_docker"] = self.platform.ensure_running("replicator")

    def _server_kill(self, service: str, fault: Fault) -> None:
        self.platform.kill_9(service)
        started = time.monotonic()
        fault.observed["restarted_by_docker"] = self.platform.ensure_running(service)
        fault.held_s = round(time.monotonic() - started, 1)

    def source_kill(self, fault: Fault) -> None:
        self._server_kill("source", fault)

    def warehouse_kill(self, fault: Fault) -> None:
        self._server_kill("warehouse", fault)

    def network_cut(self, fault: Fault) -> None:
        network = f"{self.platform.project}_replicator-net"
        replicator = self.platform.container("replicator")
        run("docker", "network", "disconnect", "-f", network, replicator)
        fault.held_s = self.hold()
        fault.observed["replicator_during_cut"] = self.platform.state("replicator")
        run("docker", "network", "connect", network, replicator, check=False)

    def _stall(self, proxy: str, fault: Fault) -> None:
        """Freeze the open connections; zetl recovers by itself if it notices and reconnects
        (the replica moves past where the source was at the freeze). Released otherwise."""
        run("docker", "kill", "-s", "USR1", self.platform.container(proxy))
        frozen = time.monotonic()
        # Caught up means past what the generator wrote after the freeze.
        time.sleep(2)
        target = source_lsn(self.platform)
        unhealthy_after: float | None = None

        def caught_up() -> bool:
            nonlocal unhealthy_after
            if unhealthy_after is None and not self.platform.healthy():
                unhealthy_after = round(time.monotonic() - frozen, 1)
            return replica_lsn(self.platform) >= target

        by_itself = wait_until(caught_up, self.timing.stall_limit)
        fault.observed["noticed_by_itself_after_s"] = (
            None if by_itself is None else round(by_itself, 1)
        )
        fault.observed["healthz_unhealthy_after_s"] = unhealthy_after
        fault.held_s = round(time.monotonic() - frozen, 1)
        if by_itself is None:
            fault.operator_action = "none possible: the frozen connections were released"
        run("docker", "kill", "-s", "USR2", self.platform.container(proxy))

    def stall_source(self, fault: Fault) -> None:
        self._stall("source-proxy", fault)

    def stall_warehouse(self, fault: Fault) -> None:
        self._stall("warehouse-proxy", fault)

    def disk_full(self, fault: Fault) -> None:
        filled_at = datetime.now(UTC)
        free = self.platform.on_warehouse_disk(
            f"dd if=/dev/zero of=/d/{FILL_FILE} bs=1M 2>/dev/null; sync; df -k /d | tail -1"
        )
        fault.observed["after_fill"] = " ".join(free.split()[1:5])  # size used avail use%
        started = time.monotonic()
        # Pages with room left absorb a light workload for a while: the disk stays full
        # until the warehouse has refused a write for want of space (or a limit), then a while.
        bitten = wait_until(
            lambda: "No space left on device" in self.platform.logs_since("warehouse", filled_at),
            self.timing.stall_limit,
        )
        fault.observed["first_refusal_after_s"] = None if bitten is None else round(bitten, 1)
        self.hold()
        fault.held_s = round(time.monotonic() - started, 1)
        fault.observed["warehouse_while_full"] = self.platform.state("warehouse")
        fault.observed["replicator_while_full"] = self.platform.state("replicator")
        fault.observed["warehouse_no_space_errors"] = self.platform.logs_since(
            "warehouse", filled_at
        ).count("No space left on device")
        self.platform.on_warehouse_disk(f"rm -f /d/{FILL_FILE}")
        self.platform.ensure_running("warehouse", grace=10)

    def slot_lost(self, fault: Fault) -> None:
        p = self.platform
        p.compose("stop", "replicator")
        p.superuser_sql(
            "source", "ALTER SYSTEM SET max_slot_wal_keep_size = '1MB'", "SELECT pg_reload_conf()"
        )
        started = time.monotonic()

        def slot_lost() -> bool:
            # The generator writes on; switching segments and a checkpoint let the server
            # remove what the limit no longer protects.
            p.superuser_sql("source", "SELECT pg_switch_wal()", "CHECKPOINT")
            status = p.superuser_sql(
                "source", "SELECT wal_status FROM pg_replication_slots WHERE slot_type = 'logical'"
            )
            return status == "lost"

        lost_after = wait_until(slot_lost, 180, every=1)
        p.superuser_sql(
            "source", "ALTER SYSTEM RESET max_slot_wal_keep_size", "SELECT pg_reload_conf()"
        )
        fault.held_s = round(time.monotonic() - started, 1)
        fault.observed["slot_lost_after_s"] = None if lost_after is None else round(lost_after, 1)
        p.compose("start", "replicator")
        # What zetl does with a lost slot: it must refuse (a resync is needed), not stream on.
        refused = wait_until(
            lambda: "lost" in p.compose("logs", "--tail", "50", "replicator").stdout, 60
        )
        seen = status_of(p)
        fault.observed["replicator_refused"] = refused is not None
        fault.observed["status_error"] = seen.get("error")
        fault.observed["integration_state"] = seen.get("integration_state")
        fault.observed["last_error"] = (seen.get("last_error") or "")[:200]
        fault.observed["slot_health"] = seen.get("slot_health")
        # The documented recovery (docs/replication.md, slot recovery): every table copied again.
        p.compose("stop", "replicator")
        reset = p.compose("run", "--rm", "-d", "--no-deps", "replicator", "replicate", "--reset")
        one_off = reset.stdout.strip().splitlines()[-1]

        def copied_again() -> bool:  # a new slot, and every table copied through it
            slot = p.superuser_sql(
                "source", "SELECT wal_status FROM pg_replication_slots WHERE slot_type = 'logical'"
            )
            return slot in ("reserved", "extended") and all_synced(p)

        copied = wait_until(copied_again, self.timing.recover_limit)
        fault.observed["resync_by_reset_s"] = None if copied is None else round(copied, 1)
        run("docker", "stop", "-t", "30", one_off, check=False)
        run("docker", "rm", "-f", one_off, check=False)
        p.compose("start", "replicator")
        fault.operator_action = "zetl replicate --reset (docs/replication.md, slot recovery)"
