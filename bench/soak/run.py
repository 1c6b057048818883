"""Soak: the compose platform under a steady workload while seeded random faults hit it.

`make soak` (ZETL_SOAK_MINUTES, default 60; ZETL_SOAK_SEED; ZETL_SOAK_RATE) starts the data
path of docker-compose.yml (source, warehouse, migrate, loader, generator, replicator) under a
compose project of its own, with bench/soak/docker-compose.soak.yml on top: TCP proxies on the
replicator's own network, and the warehouse's data on a small loop-device filesystem. The
generator writes at a steady rate the whole time. Faults come one at a time, each kind at least
once in a seeded random order, then seeded random kinds until the time is up:

- replicator_kill: the replicator's container killed with SIGKILL (docker restarts it);
- source_kill, warehouse_kill: the server's container killed with SIGKILL, then started;
- network_cut: the replicator's network disconnected for a while, then connected again;
- stall_source, stall_warehouse: the replicator's open connections to that server frozen (they
  stay open and send nothing) while new ones work; released if zetl has not recovered by itself;
- disk_full: the warehouse's filesystem filled to the last block for a while, then freed;
- slot_lost: with the replicator stopped, max_slot_wal_keep_size lets the source remove WAL the
  slot still needs (wal_status = lost); the replicator must refuse rather than leave a silent
  gap, and the documented recovery (`zetl replicate --reset`: every table copied again) runs.

After each fault the time until `zetl verify` is clean is measured (the generator keeps
writing). At the end the generator stops and every table is compared row by row, source against
replica, by SQL of this module's own (primary key and an md5 of every column's text): rows
lost, duplicated, extra or different, per table, and every table's zero-ETL state. The report
(JSON, and a table on stdout) gives the time to recover per fault kind. Exit 1 when a fault was
not recovered from, a row differs, or a table is not Synced.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import psycopg2

from bench.soak.faults import KINDS, Fault, Injector, Timing
from bench.soak.platform import (
    PASSWORDS,
    ROOT,
    SERVICES,
    SUPERUSER,
    Platform,
    all_synced,
    log,
    replica_lsn,
    small_disk,
    source_lsn,
    table_states,
    wait_until,
)
from bench.soak.rowcheck import compare, differences
from tests.harness import free_port


def recover(platform: Platform, fault: Fault, limit: float) -> None:
    """Seconds from now (the fault restored) until `zetl verify` is clean and every table is
    Synced: verify compares Synced tables only, so a table left Failed would pass it. A table
    Failed by the fault gets what AWS documents for one, a refresh of the tables in error."""
    restored = time.monotonic()
    watch = threading.Thread(target=note_caught_up, args=(platform, fault, limit), daemon=True)
    watch.start()
    while time.monotonic() - restored < limit:
        fault.verify_attempts += 1
        verify = platform.zetl("verify", timeout=limit)
        states = table_states(platform)
        not_synced = {t: s for t, s in states.items() if s != "Synced"}
        if verify.returncode == 0 and states and not not_synced:
            fault.recovered_s = round(time.monotonic() - restored, 1)
            return
        fault.observed["last_verify"] = (verify.stderr.strip() or verify.stdout.strip())[-300:]
        failed = sorted(t for t, s in not_synced.items() if s == "Failed")
        if failed and "refreshed" not in fault.observed:
            fault.observed["refreshed"] = failed
            fault.operator_action = "zetl refresh INERROR TABLES"
            platform.zetl("refresh", "INERROR", "TABLES", warehouse_role="zetl_replicator")
        time.sleep(2)


def note_caught_up(platform: Platform, fault: Fault, limit: float) -> None:
    """When the replica had applied everything the source held at the restore: apart from
    the verify that follows (under a running workload, one verify round can see the two
    sides at different moments and need another)."""
    target = 0

    def caught_up() -> bool:
        nonlocal target
        target = target or source_lsn(platform)  # a source still starting: once it answers
        return replica_lsn(platform) >= target

    took = wait_until(caught_up, limit, every=1)
    fault.caught_up_s = None if took is None else round(took, 1)


def schedule(rng: random.Random, kinds: tuple[str, ...]) -> Iterator[str]:
    """Every kind once in a random order, then random kinds for as long as asked."""
    first = list(kinds)
    rng.shuffle(first)
    yield from first
    while True:
        yield rng.choice(kinds)


def inject_faults(
    platform: Platform, rng: random.Random, timing: Timing, kinds: tuple[str, ...], minutes: float
) -> Iterator[Fault]:
    """Faults one after another, each followed by its recovery, until ``minutes`` have passed
    and every kind has come at least once."""
    injector = Injector(platform, rng, timing)
    started = time.monotonic()
    seen: set[str] = set()
    for kind in schedule(rng, kinds):
        if time.monotonic() - started > minutes * 60 and seen >= set(kinds):
            return
        time.sleep(rng.uniform(*timing.gap))
        fault = Fault(kind, round(time.monotonic() - started, 1))
        log(f"fault: {kind}")
        try:
            getattr(injector, kind)(fault)
        except (subprocess.CalledProcessError, psycopg2.Error, OSError) as exc:
            detail = getattr(exc, "stderr", "") or ""
            fault.observed["injection_error"] = f"{exc} {detail}"[-500:]
        recover(platform, fault, timing.recover_limit)
        seen.add(kind)
        log(
            f"  held {fault.held_s} s, recovered after {fault.recovered_s} s"
            f" (operator action: {fault.operator_action}); {fault.observed}"
        )
        if fault.recovered_s is None:
            log(platform.compose("logs", "--tail", "40", "replicator").stdout[-4000:])
        yield fault


def final_check(platform: Platform, limit: float) -> tuple[dict[str, dict[str, int]], float | None]:
    """With the generator stopped, every row compared once the replica has caught up (or
    what differs after ``limit``), and how long catching up took."""
    platform.compose("stop", "generator")
    found: dict[str, dict[str, int]] = {}
    replica_db = platform.env["ZETL_REPLICA_DATABASE"]

    def equal() -> bool:
        nonlocal found
        with (
            psycopg2.connect(platform.url("SOURCE", "storefront")) as source,
            psycopg2.connect(platform.url("WAREHOUSE", replica_db)) as replica,
        ):
            found = compare(source, replica)
        return differences(found) == 0

    caught_up = wait_until(equal, limit, every=5)
    return found, caught_up


def median_of(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return round(statistics.median(known), 1) if known else None


def summary(faults: list[Fault]) -> dict[str, dict[str, Any]]:
    by_kind: dict[str, dict[str, Any]] = {}
    for kind in KINDS:
        times = [f.recovered_s for f in faults if f.kind == kind]
        done = [t for t in times if t is not None]
        by_itself = [
            f
            for f in faults
            if f.kind == kind and f.recovered_s is not None and not f.operator_action
        ]
        by_kind[kind] = {
            "injected": len(times),
            "recovered": len(done),
            "by_itself": len(by_itself),
            "recover_median_s": round(statistics.median(done), 1) if done else None,
            "recover_max_s": max(done) if done else None,
            "caught_up_median_s": median_of([f.caught_up_s for f in faults if f.kind == kind]),
        }
    return by_kind


def print_report(report: dict[str, Any]) -> None:
    print(f"\nsoak: {report['minutes']} min, seed {report['seed']}, {report['rate']} events/s")
    print(
        f"{'fault kind':<17}{'injected':>9}{'recovered':>10}{'by itself':>10}"
        f"{'median s':>10}{'max s':>8}{'caught up s':>13}"
    )
    for kind, s in report["by_kind"].items():
        if not s["injected"]:
            continue
        median = "-" if s["recover_median_s"] is None else s["recover_median_s"]
        worst = "-" if s["recover_max_s"] is None else s["recover_max_s"]
        print(
            f"{kind:<17}{s['injected']:>9}{s['recovered']:>10}{s['by_itself']:>10}"
            f"{median:>10}{worst:>8}{s['caught_up_median_s'] or '-':>13}"
        )
    print(
        "(recovered: verify clean and every table Synced; by itself: no operator action;"
        " caught up: the replica past where the source was when the fault was undone)"
    )
    header = f"{'table':<28}{'source':>8}{'replica':>8}{'lost':>6}{'dup':>5}{'extra':>6}"
    print(f"\n{header}{'diff':>6}  state")
    for name, t in report["tables"].items():
        print(
            f"{name:<28}{t.get('source_rows', 0):>8}{t.get('replica_rows', 0):>8}"
            f"{t.get('lost', 0):>6}{t.get('duplicated', 0):>5}{t.get('extra', 0):>6}"
            f"{t.get('different', 0):>6}  {report['states'].get('public.' + name, '-')}"
        )
    print(f"\nresult: {'PASS' if report['ok'] else 'FAIL'}")


def platform_env(rate: int, device: str) -> dict[str, str]:
    """Its own ports, passwords and image tag: it runs beside any other checkout's stack."""
    env = dict(
        os.environ,
        **PASSWORDS,
        SOURCE_USER=SUPERUSER,
        WAREHOUSE_USER=SUPERUSER,
        SOURCE_PORT=str(free_port()),
        WAREHOUSE_PORT=str(free_port()),
        GENERATOR_METRICS_PORT=str(free_port()),
        REPLICATOR_METRICS_PORT=str(free_port()),
        ZETL_IMAGE_TAG="soak",
        ZETL_GENERATOR_RATE=str(rate),
        ZETL_REPLICA_DATABASE="raw_transactions",
        ZETL_SOAK_WAREHOUSE_DEVICE=device,
    )
    env.setdefault("POSTGRES_IMAGE", "postgres:17")
    return env


def soak(
    minutes: float, seed: int, rate: int, kinds: tuple[str, ...], report_path: Path, keep: bool
) -> int:
    rng = random.Random(seed)
    timing = Timing.for_minutes(minutes)
    project = f"zetl-soak-{uuid.uuid4().hex[:8]}"
    faults: list[Fault] = []
    report: dict[str, Any] = {
        "minutes": minutes,
        "seed": seed,
        "rate": rate,
        "kinds": list(kinds),
        "project": project,
        "tables": {},
        "states": {},
    }
    with small_disk(project) as device:
        platform = Platform(project, platform_env(rate, device))
        try:
            log(f"compose project {project}: building and starting {', '.join(SERVICES)}")
            up = platform.compose("up", "-d", "--build", *SERVICES, check=False)
            if up.returncode != 0:
                print(up.stdout[-3000:], up.stderr[-3000:], file=sys.stderr)
                return 1
            if wait_until(lambda: all_synced(platform), 600) is None:
                log("the platform never became Synced")
                print(platform.compose("logs", "--tail", "80").stdout[-6000:], file=sys.stderr)
                return 1
            log(f"Synced; generator at {rate}/s; faults for {minutes} min")
            started = time.monotonic()
            faults.extend(inject_faults(platform, rng, timing, kinds, minutes))
            report["fault_phase_s"] = round(time.monotonic() - started, 1)
            report["events_generated"] = platform.generated()
            report["tables"], caught_up = final_check(platform, timing.recover_limit)
            report["caught_up_after_generator_stop_s"] = caught_up
            report["states"] = table_states(platform)
        finally:
            report["faults"] = [asdict(f) for f in faults]
            report["by_kind"] = summary(faults)
            if not keep:
                platform.compose("down", "--volumes", "--remove-orphans", check=False)
    report["ok"] = bool(
        report["tables"]
        and differences(report["tables"]) == 0
        and all(f.recovered_s is not None for f in faults)
        and {f.kind for f in faults} >= set(kinds)
        and report["states"]
        and all(s == "Synced" for s in report["states"].values())
    )
    report_path.parent.mkdir(parents=True, exist_ok=True)
    report_path.write_text(json.dumps(report, indent=2) + "\n")
    print_report(report)
    log(f"report: {report_path}")
    return 0 if report["ok"] else 1


def stop(signum: int, _frame: object) -> None:
    """A stopped soak still takes its platform down (the finally blocks run): the first
    SIGTERM ends the run, later ones (make passes its own on to its children) are ignored."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    sys.exit(128 + signum)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    env = os.environ.get
    parser.add_argument("--minutes", type=float, default=float(env("ZETL_SOAK_MINUTES", "60")))
    parser.add_argument("--seed", type=int, default=int(env("ZETL_SOAK_SEED", "1")))
    parser.add_argument("--rate", type=int, default=int(env("ZETL_SOAK_RATE", "10")))
    parser.add_argument("--kinds", default=",".join(KINDS), help="fault kinds, comma-separated")
    parser.add_argument("--report", type=Path, help="JSON report (default: bench/soak/results/)")
    parser.add_argument("--keep", action="store_true", help="leave the platform running")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, stop)
    kinds = tuple(k for k in args.kinds.split(",") if k)
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown or not kinds:
        parser.error(f"unknown fault kind(s) {', '.join(unknown)}; known: {', '.join(KINDS)}")
    name = f"soak-{args.minutes:g}min-seed{args.seed}.json"
    report = args.report or ROOT / "bench/soak/results" / name
    sys.exit(soak(args.minutes, args.seed, args.rate, kinds, report, args.keep))


if __name__ == "__main__":
    main()
