"""kill -9 at random points under write load: nothing lost, nothing applied twice."""

from __future__ import annotations

import random
import signal
import subprocess
import threading
import time

import psycopg2
import pytest

from services.replicator.tests.support import (
    applied_lsn,
    execute,
    fingerprint,
    rows,
    start_replicator,
)
from tests.support import wait_for
from zetl_replicator.config import ReplicatorConfig
from zetl_replicator.ops.verify import verify

pytestmark = pytest.mark.slow

KILLS = 5
# How long a (re)started replicator may take to apply its first change: generous, because on a
# loaded machine start-up alone can take seconds.
FIRST_APPLY_TIMEOUT_S = 180.0


def write_load(url: str, stop: threading.Event, seed: int, done: list[int]) -> None:
    """Small transactions of inserts, updates and deletes over two generic tables."""
    rng = random.Random(seed)
    conn = psycopg2.connect(url)
    try:
        while not stop.is_set():
            account, delta = rng.randint(1, 200), rng.randint(-50, 100)
            with conn.cursor() as cur:
                cur.execute("INSERT INTO ledger (account, delta) VALUES (%s, %s)", (account, delta))
                cur.execute(
                    "UPDATE accounts SET balance = balance + %s, note = md5(random()::text)"
                    " WHERE id = %s",
                    (delta, account),
                )
                if rng.random() < 0.1:  # reverse an old entry: a delete and an update
                    cur.execute(
                        "WITH gone AS (DELETE FROM ledger WHERE id = (SELECT min(id) FROM ledger)"
                        " RETURNING account, delta) UPDATE accounts a SET balance = balance -"
                        " gone.delta FROM gone WHERE a.id = gone.account"
                    )
            conn.commit()
            done[0] += 1
            time.sleep(0.002)
    finally:
        conn.close()


def lsn_value(lsn: str) -> int:
    high, low = lsn.split("/")
    return (int(high, 16) << 32) | int(low, 16)


def wait_for_new_progress(
    replicator: subprocess.Popen[bytes], replica_url: str, before: str | None
) -> str:
    """The replica's applied LSN once it moved past ``before``: this replicator has applied
    something since it started. A wall-clock timer instead would kill a replicator that is
    still importing or connecting on a slow machine, and test nothing."""
    moved: list[str] = []

    def applied_since_start() -> bool:
        if replicator.poll() is not None:
            raise AssertionError(f"the replicator exited with {replicator.returncode}")
        now = applied_lsn(replica_url)
        if now is not None and (before is None or lsn_value(now) > lsn_value(before)):
            moved.append(now)
        return bool(moved)

    wait_for(applied_since_start, f"a new applied LSN after {before}", FIRST_APPLY_TIMEOUT_S)
    return moved[0]


def test_kill_9_under_load_then_verify(config: ReplicatorConfig) -> None:
    src = config.source_url
    execute(
        src,
        "CREATE TABLE accounts (id int PRIMARY KEY, balance bigint NOT NULL, note text)",
        "CREATE TABLE ledger (id bigserial PRIMARY KEY, account int NOT NULL,"
        " delta bigint NOT NULL, at timestamptz NOT NULL DEFAULT now())",
        "INSERT INTO accounts SELECT g, 0, NULL FROM generate_series(1, 200) g",
    )
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    stop, done = threading.Event(), [0]
    load = threading.Thread(target=write_load, args=(src, stop, seed, done), daemon=True)
    load.start()
    replica_url = config.warehouse_url.rsplit("/", 1)[0] + "/" + config.replica_database
    progress_at_kill: list[str | None] = []
    before: str | None = None
    try:
        for _ in range(KILLS):
            replicator = start_replicator(config)
            try:
                wait_for_new_progress(replicator, replica_url, before)
                # Then a random moment inside the apply loop (mid-batch, mid-commit, between
                # acknowledgements): where the kill lands is what varies, not whether it lands
                # after the first apply.
                time.sleep(rng.uniform(0.0, 1.5))
            finally:
                replicator.send_signal(signal.SIGKILL)
                replicator.wait()
            before = applied_lsn(replica_url)
            progress_at_kill.append(before)
    finally:
        stop.set()
        load.join(timeout=30)
    assert done[0] > 100, f"the write load committed only {done[0]} transactions (seed {seed})"
    # Every kill hit a replicator that was applying, not one still starting up.
    assert None not in progress_at_kill, progress_at_kill
    lsns = [lsn_value(lsn) for lsn in progress_at_kill if lsn is not None]
    assert lsns == sorted(lsns) and len(set(lsns)) == KILLS, progress_at_kill

    replicator = start_replicator(config)
    try:
        report = verify(config)
        assert report.ok, f"seed {seed}: {report}"
        assert {c.table for c in report.checks} == {"public.accounts", "public.ledger"}
        for table in ("accounts", "ledger"):
            assert fingerprint(src, table) == fingerprint(replica_url, f"public.{table}"), seed
        assert rows(replica_url, "SELECT sum(balance) FROM public.accounts") == rows(
            replica_url, "SELECT sum(delta) FROM public.ledger"
        )
    finally:
        replicator.terminate()
        replicator.wait(timeout=30)
