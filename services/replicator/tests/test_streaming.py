"""Streamed in-progress transactions: applied while they run, committed or rolled back whole.

The source database gets ``logical_decoding_work_mem = 64kB``, so any transaction of more than a
few hundred rows reaches the replicator in stream blocks before it commits.
"""

from __future__ import annotations

import signal
import threading
import time
import urllib.error
import urllib.request

import psycopg2

from services.replicator.tests.support import (
    Query,
    execute,
    fingerprint,
    replica_url,
    rows,
    same_as_source,
    start_replicator,
)
from services.replicator.tests.support import applied_lsn as stored_lsn
from tests.harness import free_port
from tests.support import running, wait_for
from zetl_replicator.config import ReplicatorConfig
from zetl_replicator.ops.verify import verify
from zetl_replicator.source.pgoutput import str_to_lsn


def stream_small_transactions(config: ReplicatorConfig) -> None:
    database = config.source_url.rsplit("/", 1)[1]
    execute(
        config.source_url,
        f"ALTER DATABASE {database} SET logical_decoding_work_mem = '64kB'",
        "CREATE TABLE big (id int PRIMARY KEY, payload text, n int)",
        "CREATE TABLE small (id int PRIMARY KEY, v int)",
    )


def current_lsn(url: str) -> int:
    return str_to_lsn(str(rows(url, "SELECT pg_current_wal_lsn()::text")[0][0]))


def applied_lsn(replica: Query) -> int:
    return str_to_lsn(str(replica("SELECT applied_lsn::text FROM zetl.replication_progress")[0][0]))


def test_streamed_transactions_commit_abort_and_subtransactions(
    config: ReplicatorConfig, replica: Query
) -> None:
    src = config.source_url
    stream_small_transactions(config)
    execute(src, "INSERT INTO small VALUES (1, 0)")
    with running(config) as replicator:
        big = psycopg2.connect(src)
        with big.cursor() as cur:
            cur.execute(
                "INSERT INTO big SELECT g, repeat('p', 100), 0 FROM generate_series(1, 3000) g"
            )
            # A transaction committing meanwhile: applied before the changes that follow it.
            execute(src, "INSERT INTO small VALUES (2, 0)", "UPDATE small SET v = 1 WHERE id = 1")
            wait_for(lambda: replicator.metrics.streamed_applied_live == 1, "a live stream")
            cur.execute("UPDATE small SET v = v + 10")  # rows that committed after it began
            cur.execute("SAVEPOINT a")
            cur.execute("INSERT INTO big SELECT g, 'gone', 0 FROM generate_series(5001, 7000) g")
            cur.execute("ROLLBACK TO SAVEPOINT a")  # a subtransaction aborts on its own
            cur.execute("SAVEPOINT b")
            cur.execute("UPDATE big SET n = 1 WHERE id <= 2000")
            cur.execute("RELEASE SAVEPOINT b")
            cur.execute("DELETE FROM big WHERE id > 2900")
        # Not visible in the replica before the source commits.
        assert replica("SELECT count(*) FROM public.big") == [(0,)]
        before_commit = current_lsn(src)
        big.commit()
        wait_for(lambda: same_as_source(config, "big", "small"), "the streamed commit")
        assert replica("SELECT count(*), sum(n) FROM public.big") == [(2900, 2000)]
        assert replica("SELECT id, v FROM public.small ORDER BY id") == [(1, 11), (2, 10)]
        assert applied_lsn(replica) > before_commit  # stored with the data: past the commit

        # A streamed transaction that aborts leaves nothing, and what committed meanwhile stays.
        with big.cursor() as cur:
            cur.execute(
                "INSERT INTO big SELECT g, 'aborted', 0 FROM generate_series(10001, 13000) g"
            )
            execute(src, "INSERT INTO small VALUES (3, 3)")
            wait_for(lambda: replicator.metrics.streamed_applied_live == 2, "a second live stream")
            cur.execute("UPDATE big SET n = 5 WHERE id > 10000")
        big.rollback()
        big.close()
        execute(src, "INSERT INTO small VALUES (4, 4)")
        wait_for(
            lambda: replica("SELECT count(*) FROM public.small") == [(4,)],
            "the transactions after the abort",
        )
        assert same_as_source(config, "big", "small")
        assert replica("SELECT table_name, rows_applied FROM zetl.table_state ORDER BY 1") == [
            ("big", 3000 + 2000 + 100),
            ("small", 2 + 2 + 1 + 1),
        ]
        assert verify(config).ok


def test_two_streamed_transactions_at_once(config: ReplicatorConfig, replica: Query) -> None:
    """The second one is spooled and applied at its commit, which comes first here."""
    src = config.source_url
    stream_small_transactions(config)
    with running(config) as replicator:
        first, second = psycopg2.connect(src), psycopg2.connect(src)
        with first.cursor() as one, second.cursor() as two:
            one.execute("INSERT INTO big SELECT g, 'one', 1 FROM generate_series(1, 3000) g")
            wait_for(lambda: replicator.metrics.streamed_applied_live == 1, "a live stream")
            two.execute("INSERT INTO big SELECT g, 'two', 2 FROM generate_series(3001, 6000) g")
            two.execute("SAVEPOINT s")
            two.execute("INSERT INTO big SELECT g, 'gone', 2 FROM generate_series(9001, 9900) g")
            two.execute("ROLLBACK TO SAVEPOINT s")
            execute(src, "INSERT INTO small VALUES (1, 1)")
            second.commit()
            wait_for(lambda: replicator.metrics.streamed_spooled >= 1, "a spooled stream")
            one.execute("UPDATE big SET n = 10 WHERE id > 3000")  # the second's rows
        first.commit()
        first.close()
        second.close()
        wait_for(lambda: same_as_source(config, "big", "small"), "both transactions")
        assert replica("SELECT n, count(*) FROM public.big GROUP BY n ORDER BY n") == [
            (1, 3000),
            (10, 3000),
        ]


def metric(port: int, name: str) -> float | None:
    """A value from the /metrics endpoint of a replicator process, None until it answers."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text = response.read().decode()
    except (urllib.error.URLError, OSError):
        return None
    for line in text.splitlines():
        if line.startswith(f"zetl_replicator_{name} "):
            return float(line.split()[1])
    return None


def test_kill_9_during_a_live_streamed_transaction(config: ReplicatorConfig) -> None:
    src = config.source_url
    stream_small_transactions(config)
    execute(src, "INSERT INTO small VALUES (1, 0)")
    port = free_port()
    replicator = start_replicator(config, {"ZETL_METRICS_PORT": str(port)})
    wait_for(lambda: stored_lsn(replica_url(config)) is not None, "the initial copy")
    stop = threading.Event()

    def small_load() -> None:
        conn = psycopg2.connect(src)
        conn.autocommit = True
        with conn.cursor() as cur:
            while not stop.is_set():
                cur.execute("UPDATE small SET v = v + 1 WHERE id = 1")
                time.sleep(0.01)
        conn.close()

    load = threading.Thread(target=small_load, daemon=True)
    load.start()
    try:
        big = psycopg2.connect(src)
        with big.cursor() as cur:
            for chunk in range(10):  # a transaction of a few seconds, streamed as it goes
                cur.execute(
                    "INSERT INTO big SELECT g, repeat('k', 100), 0 FROM"
                    f" generate_series({chunk * 1000 + 1}, {chunk * 1000 + 1000}) g"
                )
                time.sleep(0.3)
                if chunk == 6:
                    # The kill must land inside the live stream, not before the replicator saw
                    # it: wait until it applies this transaction as it arrives.
                    wait_for(
                        lambda: (metric(port, "streamed_live_total") or 0) >= 1,
                        "the big transaction applied live",
                        180,
                    )
                    replicator.send_signal(signal.SIGKILL)
                    replicator.wait()
                    replicator = start_replicator(config)
        big.commit()
        big.close()
    finally:
        stop.set()
        load.join(timeout=30)
    try:
        wait_for(lambda: same_as_source(config, "big", "small"), "the replica after kill -9", 60)
        assert fingerprint(replica_url(config), "public.big")[0][0] == 10000
        assert verify(config).ok
    finally:
        replicator.terminate()
        replicator.wait(timeout=30)
