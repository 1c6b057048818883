"""Helpers the cross-service tests share (beside the real-Postgres harness in tests.harness):
waiting for a condition, one-shot queries, a replica's fingerprint, building the marts, a
replicator streaming in a background thread, and dropping a test database's replication slots."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg2

from zetl_replicator.config import ReplicatorConfig
from zetl_replicator.pipeline import Replicator
from zetl_transform.project import project_dir
from zetl_transform.runner import RunOutcome, build

# The replicated tables the fingerprint covers (every generator table with an id and updated_at).
TABLES = (
    "affiliate",
    "customer",
    "game",
    "game_listing",
    "game_source_key",
    "publisher",
    "publisher_source_key",
    "store_transaction",
    "store_transaction_line",
    "wallet_transaction",
)
# The marts, in the order each may depend on the ones before it (the marts checkpoint takes
# its own list from the dbt manifest: those with a meta zetl_quality grain).
MARTS = (
    "daily_player_transactions",
    "player_top_three_deposits",
    "agg_discord_deposits_by_country",
    "daily_revenue",
    "transaction_reconciliation",
    "publisher_payouts",
)


def wait_for(
    predicate: Callable[[], bool],
    what: str,
    timeout: float = 30.0,
    *,
    every: float = 0.1,
    ignoring: tuple[type[Exception], ...] = (),
) -> None:
    """Poll ``predicate`` every ``every`` seconds until it holds; fail naming ``what`` once
    ``timeout`` has passed. An error of a kind in ``ignoring`` (a server not up yet) counts as
    not yet, and is raised if it is still what the last poll saw."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if predicate():
                return
            last: Exception | None = None
        except ignoring as exc:
            last = exc
        if time.monotonic() > deadline:
            if last is not None:
                raise last
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(every)


def query(url: str, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Run one statement in its own committed transaction; its rows, if it returns any."""
    conn = psycopg2.connect(url)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(statement, params or None)
            return cur.fetchall() if cur.description else []
    finally:
        conn.close()


def fingerprint(url: str) -> list[tuple[Any, ...]]:
    """Per replicated table: rows, id total and latest change (equal once caught up)."""
    union = " UNION ALL ".join(
        f"SELECT '{t}', count(*), coalesce(sum(id), 0), max(updated_at) FROM {t}" for t in TABLES
    )
    return query(url, union + " ORDER BY 1")


def build_marts(
    warehouse_url: str,
    replica_database: str,
    *,
    full_refresh: bool = False,
    project: Path | None = None,
) -> RunOutcome:
    """The marts of ``project`` (transform/ by default), as `zetl transform` builds them
    (postgres_fdw link, then dbt build, which writes the project's target/manifest.json); a
    failed build fails the caller."""
    run = build(
        project=project or project_dir(),
        warehouse_url=warehouse_url,
        replica_database=replica_database,
        target="local",
        select=[],
        full_refresh=full_refresh,
    )
    assert run.success, run.failures
    return run


def parse_manifest(out: Path, project: Path | None = None) -> Path:
    """``dbt parse`` of ``project`` (transform/ by default) into ``out``: its manifest.json,
    what the marts checkpoint reads the marts' contracts from. Connects to nothing."""
    project = project or project_dir()
    dbt = Path(sys.executable).with_name("dbt")
    paths = ["--project-dir", str(project), "--profiles-dir", str(project)]
    paths += ["--target-path", str(out), "--log-path", str(out)]
    subprocess.run(
        [str(dbt), "parse", *paths, "--target", "local", "--quiet"],
        check=True,
        timeout=300,
    )
    return out / "manifest.json"


@contextmanager
def running(config: ReplicatorConfig, timeout: float = 30.0) -> Iterator[Replicator]:
    """A replicator streaming in a background thread for the duration of the block; an error
    it raises is raised here (on entry if it fails before streaming, else on exit)."""
    replicator = Replicator(config)
    stop = threading.Event()
    errors: list[BaseException] = []

    def target() -> None:
        try:
            replicator.run(stop)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=target, name="test-replicator", daemon=True)
    thread.start()
    try:
        wait_for(
            lambda: replicator.metrics.streaming or bool(errors), "replicator streaming", timeout
        )
        if errors:
            raise errors[0]
        yield replicator
    finally:
        stop.set()
        thread.join(timeout=30)
    if errors:
        raise errors[0]


def drop_slots(source_url: str) -> None:
    """Drop the test database's slots (Postgres refuses to drop a database that has any)."""
    conn = psycopg2.connect(source_url)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:

            def released() -> bool:
                # Terminated again on each poll: a replicator still stopping may reconnect.
                cur.execute(
                    "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots"
                    " WHERE database = current_database() AND active_pid IS NOT NULL"
                )
                cur.execute(
                    "SELECT count(*) FROM pg_replication_slots"
                    " WHERE database = current_database() AND active"
                )
                row = cur.fetchone()
                return row is not None and row[0] == 0

            wait_for(released, "the test database's slots to be released")
            cur.execute(
                "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots"
                " WHERE database = current_database() AND NOT temporary"
            )
    finally:
        conn.close()
