"""What the benchmarks downstream of the replicator share: a source filled with a bulk history,
and a replica the replicator keeps in step with it, in a thread of the benchmark's process.

BENCH_CUSTOMERS / BENCH_WALLET / BENCH_HEADERS size the history (defaults: >= 1M wallet and
store rows).

The replicator runs as the tests run it (``tests.support.running``): an error it raises ends
the benchmark with that error instead of a wait that times out.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.harness import SOURCE_SETTINGS, running_postgres
from tests.support import fingerprint, query, running, wait_for
from zetl.db import with_database
from zetl.schema.migrate import upgrade
from zetl_generator.workload import Workload, WorkloadOptions
from zetl_replicator.config import ReplicatorConfig

LOAD_SQL = Path(__file__).resolve().parent / "transform" / "load.sql"
# A copy of a million rows or more, on a machine other work shares.
COPY_TIMEOUT = 900.0
SIZES = {"customers": 40_000, "wallet": 520_000, "headers": 160_000}


def psql(url: str, *args: str) -> None:
    binary = shutil.which("psql") or "/usr/lib/postgresql/15/bin/psql"
    subprocess.run([binary, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, *args], check=True)


@dataclass(frozen=True)
class Filled:
    wallet: int  # wallet_transaction rows
    store: int  # store_transaction and store_transaction_line rows
    load_s: float  # the set-based SQL load alone


def fill_source(source_url: str, *, customers: int, wallet: int, headers: int) -> Filled:
    """Migrate the source, let the generator write its catalogue and a few players, then add
    the bulk history with bench/transform/load.sql (set-based, constraints kept)."""
    upgrade(source_url)
    Workload(source_url, WorkloadOptions(max_events=500, seed=1)).run(threading.Event())
    started = time.monotonic()
    psql(
        source_url,
        "-v", f"customers={customers}", "-v", f"wallet={wallet}", "-v", f"headers={headers}",
        "-f", str(LOAD_SQL),
    )  # fmt: skip
    load_s = time.monotonic() - started
    counts = dict(
        query(
            source_url,
            "SELECT 'wallet', count(*) FROM wallet_transaction UNION ALL SELECT 'store',"
            " (SELECT count(*) FROM store_transaction)"
            " + (SELECT count(*) FROM store_transaction_line)",
        )
    )
    return Filled(counts["wallet"], counts["store"], load_s)


@dataclass(frozen=True)
class Servers:
    source_url: str  # the filled source database
    dev_url: str  # the warehouse's own database, empty
    filled: Filled


@contextmanager
def filled_servers() -> Iterator[Servers]:
    """A source server and a warehouse server for the block, the source filled to the sizes
    the environment names."""
    sizes = {name: int(os.environ.get(f"BENCH_{name.upper()}", n)) for name, n in SIZES.items()}
    os.environ.setdefault("ZETL_LOG_LEVEL", "WARNING")
    with (
        running_postgres(SOURCE_SETTINGS) as source,
        running_postgres({"max_wal_size": "2GB"}) as warehouse,
    ):
        source_url = source.url(source.create_database("bench_src"))
        filled = fill_source(source_url, **sizes)
        print(f"source: {filled.wallet:,} wallet + {filled.store:,} store rows"
              f" (SQL load {filled.load_s:.1f} s)", flush=True)  # fmt: skip
        yield Servers(source_url, warehouse.url(warehouse.create_database("bench_dev")), filled)


@dataclass(frozen=True)
class Replica:
    config: ReplicatorConfig
    url: str  # the replica database

    def caught_up(self) -> bool:
        try:
            return fingerprint(self.config.source_url) == fingerprint(self.url)
        except Exception:  # the replica database or its tables do not exist yet
            return False

    def wait_caught_up(self, what: str) -> None:
        wait_for(self.caught_up, what, timeout=COPY_TIMEOUT)


@contextmanager
def replicating(
    source_url: str, warehouse_url: str, replica_database: str | None = None
) -> Iterator[Replica]:
    """The replicator streaming the source into a replica database beside ``warehouse_url``'s
    (a fresh name unless ``replica_database`` is given, always a fresh slot) for the block;
    entered once it streams."""
    tag = uuid.uuid4().hex[:8]
    replica_database = replica_database or f"replica_{tag}"
    config = ReplicatorConfig(
        source_url=source_url,
        warehouse_url=warehouse_url,
        replica_database=replica_database,
        slot=f"bench_{tag}",
        batch_max_seconds=0.5,
        discovery_interval_seconds=1.0,
    )
    with running(config, timeout=COPY_TIMEOUT):
        yield Replica(config, with_database(warehouse_url, replica_database))
