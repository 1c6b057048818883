"""The replication pipeline: setup → initial copy → streaming, with a durable state store.

Two threads per streaming session. The receiver reads the replication stream, decodes pgoutput
and hands lists of messages over a bounded queue; the applier (the caller's thread) applies
them to the destination. Receiving and applying overlap, which matters: receiving a large
transaction alone takes about as long as native logical replication takes to apply it.

Exactly-once: the applier commits a batch of whole source transactions together with the end
LSN of the last one (``zetl.replication_progress``); only then is that LSN confirmed to the
source. On restart, streaming resumes from the stored LSN and anything older is skipped.

Large transactions are streamed by the server while they run (protocol 2+) and applied as they
arrive, inside one warehouse transaction committed with their commit LSN: see "streamed
in-progress transactions" in ``_Session``.
"""

from __future__ import annotations

import gc
import logging
import pickle
import queue
import select
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlsplit

import psycopg2
import psycopg2.errors
import psycopg2.extensions
import psycopg2.extras
import psycopg2.sql

from zetl.db import is_connection_lost, redact
from zetl.errors import ConfigError, DataError
from zetl_replicator import catalog, pgoutput, source
from zetl_replicator.config import ReplicatorConfig
from zetl_replicator.copy import copy_table
from zetl_replicator.destination import ApplyError, PostgresDestination, Row
from zetl_replicator.metrics import Metrics
from zetl_replicator.monitor import Monitor, Sample
from zetl_replicator.schema import SchemaChange, plan
from zetl_replicator.warehouse import (
    TableState,
    TableStatus,
    connect_replica,
    ensure_replica_database,
    ensure_schema,
    history_tables,
    is_history_table,
    read_options,
    read_progress,
    read_table_states,
    refusal_reason,
    set_table_state,
    without_history_columns,
    write_progress,
)

log = logging.getLogger(__name__)

QUEUE_LISTS = 64  # lists of up to LIST_SIZE messages between receiver and applier
LIST_SIZE = 512
GC_THRESHOLD = 200_000  # allocations between young-generation collections (default 700)
PROGRESS_IDLE_SECONDS = 1.0  # how often an idle replicator records the server's WAL end
MAX_BACKOFF_SECONDS = 30.0
RESYNC_RETRY_SECONDS = 60.0
STARTUP_PATIENCE_SECONDS = 60.0


def recovery_command(config: ReplicatorConfig) -> str:
    return f"zetl replicate --reset  (drops slot {config.slot} and re-copies every table)"


class CopyRefusedError(Exception):
    """The replica refused a table's rows during its copy (a value zero-ETL does not take)."""


class SourceRefusedError(Exception):
    """The source would not publish a table (its reason is the message)."""


@dataclass(frozen=True)
class Idle:
    """The server has sent everything up to ``wal_end`` and no transaction is open."""

    wal_end: int


@dataclass(frozen=True)
class ReceiveFailed:
    error: BaseException


QueueItem = list[pgoutput.Message] | Idle | ReceiveFailed

SPOOL_MEMORY_BYTES = 16 * 1024 * 1024  # per spool; beyond it, a temporary file
SPOOL_CHUNK = 1024  # messages pickled together
LIVE_FINAL_LSN = (1 << 64) - 1  # the live streamed transaction commits after everything applied
_STREAM_MESSAGES = (
    pgoutput.StreamStart,
    pgoutput.StreamStop,
    pgoutput.StreamCommit,
    pgoutput.StreamAbort,
)


def _savepoint(subxid: int) -> str:
    return f"zetl_sub_{subxid}"


@dataclass
class _LiveStream:
    """The streamed transaction being applied into the open warehouse transaction."""

    xid: int
    begin: pgoutput.Begin  # stands for it while its changes are applied
    relations: dict[int, pgoutput.Relation]  # as before it: restored if it aborts
    log: Spool  # transactions applied into it that committed at the source before it
    savepoints: dict[int, int] = field(default_factory=dict)  # subtransaction -> log position
    spooled: set[int] = field(default_factory=set)  # spooled transactions applied into it
    schema_changed: bool = False


class Spool:
    """Decoded messages kept for later, in order: in memory up to a size, then on disk.

    A subtransaction that aborts drops its changes and every change after its first one (as
    Postgres' own apply does: nothing else ran in the transaction in between).
    """

    def __init__(self) -> None:
        self.file = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY_BYTES)  # noqa: SIM115
        self.pending: list[pgoutput.Message] = []
        self.count = 0
        self.first_change: dict[int, int] = {}  # subtransaction -> index of its first change
        self.dropped: list[tuple[int, int]] = []  # [start, end) index ranges of aborted changes

    def add(self, message: pgoutput.Message) -> None:
        sub = getattr(message, "xid", None)
        if sub is not None and sub not in self.first_change:
            self.first_change[sub] = self.count
        self.pending.append(message)
        self.count += 1
        if len(self.pending) >= SPOOL_CHUNK:
            self._write()

    def abort_subtransaction(self, subxid: int) -> None:
        start = self.first_change.get(subxid)
        if start is None:
            return
        self.dropped.append((start, self.count))
        self.first_change = {s: i for s, i in self.first_change.items() if i < start}

    def replay(self, start: int = 0) -> Iterator[pgoutput.Message]:
        """The messages from index ``start`` on; the spool can be replayed again later."""
        self._write()
        self.file.seek(0)
        index = 0
        while True:
            try:
                chunk: list[pgoutput.Message] = pickle.load(self.file)  # noqa: S301 (our own file)
            except EOFError:
                return
            for message in chunk:
                dropped = any(a <= index < b for a, b in self.dropped)
                # A dropped Relation still describes the table for what follows: keep it.
                if index >= start and (not dropped or isinstance(message, pgoutput.Relation)):
                    yield message
                index += 1

    def close(self) -> None:
        self.file.close()

    def _write(self) -> None:
        if self.pending:
            pickle.dump(self.pending, self.file, protocol=pickle.HIGHEST_PROTOCOL)
            self.pending = []


class Receiver(threading.Thread):
    """Reads and decodes the stream; answers the server's keepalives even while apply is busy."""

    def __init__(
        self,
        cursor: psycopg2.extras.ReplicationCursor,
        out: queue.Queue[QueueItem],
        *,
        parallel_abort: bool = False,
    ):
        super().__init__(name="zetl-receiver", daemon=True)
        self.cursor = cursor
        self.out = out
        self.parallel_abort = parallel_abort  # protocol 4, streaming 'parallel'
        self.flush_lsn = 0  # set by the applier once durable; read here (an int: atomic)
        self.received_lsn = 0
        self.stopping = threading.Event()

    def run(self) -> None:
        batch: list[pgoutput.Message] = []
        in_transaction = in_stream = False
        last_idle = 0
        try:
            while not self.stopping.is_set():
                message = self.cursor.read_message()
                if message is None:
                    if batch:
                        self._put(batch)
                        batch = []
                    wal_end = int(self.cursor.wal_end)
                    if not in_transaction and wal_end > last_idle:
                        self._put(Idle(wal_end))
                        last_idle = wal_end
                    self._feedback()
                    select.select([self.cursor], [], [], 0.2)
                    continue
                decoded = pgoutput.decode(
                    message.payload, in_stream=in_stream, parallel_abort=self.parallel_abort
                )
                if type(decoded) is not pgoutput.Insert:  # most are: skip the checks
                    if isinstance(decoded, pgoutput.Begin):
                        in_transaction = True
                    elif isinstance(decoded, pgoutput.Commit):
                        in_transaction = False
                    elif isinstance(decoded, pgoutput.StreamStart):
                        in_stream = True
                    elif isinstance(decoded, pgoutput.StreamStop):
                        in_stream = False
                self.received_lsn = max(self.received_lsn, int(message.data_start))
                batch.append(decoded)
                if len(batch) >= LIST_SIZE:
                    self._put(batch)
                    batch = []
                    self._feedback()
        except BaseException as exc:  # handed to the applier, which reconnects
            self._put(ReceiveFailed(self._explained(exc)))

    def _explained(self, exc: BaseException) -> BaseException:
        """A server that vanished mid-stream (restart, failover) surfaces from libpq in COPY
        BOTH mode as a bare DatabaseError ("no COPY in progress"): the stream has ended, which
        a reconnect from the stored LSN always handles (a slot that is really gone is then
        reported when streaming restarts)."""
        if isinstance(exc, psycopg2.DatabaseError) and not isinstance(
            exc, psycopg2.OperationalError
        ):
            lost = psycopg2.OperationalError(f"replication stream ended: {exc}".strip())
            lost.__cause__ = exc
            return lost
        return exc

    def _feedback(self, force: bool = False) -> None:
        self.cursor.send_feedback(  # type: ignore[no-untyped-call]  # untyped in the stubs
            write_lsn=self.received_lsn, flush_lsn=self.flush_lsn, force=force
        )

    def _put(self, item: QueueItem) -> None:
        while not self.stopping.is_set():
            try:
                self.out.put(item, timeout=1.0)
                return
            except queue.Full:
                self._feedback(force=True)  # keep the connection alive while apply catches up


class Replicator:
    """One replicator: keeps the replica in step with the publication until ``stop`` is set."""

    def __init__(self, config: ReplicatorConfig, metrics: Metrics | None = None) -> None:
        self.config = config
        self.metrics = metrics or Metrics()
        self.tables: dict[str, catalog.TableInfo] = {}  # replicated, by "schema.table"
        self.sync_lsn: dict[str, int] = {}  # changes before this LSN are in the table's copy
        self.relations: dict[int, pgoutput.Relation] = {}
        self.paused: set[str] = set()  # ResyncRequired: changes are not applied
        self.ever_streamed = False
        self.streamed_in_session = False
        # After the warehouse refused a batch that held several tables' changes: send each
        # table's statements apart until the replica is past this LSN, to learn which one.
        self.isolate_until = 0
        self.monitor: Monitor | None = None
        self.refresh_interval = 0  # the target database's REFRESH_INTERVAL (0: none)
        self.truncatecolumns = False  # the target database's TRUNCATECOLUMNS
        # Replica tables in HISTORY_MODE's form (changed in place: the destination shares it)
        self.history: set[str] = set()

    # --- lifecycle -------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Replicate until ``stop``; reconnect with backoff when either server goes away."""
        config = self.config
        self.monitor = Monitor(
            config.warehouse_url,
            config.replica_database,
            config.slot,
            urlsplit(config.source_url).path.lstrip("/") or "",
            self._sample,
        )
        self.monitor.start()
        try:
            self._run(stop)
        except BaseException as exc:
            self.metrics.integration_state = "ErrorState"
            self.metrics.last_error = _first_line(exc)
            raise
        finally:
            self.metrics.streaming = False
            self.monitor.stop()

    def _sample(self) -> Sample:
        m = self.metrics
        return Sample(
            state=m.integration_state,
            lag_seconds=m.current_lag() if m.applied_lsn else None,
            applied_lsn=pgoutput.lsn_to_str(m.applied_lsn) if m.applied_lsn else None,
            last_error=m.last_error,
            refresh_interval=self.refresh_interval or None,
        )

    def state_changed(self) -> None:
        if self.monitor is not None:
            self.monitor.poke()

    def _run(self, stop: threading.Event) -> None:
        delay, started = 0.5, time.monotonic()
        while not stop.is_set():
            try:
                self._session(stop)
                return
            except ApplyError as exc:
                self._apply_failed(exc)
            except (psycopg2.OperationalError, psycopg2.InterfaceError, ConfigError) as exc:
                if not is_connection_lost(exc):
                    raise
                if self.streamed_in_session:  # it worked until now: start the backoff afresh
                    delay, self.streamed_in_session = 0.5, False
                patient = self.ever_streamed or time.monotonic() - started < (
                    STARTUP_PATIENCE_SECONDS
                )
                if not patient:
                    raise
                self.metrics.streaming = False
                self.metrics.integration_state = "PendingDbConnectState"
                self.metrics.reconnects += 1
                self.metrics.last_error = str(exc).strip().splitlines()[0] if str(exc) else ""
                log.warning(
                    "connection lost; reconnecting",
                    extra={"error": self.metrics.last_error, "retry_in_s": delay},
                )
                stop.wait(delay)
                delay = min(delay * 2, MAX_BACKOFF_SECONDS)

    def _apply_failed(self, exc: ApplyError) -> None:
        """The warehouse refused some changes: fail their table (Failed, with the reason and
        the position), so that every other table goes on. The session starts again from the
        last committed position without it. When the refused statements held several tables'
        changes, the next attempt sends them apart to find the one."""
        lsn = pgoutput.lsn_to_str(exc.after_lsn)
        if len(exc.tables) != 1:
            if not exc.tables or self.isolate_until:
                raise DataError(f"the replica refused changes after {lsn}: {exc}") from exc
            self.isolate_until = max(exc.received_lsn, exc.after_lsn + 1)
            log.warning(
                "the replica refused a batch; applying table by table to find the one",
                extra={"tables": sorted(exc.tables), "after_lsn": lsn, "error": str(exc)},
            )
            return
        (name,) = exc.tables
        schema, _, table = name.partition(".")
        reason = (
            f"changes after LSN {lsn} could not be applied: {refusal_reason(exc.error)}."
            f" Re-copy it with: zetl refresh TABLE {name}"
        )
        warehouse = connect_replica(self.config.warehouse_url, self.config.replica_database)
        try:
            with warehouse, warehouse.cursor() as cur:
                set_table_state(cur, schema, table, TableState.FAILED, reason, apply_failed=True)
        finally:
            warehouse.close()
        self.isolate_until = 0
        with self.metrics.lock:
            self.metrics.tables_failed += 1
            self.metrics.last_error = f"{name}: {exc}"
        self.state_changed()
        log.error("table failed", extra={"table": name, "after_lsn": lsn, "reason": str(exc)})

    def _session(self, stop: threading.Event) -> None:
        config = self.config
        ensure_replica_database(config.warehouse_url, config.replica_database)
        warehouse = connect_replica(config.warehouse_url, config.replica_database)
        src = source.connect_source(config.source_url)
        replication = source.connect_replication(config.source_url)
        try:
            source.check_wal_level(src)
            source.ensure_publication(src, config.publication)
            progress = read_progress(warehouse, config.slot)
            if progress is None:
                self.metrics.integration_state = "SchemaDiscoveryState"
                start_lsn = self._initial_sync(src, replication, warehouse)
                self.state_changed()
            else:
                self._check_slot(src, progress.applied_lsn)
                start_lsn = progress.applied_lsn
                self._load_tables(warehouse)
            destination = PostgresDestination(warehouse, config.slot)
            destination.history = self.history
            destination.isolate = start_lsn < self.isolate_until
            _Session(self, src, replication, destination, start_lsn).stream(stop)
        finally:
            for conn in (replication, src, warehouse):
                if not conn.closed:
                    conn.close()

    def _check_slot(self, src: psycopg2.extensions.connection, applied_lsn: int) -> None:
        slot = source.slot_info(src, self.config.slot)
        if slot is None:
            raise DataError(
                f"replication slot {self.config.slot} is missing on the source but the replica"
                f" has applied up to {pgoutput.lsn_to_str(applied_lsn)}: changes since then are"
                f" lost. Recover with: {recovery_command(self.config)}"
            )
        if slot.wal_status == "lost":
            raise DataError(
                f"replication slot {self.config.slot} lost WAL it still needed (wal_status=lost,"
                " max_slot_wal_keep_size exceeded?): the replica cannot catch up."
                f" Recover with: {recovery_command(self.config)}"
            )
        if slot.confirmed_flush_lsn is not None and slot.confirmed_flush_lsn > applied_lsn:
            raise DataError(
                f"replication slot {self.config.slot} was advanced to"
                f" {pgoutput.lsn_to_str(slot.confirmed_flush_lsn)} beyond what the replica applied"
                f" ({pgoutput.lsn_to_str(applied_lsn)}): someone else consumed it."
                f" Recover with: {recovery_command(self.config)}"
            )

    def _load_tables(
        self, warehouse: psycopg2.extensions.connection, *, commit: bool = True
    ) -> None:
        """The replicated tables as the replica has them (``commit=False``: in the open
        transaction, e.g. after a rollback to a savepoint undid a schema change)."""
        states = read_table_states(warehouse, commit=commit)
        replica = {t.qualified: t for t in catalog.list_tables(warehouse, self.config.scope)}
        history = history_tables(warehouse)
        if commit:
            warehouse.commit()
        self.tables, self.sync_lsn, self.paused = {}, {}, set()
        self.history.clear()
        for name, status in states.items():
            if status.state == TableState.FAILED or name not in replica:
                continue
            if name in history:  # replicated as the source has it: its columns and key
                self.tables[name] = without_history_columns(replica[name], history[name])
                self.history.add(name)
            else:
                self.tables[name] = replica[name]
            self.sync_lsn[name] = status.sync_lsn or 0
            if status.state == TableState.RESYNC_REQUIRED:
                self.paused.add(name)

    # --- initial copy ----------------------------------------------------------------------

    def _initial_sync(
        self,
        src: psycopg2.extensions.connection,
        replication: psycopg2.extras.LogicalReplicationConnection,
        warehouse: psycopg2.extensions.connection,
    ) -> int:
        """Create the slot, copy every eligible table at its snapshot; return where to stream."""
        config = self.config
        # No progress stored: any slot of ours is left from a copy that never finished.
        source.drop_slot(src, config.slot)
        eligible = self._classify(src, warehouse)
        published = source.published_tables(src, config.publication)
        refused = source.publish(
            src, config.publication, [t for t in eligible if t.qualified not in published]
        )
        if refused:
            with warehouse.cursor() as cur:
                for table in eligible:
                    if table.qualified in refused:
                        reason = f"the source refused to publish it: {refused[table.qualified]}"
                        set_table_state(cur, table.schema, table.name, TableState.FAILED, reason)
                        log.warning(
                            "table not replicated",
                            extra={"table": table.qualified, "reason": reason},
                        )
            warehouse.commit()
            eligible = [t for t in eligible if t.qualified not in refused]
        point = source.create_slot(replication, config.slot, temporary=False)
        log.info(
            "initial copy started",
            extra={
                "tables": len(eligible),
                "consistent_point": pgoutput.lsn_to_str(point.consistent_point),
            },
        )

        copy_refused: dict[str, str] = {}

        def copy_one(table: catalog.TableInfo) -> None:
            conn = connect_replica(config.warehouse_url, config.replica_database)
            try:
                started = time.monotonic()
                try:
                    rows = _copy_synced(config.source_url, point, table, conn)
                except CopyRefusedError as exc:
                    copy_refused[table.qualified] = str(exc)
                    return
                log.info(
                    "table copied",
                    extra={
                        "table": table.qualified,
                        "rows": rows,
                        "seconds": round(time.monotonic() - started, 3),
                    },
                )
            finally:
                conn.close()

        with warehouse.cursor() as cur:
            for schema in sorted({t.schema for t in eligible}):
                ensure_schema(cur, schema)
        warehouse.commit()
        with ThreadPoolExecutor(max_workers=config.copy_workers) as pool:
            list(pool.map(copy_one, eligible))
        if copy_refused:
            with warehouse.cursor() as cur:
                for table in eligible:
                    if table.qualified in copy_refused:
                        reason = copy_refused[table.qualified]
                        set_table_state(
                            cur,
                            table.schema,
                            table.name,
                            TableState.FAILED,
                            reason,
                            apply_failed=True,
                        )
                        log.warning(
                            "table failed", extra={"table": table.qualified, "reason": reason}
                        )
            warehouse.commit()
            eligible = [t for t in eligible if t.qualified not in copy_refused]
        with warehouse.cursor() as cur:
            write_progress(cur, config.slot, point.consistent_point, None)
        warehouse.commit()
        self.tables = {t.qualified: t.target() for t in eligible}
        self.history.clear()
        if read_options(warehouse).history_mode:
            self.history.update(self.tables)
        self.sync_lsn = {t.qualified: point.consistent_point for t in eligible}
        self.paused = set()
        return point.consistent_point

    def _classify(
        self, src: psycopg2.extensions.connection, warehouse: psycopg2.extensions.connection
    ) -> list[catalog.TableInfo]:
        """Record every source table's state: Failed with the reason, or Initializing."""
        eligible = []
        with warehouse.cursor() as cur:
            for table in catalog.list_tables(src, self.config.scope, self.config.table_filter()):
                problem = table.problem()
                if problem:
                    set_table_state(cur, table.schema, table.name, TableState.FAILED, problem)
                    log.warning(
                        "table not replicated", extra={"table": table.qualified, "reason": problem}
                    )
                else:
                    set_table_state(cur, table.schema, table.name, TableState.INITIALIZING)
                    eligible.append(table)
        warehouse.commit()
        return eligible

    def resync(
        self,
        table: catalog.TableInfo,
        src: psycopg2.extensions.connection,
        warehouse: psycopg2.extensions.connection,
    ) -> None:
        """Copy one table again (or for the first time) while the slot keeps its place.

        A temporary slot exports a snapshot at LSN Y, later than anything applied so far; the
        table is replaced by its content at Y, and the stream then skips this table's changes
        from transactions that committed before Y: they are in the copy.
        """
        config = self.config
        if table.qualified not in source.published_tables(src, config.publication):
            refused = source.publish(src, config.publication, [table])
            if refused:
                raise SourceRefusedError(
                    f"the source refused to publish it: {refused[table.qualified]}"
                )
        with warehouse.cursor() as cur:
            set_table_state(cur, table.schema, table.name, TableState.INITIALIZING, "copying")
            ensure_schema(cur, table.schema)
        warehouse.commit()
        temporary = source.connect_replication(config.source_url)
        try:
            point = source.create_slot(
                temporary, f"{config.slot}_sync_{uuid.uuid4().hex[:8]}", temporary=True
            )
            rows = _copy_synced(config.source_url, point, table, warehouse)
        except BaseException:
            warehouse.rollback()
            raise
        finally:
            temporary.close()
        self.tables[table.qualified] = table.target()
        if is_history_table(warehouse, table.schema, table.name):
            self.history.add(table.qualified)
        else:
            self.history.discard(table.qualified)
        warehouse.commit()
        self.sync_lsn[table.qualified] = point.consistent_point
        self.paused.discard(table.qualified)
        self.state_changed()
        log.info("table re-copied", extra={"table": table.qualified, "rows": rows})


def _copy_synced(
    source_url: str,
    point: source.SnapshotPoint,
    table: catalog.TableInfo,
    warehouse: psycopg2.extensions.connection,
) -> int:
    """Copy ``table`` as of the slot's snapshot and mark it Synced at the slot's consistent
    point, in one warehouse transaction: changes before that point are in the copy."""
    try:
        options = read_options(warehouse, commit=False)
        rows = copy_table(source_url, point.snapshot, table, warehouse, options)
    except psycopg2.Error as exc:
        if is_connection_lost(exc):
            raise
        warehouse.rollback()
        raise CopyRefusedError(f"copy refused: {refusal_reason(exc)}") from exc
    with warehouse.cursor() as cur:
        set_table_state(
            cur,
            table.schema,
            table.name,
            TableState.SYNCED,
            sync_lsn=point.consistent_point,
            reset_rows=True,
        )
    warehouse.commit()
    return rows


class _Session:
    """One streaming session: from START_REPLICATION until a stop or a lost connection."""

    def __init__(
        self,
        replicator: Replicator,
        src: psycopg2.extensions.connection,
        replication: psycopg2.extras.LogicalReplicationConnection,
        destination: PostgresDestination,
        start_lsn: int,
    ) -> None:
        self.r = replicator
        self.config = replicator.config
        self.metrics = replicator.metrics
        self.src = src
        self.replication = replication
        self.destination = destination
        self.applied_lsn = start_lsn  # durable in the warehouse
        self.transaction: pgoutput.Begin | None = None
        self.skipping = False
        self.batch_lsn: int | None = None  # end LSN of the last transaction in the open batch
        self.batch_commit_time: datetime | None = None
        self.batch_started = 0.0
        self.batch_transactions = 0
        self.last_progress_write = time.monotonic()
        self.last_maintenance = 0.0
        self.idle_wal_end = 0  # the newest idle position the server reported, to record
        self.resync_failed_at: dict[str, float] = {}  # table -> when its last resync failed
        self.last_commit = 0.0
        self.types: dict[tuple[int, int], tuple[str, str]] = {}
        # relation id -> replica table (None: not applied) within the current transaction
        self.routes: dict[int, catalog.TableInfo | None] = {}
        # Streamed in-progress transactions (see _on_stream_start)
        self.stream_xid: int | None = None  # the transaction of the open stream block
        self.live: _LiveStream | None = None  # the one applied as it arrives
        self.spools: dict[int, Spool] = {}  # the others, until they commit
        # replica table -> its VARCHAR(n) columns, for TRUNCATECOLUMNS
        self.varchar_sizes: dict[int, tuple[catalog.TableInfo, tuple[tuple[int, int], ...]]] = {}
        options = read_options(destination.conn)
        replicator.truncatecolumns = options.truncatecolumns

    def stream(self, stop: threading.Event) -> None:
        # Millions of small tuples pass through per large transaction and none of them forms a
        # reference cycle: the default cyclic-GC thresholds would rescan the live ones over
        # and over (a third of the time on a bulk load), so collect much less often.
        gc.freeze()
        gc.set_threshold(GC_THRESHOLD, 50, 100)
        version = pgoutput.protocol_version(source.server_version(self.src))
        cursor = self.replication.cursor()
        options = {"proto_version": str(version), "publication_names": self.config.publication}
        if version >= 2:  # large transactions arrive while they run, not only after commit
            # Protocol 4 (16+) offers 'parallel': the same interleaved streams, and each
            # Stream Abort carries its LSN and time, as RDS's own subscribers receive them.
            options["streaming"] = "parallel" if version >= 4 else "on"
        cursor.start_replication(
            slot_name=self.config.slot,
            decode=False,
            start_lsn=self.applied_lsn,
            status_interval=1,
            options=options,
        )
        inbox: queue.Queue[QueueItem] = queue.Queue(maxsize=QUEUE_LISTS)
        receiver = Receiver(cursor, inbox, parallel_abort=version >= 4)
        receiver.flush_lsn = self.applied_lsn
        self.receiver = receiver
        receiver.start()
        self.metrics.streaming = True
        self.metrics.applied_lsn = self.applied_lsn
        self.r.ever_streamed = self.r.streamed_in_session = True
        log.info(
            "streaming",
            extra={
                "from_lsn": pgoutput.lsn_to_str(self.applied_lsn),
                "protocol": version,
                "source": redact(self.config.source_url),
            },
        )
        self.metrics.integration_state = "CdcRefreshState"
        try:
            self._apply_loop(inbox, stop)
        except ApplyError as exc:
            exc.after_lsn = self.applied_lsn
            exc.received_lsn = max(receiver.received_lsn, self.applied_lsn)
            raise
        finally:
            self.metrics.streaming = False
            receiver.stopping.set()
            receiver.join(timeout=5)
            self.destination.rollback()
            for spool in self.spools.values():
                spool.close()
            if self.live is not None:
                self.live.log.close()

    def _apply_loop(self, inbox: queue.Queue[QueueItem], stop: threading.Event) -> None:
        while not stop.is_set():
            self.metrics.beat()
            try:
                item = inbox.get(timeout=0.1)
            except queue.Empty:
                self._between_transactions(None)
                continue
            if isinstance(item, ReceiveFailed):
                raise item.error
            if isinstance(item, Idle):
                self._between_transactions(item.wal_end)
                continue
            last = len(item) - 1
            for index, message in enumerate(item):
                self._handle(message, end_of_input=index == last and inbox.empty())
        if self.transaction is None and self.live is None and self.batch_lsn is not None:
            self._commit_batch()

    # --- messages --------------------------------------------------------------------------

    def _handle(self, message: pgoutput.Message, *, end_of_input: bool) -> None:
        if isinstance(message, _STREAM_MESSAGES):
            self._on_stream_message(message)
        elif self.stream_xid is not None:
            self._on_streamed_change(self.stream_xid, message)
        elif self.live is not None:
            self._apply_committed_while_live(message)
        else:
            self._apply(message, end_of_input=end_of_input)

    def _apply(self, message: pgoutput.Message, *, end_of_input: bool) -> None:
        kind = type(message)
        if kind is pgoutput.Insert or kind is pgoutput.Update or kind is pgoutput.Delete:
            self._on_row(message)  # type: ignore[arg-type]  # narrowed by the line above
        elif isinstance(message, pgoutput.Begin):
            self.transaction = message
            self.destination.change_time = _utc_text(message.commit_time)
            self.routes.clear()
            # The server starts at the stored LSN; this guards against a resend all the same.
            self.skipping = message.final_lsn < self.applied_lsn
            if self.batch_lsn is None:
                self.batch_started = time.monotonic()
            if self.metrics.pending_since is None and not self.skipping:
                self.metrics.pending_since = message.commit_time
        elif isinstance(message, pgoutput.Commit):
            self._on_commit(message, end_of_input)
        elif isinstance(message, pgoutput.Relation):
            self._on_relation(message)
        elif isinstance(message, pgoutput.Truncate):
            tables = [t for rid in message.relation_ids if (t := self._target(rid)) is not None]
            if tables:
                self.destination.truncate(tables)
        # Origin, Type, logical messages: nothing to apply.

    def _target(self, relation_id: int) -> catalog.TableInfo | None:
        """The replica table a change goes to, or None when this change must not be applied."""
        if self.skipping or self.transaction is None:
            return None
        if relation_id in self.routes:
            return self.routes[relation_id]
        relation = self.r.relations.get(relation_id)
        if relation is None:
            raise DataError(f"change for relation {relation_id} before its Relation message")
        name = f"{relation.namespace}.{relation.name}"
        table = self.r.tables.get(name)
        if name in self.r.paused or (
            # committed before this table's copy was taken: already in it
            self.transaction.final_lsn < self.r.sync_lsn.get(name, 0)
        ):
            table = None
        self.routes[relation_id] = table
        return table

    def _on_row(self, message: pgoutput.Insert | pgoutput.Update | pgoutput.Delete) -> None:
        table = self._target(message.relation_id)
        if table is None:
            return
        if isinstance(message, pgoutput.Insert):
            row = message.new
            if self.r.truncatecolumns:
                row = self._truncated(table, row)
            self.destination.insert(table, row, message.size)
        elif isinstance(message, pgoutput.Update):
            row = message.new
            if self.r.truncatecolumns:
                row = self._truncated(table, row)
            # The old key when the key changed ('K') or the whole old row ('O', identity full)
            self.destination.update(table, message.old, row, message.size)
        else:
            self.destination.delete(table, message.old, message.size)

    def _truncated(self, table: catalog.TableInfo, row: Row) -> Row:
        """``row`` with values longer than their VARCHAR(n) column cut to n (TRUNCATECOLUMNS)."""
        cached = self.varchar_sizes.get(id(table))
        if cached is None or cached[0] is not table:
            cached = self.varchar_sizes[id(table)] = (table, catalog.varchar_sizes(table))
        cut: list[pgoutput.Value] | None = None
        for i, n in cached[1]:
            value = row[i]
            if value is not None and len(value) > n and value is not pgoutput.UNCHANGED_TOAST:
                if cut is None:
                    cut = list(row)
                cut[i] = value[:n]
        return row if cut is None else tuple(cut)

    def _on_relation(self, message: pgoutput.Relation) -> None:
        self.r.relations[message.relation_id] = message
        self.routes.clear()
        name = f"{message.namespace}.{message.name}"
        current = self.r.tables.get(name)
        if current is None or name in self.r.paused or self.skipping or self.transaction is None:
            return
        if self.transaction.final_lsn < self.r.sync_lsn.get(name, 0):
            return  # an older shape than the copy already has
        change = plan(
            current,
            message,
            self._type_of,
            lambda column: catalog.added_column_backfill(
                self.src, message.namespace, message.name, column
            ),
            lambda column: catalog.is_renamed_in_place(
                self.src, message.namespace, message.name, column
            ),
        )
        if change is None:
            return
        if self.live is not None:  # undone if the live transaction rolls back: reload then
            self.live.schema_changed = True
        if isinstance(change, SchemaChange):
            for statement in change.statements:
                self.destination.execute(statement, current)
            self.r.tables[name] = change.table
            log.info("schema change applied", extra={"table": name})
            return
        self.r.paused.add(name)
        with self.destination.conn.cursor() as cur:
            set_table_state(cur, current.schema, current.name, TableState.RESYNC_REQUIRED, change)
        self.r.state_changed()
        log.warning("table needs a resync", extra={"table": name, "reason": change})

    def _type_of(self, oid: int, modifier: int) -> tuple[str, str]:
        key = (oid, modifier)
        if key not in self.types:
            self.types[key] = catalog.type_of(self.src, oid, modifier)
        return self.types[key]

    def _on_commit(self, message: pgoutput.Commit, end_of_input: bool) -> None:
        self.transaction = None
        if self.skipping:
            self.skipping = False
            return
        self.batch_lsn = message.end_lsn
        self.batch_commit_time = message.commit_time
        self.batch_transactions += 1
        full = (
            time.monotonic() - self.batch_started >= self.config.batch_max_seconds
            or self.destination.pending_bytes >= self.config.batch_max_bytes
        )
        if (end_of_input or full) and self.live is None and self._refresh_due():
            self._commit_batch()

    def _refresh_due(self) -> bool:
        """REFRESH_INTERVAL: the replica moves at most once every so many seconds."""
        interval = self.r.refresh_interval
        return not interval or time.monotonic() - self.last_commit >= interval

    # --- streamed in-progress transactions --------------------------------------------------
    #
    # The server sends a transaction larger than logical_decoding_work_mem in stream blocks
    # while it runs, then Stream Commit or Stream Abort. One of them at a time is applied live,
    # into the open warehouse transaction (a savepoint marks each of its subtransactions, which
    # may abort on their own), and committed at Stream Commit together with its end LSN:
    # exactly-once as for any other batch. Other streamed transactions wait in a spool (memory,
    # then a temporary file) until they commit. Transactions that commit while the live one is
    # open are applied at once, in arrival order, into the same warehouse transaction (later
    # changes of the live one may depend on them) and also logged: if the live transaction (or
    # one of its subtransactions) aborts, what was rolled back with it is applied again.

    def _on_stream_message(self, message: pgoutput.Message) -> None:
        if isinstance(message, pgoutput.StreamStart):
            self._on_stream_start(message)
        elif isinstance(message, pgoutput.StreamStop):
            self.stream_xid = None
            if self.live is not None:
                self.transaction = None  # until the next block: committed transactions may come
        elif isinstance(message, pgoutput.StreamCommit):
            self._on_stream_commit(message)
        elif isinstance(message, pgoutput.StreamAbort):
            self._on_stream_abort(message)

    def _on_stream_start(self, message: pgoutput.StreamStart) -> None:
        # Applied before its commit time is known: its versions get the time they arrive.
        self.destination.change_time = _utc_text(datetime.now(UTC))
        xid = message.xid
        self.stream_xid = xid
        if self.live is not None and self.live.xid == xid:
            self.transaction, self.skipping = self.live.begin, False
            self.routes.clear()
            return
        if xid in self.spools:
            return
        if not message.first_segment:
            raise DataError(f"a stream block of transaction {xid} without its beginning")
        # Live only when the commit LSN, unknown until Stream Commit, cannot matter: no table
        # copy is newer than what is applied (a copy taken later waits for this transaction).
        copies_behind = any(lsn > self.applied_lsn for lsn in self.r.sync_lsn.values())
        if self.live is not None or copies_behind:
            self.spools[xid] = Spool()
            self.metrics.streamed_spooled += 1
            return
        self.metrics.streamed_applied_live += 1
        if self.batch_lsn is not None:
            self._commit_batch()  # the live transaction starts a warehouse transaction of its own
        # Not known yet: the commit LSN. "Later than anything applied" is what the checks need.
        begin = pgoutput.Begin(LIVE_FINAL_LSN, datetime.now(UTC), xid)
        self.live = _LiveStream(xid, begin, dict(self.r.relations), Spool())
        self.transaction, self.skipping = begin, False
        self.routes.clear()
        self.batch_started = time.monotonic()

    def _on_streamed_change(self, xid: int, message: pgoutput.Message) -> None:
        live = self.live
        if live is None or live.xid != xid:
            self.spools[xid].add(message)
            return
        sub = getattr(message, "xid", None)
        if sub is not None and sub != xid and sub not in live.savepoints:
            self.destination.savepoint(_savepoint(sub))
            live.savepoints[sub] = live.log.count
        self._apply(message, end_of_input=False)

    def _apply_committed_while_live(self, message: pgoutput.Message) -> None:
        assert self.live is not None
        self.live.log.add(message)
        if isinstance(message, pgoutput.StreamCommit):
            self.live.spooled.add(message.xid)
            self._apply_spooled(message)
        else:
            self._apply(message, end_of_input=False)

    def _on_stream_commit(self, message: pgoutput.StreamCommit) -> None:
        self.destination.change_time = _utc_text(message.commit_time)  # for a spooled one
        live = self.live
        if live is not None and live.xid == message.xid:
            self.live, self.transaction = None, None
            if message.commit_lsn < self.applied_lsn:  # a resend of something applied
                self._roll_back_live(live)
                return
            self.batch_lsn = message.end_lsn
            self.batch_commit_time = message.commit_time
            self.batch_transactions += 1
            self._commit_batch()
            live.log.close()
            for xid in live.spooled:
                self.spools.pop(xid).close()
        elif live is not None:
            self._apply_committed_while_live(message)  # commits before the live one: now
        else:
            self._apply_spooled(message)

    def _on_stream_abort(self, message: pgoutput.StreamAbort) -> None:
        live = self.live
        if live is not None and live.xid == message.xid:
            if message.subxid == message.xid:
                self.live, self.transaction = None, None
                self._roll_back_live(live)
            elif message.subxid in live.savepoints:
                self._roll_back_subtransaction(live, message.subxid)
        elif message.xid in self.spools:
            if message.subxid == message.xid:
                self.spools.pop(message.xid).close()
            else:
                self.spools[message.xid].abort_subtransaction(message.subxid)

    def _roll_back_live(self, live: _LiveStream) -> None:
        """Undo the live transaction, then apply again what committed meanwhile."""
        self.destination.rollback()
        self.batch_lsn, self.batch_transactions = None, 0
        self.routes.clear()
        if live.schema_changed:
            self.r._load_tables(self.destination.conn)
        self.r.relations = live.relations
        for message in live.log.replay():
            self._handle(message, end_of_input=False)
        live.log.close()

    def _roll_back_subtransaction(self, live: _LiveStream, subxid: int) -> None:
        logged = live.savepoints[subxid]
        self.destination.rollback_to(_savepoint(subxid))
        names = list(live.savepoints)  # in creation order; the later ones are gone with it
        live.savepoints = {s: live.savepoints[s] for s in names[: names.index(subxid) + 1]}
        self.routes.clear()
        if live.schema_changed:
            self.r._load_tables(self.destination.conn, commit=False)
        transaction = self.transaction
        for message in live.log.replay(start=logged):
            if isinstance(message, pgoutput.StreamCommit):
                self._apply_spooled(message, keep=True)
            else:
                self._apply(message, end_of_input=False)
        self.transaction, self.skipping = transaction, False
        self.routes.clear()

    def _apply_spooled(self, commit: pgoutput.StreamCommit, *, keep: bool = False) -> None:
        """A spooled streamed transaction committed: apply it like any other transaction."""
        spool = self.spools.get(commit.xid) if keep else self.spools.pop(commit.xid, None)
        if spool is None:
            return  # nothing of it was published
        begin = pgoutput.Begin(commit.commit_lsn, commit.commit_time, commit.xid)
        self._apply(begin, end_of_input=False)
        for change in spool.replay():
            self._apply(change, end_of_input=False)
        self._apply(
            pgoutput.Commit(commit.flags, commit.commit_lsn, commit.end_lsn, commit.commit_time),
            end_of_input=False,
        )
        if self.live is None:
            spool.close()
        else:
            self.spools[commit.xid] = spool  # kept until the live one ends: it may be replayed

    # --- batches and upkeep ----------------------------------------------------------------

    def _commit_batch(self) -> None:
        assert self.batch_lsn is not None
        counts = self.destination.commit(self.batch_lsn, self.batch_commit_time)
        self._applied(self.batch_lsn)
        with self.metrics.lock:
            for (schema, name), count in counts.items():
                self.metrics.rows_applied[f"{schema}.{name}"] += count
            self.metrics.transactions_applied += self.batch_transactions
            self.metrics.batches_committed += 1
            if self.batch_commit_time is not None:
                self.metrics.lag_seconds = (
                    datetime.now(UTC) - self.batch_commit_time
                ).total_seconds()
            self.metrics.pending_since = None
        self.batch_lsn = None
        self.batch_transactions = 0
        self.last_commit = time.monotonic()

    def _applied(self, lsn: int) -> None:
        self.applied_lsn = max(self.applied_lsn, lsn)
        self.receiver.flush_lsn = self.applied_lsn  # only now may the source forget it
        self.metrics.applied_lsn = self.applied_lsn
        self.metrics.received_lsn = max(self.receiver.received_lsn, self.applied_lsn)
        if self.destination.isolate and self.applied_lsn >= self.r.isolate_until:
            self.destination.isolate, self.r.isolate_until = False, 0
        self.last_progress_write = time.monotonic()

    def _between_transactions(self, wal_end: int | None) -> None:
        if wal_end is not None:
            # Kept, not dropped, when busy or throttled: the server sends an idle position once,
            # and a quiet source sends no other, so a dropped one would leave the replica behind.
            self.idle_wal_end = max(self.idle_wal_end, wal_end)
        if self.transaction is not None or self.live is not None:
            return
        if self.batch_lsn is not None and self._refresh_due():
            self._commit_batch()
        now = time.monotonic()
        if (
            self.idle_wal_end > self.applied_lsn
            and self.batch_lsn is None
            and now - self.last_progress_write >= PROGRESS_IDLE_SECONDS
        ):
            # Nothing of ours up to there: record it so the slot (and lag) move on when idle.
            self.destination.commit(self.idle_wal_end, None)
            self._applied(self.idle_wal_end)
            self.metrics.lag_seconds = 0.0  # caught up with everything the source has
        if now - self.last_maintenance >= self.config.discovery_interval_seconds:
            self.last_maintenance = now
            self._maintain()

    def _maintain(self) -> None:
        """Between transactions: pick up new tables, resync requests and eligibility changes."""
        warehouse = self.destination.conn
        states = read_table_states(warehouse)
        options = read_options(warehouse)
        self.r.refresh_interval = options.refresh_interval or 0
        self.r.truncatecolumns = options.truncatecolumns
        listed = catalog.list_tables(self.src, self.config.scope, self.config.table_filter())
        present = {t.qualified for t in listed}
        for name, gone in states.items():
            if name not in present:
                self._drop_gone(gone)
        for table in listed:
            status = states.get(table.qualified)
            if status is not None and status.apply_failed:
                continue  # the warehouse refused its changes: re-copied on request only
            problem = table.problem()
            replicated = status is not None and status.state != TableState.FAILED
            if problem:
                if replicated:
                    # It was replicated and no longer can be (its primary key dropped, its
                    # replica identity changed): stop applying it and take it out of the
                    # publication, or the source itself refuses its UPDATEs and DELETEs.
                    source.drop_from_publication(self.src, self.config.publication, table)
                    self.r.tables.pop(table.qualified, None)
                    self.routes.clear()
                if status is None or status.reason != problem or replicated:
                    self._set_state(table, TableState.FAILED, problem)
                    log.warning(
                        "table not replicated", extra={"table": table.qualified, "reason": problem}
                    )
                continue
            # ResyncRequired resyncs by itself, as zero-ETL does (a resync that failed, on a
            # dependent view say, is tried again after RESYNC_RETRY_SECONDS).
            retry_at = self.resync_failed_at.get(table.qualified, 0.0) + RESYNC_RETRY_SECONDS
            needs_copy = (
                not replicated
                or (status is not None and status.resync_requested)
                or (status is not None and status.state == TableState.INITIALIZING)
                or (
                    status is not None
                    and status.state == TableState.RESYNC_REQUIRED
                    and time.monotonic() >= retry_at
                )
            )
            if needs_copy:
                try:
                    self.r.resync(table, self.src, warehouse)
                except CopyRefusedError as exc:
                    self._set_state(table, TableState.FAILED, str(exc), apply_failed=True)
                    log.warning(
                        "table failed", extra={"table": table.qualified, "reason": str(exc)}
                    )
                except SourceRefusedError as exc:
                    warehouse.rollback()
                    self._set_state(table, TableState.FAILED, str(exc))
                    log.warning(
                        "table not replicated", extra={"table": table.qualified, "reason": str(exc)}
                    )
                except DataError as exc:  # a dependent view on a table whose shape changed
                    warehouse.rollback()
                    self.resync_failed_at[table.qualified] = time.monotonic()
                    self.r.paused.add(table.qualified)
                    self._set_state(table, TableState.RESYNC_REQUIRED, str(exc))
                    log.warning(
                        "resync failed", extra={"table": table.qualified, "reason": str(exc)}
                    )

    def _drop_gone(self, status: TableStatus) -> None:
        """A table dropped on the source, renamed or moved to another schema (its new name is
        copied as a new table), or left out of the data filter: as zero-ETL does, it goes from
        the replica too. Its changes still on their way need not be applied: it is going."""
        name = status.qualified
        self.r.tables.pop(name, None)
        self.r.paused.discard(name)
        self.r.sync_lsn.pop(name, None)
        self.routes.clear()
        if status.state != TableState.FAILED:
            # Still published when only the data filter left it out (a dropped one is not).
            source.drop_from_publication(
                self.src,
                self.config.publication,
                catalog.TableInfo(status.schema, status.name, (), ()),
            )
        warehouse = self.destination.conn
        try:
            with warehouse.cursor() as cur:
                cur.execute(
                    psycopg2.sql.SQL("DROP TABLE IF EXISTS {}").format(
                        psycopg2.sql.Identifier(status.schema, status.name)
                    )
                )
                cur.execute(
                    "DELETE FROM zetl.table_state WHERE schema_name = %s AND table_name = %s",
                    (status.schema, status.name),
                )
            warehouse.commit()
        except psycopg2.errors.DependentObjectsStillExist as exc:
            warehouse.rollback()
            reason = (
                "dropped, renamed or filtered out on the source, but objects in the replica"
                f" database depend on it: {(exc.diag.message_detail or '').replace(chr(10), '; ')}"
            )
            if status.reason != reason:
                self._set_state(
                    catalog.TableInfo(status.schema, status.name, (), ()),
                    TableState.FAILED,
                    reason,
                )
            return
        self.r.state_changed()
        log.info("table dropped: no longer on the source", extra={"table": name})

    def _set_state(
        self,
        table: catalog.TableInfo,
        state: TableState,
        reason: str,
        *,
        apply_failed: bool = False,
    ) -> None:
        warehouse = self.destination.conn
        with warehouse.cursor() as cur:
            set_table_state(cur, table.schema, table.name, state, reason, apply_failed=apply_failed)
        warehouse.commit()
        self.r.state_changed()


def _utc_text(moment: datetime) -> str:
    """A moment as a UTC timestamp without time zone (history columns' type)."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.isoformat(sep=" ")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def reset(config: ReplicatorConfig) -> None:
    """Drop the slot and the stored progress: the next ``zetl replicate`` copies afresh."""
    src = source.connect_source(config.source_url)
    try:
        source.drop_slot(src, config.slot)
    finally:
        src.close()
    ensure_replica_database(config.warehouse_url, config.replica_database)
    warehouse = connect_replica(config.warehouse_url, config.replica_database)
    try:
        with warehouse, warehouse.cursor() as cur:
            cur.execute(
                "DELETE FROM zetl.replication_progress WHERE slot_name = %s", (config.slot,)
            )
    finally:
        warehouse.close()
