"""The live workload against a real source database: rules, determinism, restarts, rate."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg2
import pytest

from tests.harness import PostgresServer, running_postgres
from tests.support import wait_for
from zetl.schema.migrate import upgrade
from zetl.schema.rules import check_rules
from zetl_generator.mix import EventKind, Mix
from zetl_generator.workload import Workload, WorkloadOptions

pytestmark = pytest.mark.docker
TABLES = (
    "publisher",
    "game",
    "game_listing",
    "affiliate",
    "customer",
    "store_transaction",
    "store_transaction_line",
    "wallet_transaction",
)


def broken_rules(url: str) -> dict[str, list[str]]:
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        return {r.rule.name: r.examples for r in check_rules(cur) if r.violations}


def business_rows(url: str) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table, without the audit timestamps (those are wall-clock)."""
    rows = {}
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        for table in TABLES:
            cur.execute(
                "SELECT string_agg(quote_ident(column_name), ', ' ORDER BY ordinal_position)"
                " FROM information_schema.columns WHERE table_schema = 'public'"
                " AND table_name = %s AND column_name NOT IN ('created_at', 'updated_at')",
                (table,),
            )
            (columns,) = cur.fetchone() or ("",)
            cur.execute(f"SELECT {columns} FROM {table} ORDER BY id")
            rows[table] = cur.fetchall()
    return rows


def run(url: str, **options: object) -> Workload:
    workload = Workload(url, WorkloadOptions(**options))  # type: ignore[arg-type]
    workload.run(threading.Event())
    return workload


@pytest.fixture
def migrated_source(source_url: str) -> str:
    upgrade(source_url)
    return source_url


def test_ten_thousand_events_keep_every_rule_and_every_kind_flows(migrated_source: str) -> None:
    workload = run(migrated_source, max_events=10_000, seed=42)
    assert workload.stats.total == 10_000
    assert set(workload.stats.events) == set(EventKind), "every kind of event was written"
    assert broken_rules(migrated_source) == {}
    with psycopg2.connect(migrated_source) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM customer WHERE display_name IS NULL")
        assert cur.fetchone()[0] > 0, "erasures anonymised players with history"  # type: ignore[index]


def test_events_are_dated_now(migrated_source: str) -> None:
    """The live workload's business time is the present: a data team compares it to today."""
    before = datetime.now(UTC)
    run(migrated_source, max_events=300, seed=4)
    after = datetime.now(UTC)
    with psycopg2.connect(migrated_source) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT min(t), max(t), count(*) FROM (SELECT signed_up_at FROM customer"
            " UNION ALL SELECT occurred_at FROM store_transaction"
            " UNION ALL SELECT occurred_at FROM wallet_transaction) AS business(t)"
        )
        earliest, latest, count = cur.fetchone()  # type: ignore[misc]
    assert count > 0
    assert before <= earliest <= latest <= after + timedelta(seconds=1), (earliest, latest)


def test_same_seed_and_state_give_identical_rows(source_server: PostgresServer) -> None:
    """With the simulated clock, timestamps included."""
    first, second = source_server.create_database(), source_server.create_database()
    try:
        for database in (first, second):
            upgrade(source_server.url(database))
            run(source_server.url(database), max_events=2_000, seed=7, simulated_clock=True)
        rows = business_rows(source_server.url(first))
        assert rows == business_rows(source_server.url(second))
        assert len(rows["store_transaction"]) > 100
        other = source_server.create_database()
        upgrade(source_server.url(other))
        run(source_server.url(other), max_events=2_000, seed=8, simulated_clock=True)
        assert business_rows(source_server.url(other)) != rows, "the seed matters"
        source_server.drop_database(other)
    finally:
        source_server.drop_database(first)
        source_server.drop_database(second)


def test_a_second_run_continues_after_the_first(migrated_source: str) -> None:
    run(migrated_source, max_events=500, seed=1)
    run(migrated_source, max_events=500, seed=1)  # same seed: new codes must not collide
    assert broken_rules(migrated_source) == {}


def test_rate_is_held_within_ten_percent(migrated_source: str) -> None:
    # What is checked is the pacing, not the database's speed: the rate is one a loaded
    # machine keeps up with (an event takes a few ms; 50 ms apart leave room for a slow one,
    # which the pacer catches up on), and the run ends at an event count, not a duration, so
    # a stall cannot shorten it. Over the paced events only: building the workload and
    # connecting are not part of the rate asked for.
    workload = run(migrated_source, rate=20, max_events=120, seed=3)
    stats = workload.stats
    assert stats.total == 120
    # N events paced 1/rate apart span (N - 1)/rate seconds from the first.
    achieved = (stats.total - 1) / (stats.last_event - stats.started)
    assert 18 <= achieved <= 22, achieved


def test_mix_restricts_the_event_kinds(migrated_source: str) -> None:
    weights = ",".join(f"{kind.value}=0" for kind in EventKind if kind != EventKind.SIGNUP)
    workload = run(migrated_source, max_events=50, mix=Mix.parse(weights + ",signup=1"))
    assert dict(workload.stats.events) == {EventKind.SIGNUP: 50}


@pytest.fixture
def restartable_source() -> Iterator[PostgresServer]:
    with running_postgres({}, restartable=True) as server:
        yield server


# Generous: a loaded machine runs the workload slowly.
WAIT_S = 120.0


def test_generator_survives_a_database_restart(restartable_source: PostgresServer) -> None:
    url = restartable_source.url()
    upgrade(url)
    workload = Workload(url, WorkloadOptions(rate=200, seed=5))
    stop = threading.Event()
    runner = threading.Thread(target=workload.run, args=(stop,))
    runner.start()
    try:
        wait_for(lambda: workload.stats.total > 0, "the first events", WAIT_S)
        before = workload.stats.total
        assert workload.healthy()
        restartable_source.restart()
        wait_for(lambda: workload.stats.reconnects > 0, "a reconnect", WAIT_S)
        wait_for(lambda: workload.stats.total > before + 50, "events after the restart", WAIT_S)
    finally:
        stop.set()
        runner.join(timeout=30)
    assert before > 0
    assert workload.stats.reconnects >= 1
    assert not workload.healthy(), "stopped: no longer healthy"
    assert workload.stats.total > before + 50, "it went on writing after the restart"
    assert broken_rules(url) == {}


def _zetl(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SOURCE_DATABASE_URL": url}
    return subprocess.run(
        [sys.executable, "-m", "zetl", *args], env=env, capture_output=True, text=True, timeout=120
    )


def test_an_unmigrated_database_is_a_clear_config_error(source_url: str) -> None:
    result = _zetl(source_url, "generate", "--max-events", "5")
    assert result.returncode == 2, result.stderr
    assert "run `zetl migrate` first" in result.stderr and "Traceback" not in result.stderr


def test_an_unwritable_export_directory_is_a_clear_config_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    result = _zetl(
        "postgresql://unused",
        "generate",
        "export",
        "--format",
        "players",
        "--out",
        str(blocker / "out"),
    )
    assert result.returncode == 2
    assert "cannot write the export to" in result.stderr and "Traceback" not in result.stderr


def test_check_exits_1_and_names_the_broken_rule(migrated_source: str) -> None:
    run(migrated_source, max_events=300, seed=2)
    assert _zetl(migrated_source, "generate", "check").returncode == 0
    with psycopg2.connect(migrated_source) as conn, conn.cursor() as cur:
        cur.execute(
            "UPDATE store_transaction SET total_amount = total_amount + 1"
            " WHERE id = (SELECT min(id) FROM store_transaction WHERE transaction_type = 'sale')"
        )
    result = _zetl(migrated_source, "generate", "check")
    assert result.returncode == 1
    assert re.search(r"header_total_matches_lines +BROKEN by 1 rows", result.stdout)


def erased_players(url: str) -> set[str]:
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute("SELECT customer_code FROM customer WHERE display_name IS NULL")
        return {code for (code,) in cur.fetchall()}


def test_two_generators_at_once_never_undo_an_erasure(migrated_source: str) -> None:
    """Two workloads on one source (a second `zetl generate`, or a container being replaced):
    a profile update that picked a player just before another session erased them must not
    write the name and email back."""
    history = "deposit=5,kyc_decision=5,signup=5,profile_update=0,erasure=0"
    run(migrated_source, max_events=600, seed=11, mix=Mix.parse(history))
    churn = Mix.parse(
        ",".join(f"{kind.value}=0" for kind in EventKind) + ",profile_update=10,erasure=1"
    )
    stop = threading.Event()
    failures: list[BaseException] = []

    def generate(seed: int) -> None:
        try:
            Workload(migrated_source, WorkloadOptions(seed=seed, mix=churn)).run(stop)
        except BaseException as exc:  # reported by the assertion below
            failures.append(exc)

    workers = [threading.Thread(target=generate, args=(seed,)) for seed in (21, 22)]
    for worker in workers:
        worker.start()
    seen: set[str] = set()
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not failures:
            now = erased_players(migrated_source)
            assert seen <= now, f"erased players came back: {sorted(seen - now)}"
            seen = now
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=60)
    assert not failures, failures
    assert seen, "the workloads erased players"
