"""The replication pipeline: setup → initial copy → streaming, with a durable state store.

Two threads per streaming session. The receiver reads the replication stream, decodes pgoutput
and hands lists of messages over a bounded queue; the applier (the caller's thread) applies
them to the destination. Receiving and applying overlap, which matters: receiving a large
transaction alone takes about as long as native logical replication takes to apply it.

Exactly-once: the applier commits a batch of whole source transactions together with the end
LSN of the last one (``zetl.replication_progress``); only then is that LSN confirmed to the
source. On restart, streaming resumes from the stored LSN and anything older is skipped.
"""

from __future__ import annotations

import logging
import queue
import select
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg2
import psycopg2.extensions
import psycopg2.extras

from zetl.db import redact
from zetl.errors import ConfigError, DataError
from zetl_replicator import catalog, pgoutput, source
from zetl_replicator.config import ReplicatorConfig
from zetl_replicator.copy import copy_table
from zetl_replicator.destination import PostgresDestination
from zetl_replicator.metrics import Metrics
from zetl_replicator.schema import SchemaChange, plan
from zetl_replicator.warehouse import (
    TableState,
    connect_replica,
    ensure_replica_database,
    ensure_schema,
    read_progress,
    read_table_states,
    set_table_state,
    write_progress,
)

log = logging.getLogger(__name__)

QUEUE_LISTS = 64  # lists of up to LIST_SIZE messages between receiver and applier
LIST_SIZE = 512
PROGRESS_IDLE_SECONDS = 1.0  # how often an idle replicator records the server's WAL end
MAX_BACKOFF_SECONDS = 30.0
STARTUP_PATIENCE_SECONDS = 60.0


def recovery_command(config: ReplicatorConfig) -> str:
    return f"zetl replicate --reset  (drops slot {config.slot} and re-copies every table)"


@dataclass(frozen=True)
class Idle:
    """The server has sent everything up to ``wal_end`` and no transaction is open."""

    wal_end: int


@dataclass(frozen=True)
class ReceiveFailed:
    error: BaseException


QueueItem = list[pgoutput.Message] | Idle | ReceiveFailed


class Receiver(threading.Thread):
    """Reads and decodes the stream; answers the server's keepalives even while apply is busy."""

    def __init__(self, cursor: psycopg2.extras.ReplicationCursor, out: queue.Queue[QueueItem]):
        super().__init__(name="zetl-receiver", daemon=True)
        self.cursor = cursor
        self.out = out
        self.flush_lsn = 0  # set by the applier once durable; read here (an int: atomic)
        self.received_lsn = 0
        self.stopping = threading.Event()

    def run(self) -> None:
        batch: list[pgoutput.Message] = []
        in_transaction = False
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
                decoded = pgoutput.decode(message.payload)
                if isinstance(decoded, pgoutput.Begin):
                    in_transaction = True
                elif isinstance(decoded, pgoutput.Commit):
                    in_transaction = False
                self.received_lsn = max(self.received_lsn, int(message.data_start))
                batch.append(decoded)
                if len(batch) >= LIST_SIZE:
                    self._put(batch)
                    batch = []
                    self._feedback()
        except BaseException as exc:  # handed to the applier, which reconnects
            self._put(ReceiveFailed(exc))

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

    # --- lifecycle -------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Replicate until ``stop``; reconnect with backoff when either server goes away."""
        delay, started = 0.5, time.monotonic()
        while not stop.is_set():
            try:
                self._session(stop)
                return
            except (psycopg2.OperationalError, psycopg2.InterfaceError, ConfigError) as exc:
                if not _is_connection_error(exc):
                    raise
                if self.streamed_in_session:  # it worked until now: start the backoff afresh
                    delay, self.streamed_in_session = 0.5, False
                patient = self.ever_streamed or time.monotonic() - started < (
                    STARTUP_PATIENCE_SECONDS
                )
                if not patient:
                    raise
                self.metrics.streaming = False
                self.metrics.reconnects += 1
                self.metrics.last_error = str(exc).strip().splitlines()[0] if str(exc) else ""
                log.warning(
                    "connection lost; reconnecting",
                    extra={"error": self.metrics.last_error, "retry_in_s": delay},
                )
                stop.wait(delay)
                delay = min(delay * 2, MAX_BACKOFF_SECONDS)

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
                start_lsn = self._initial_sync(src, replication, warehouse)
            else:
                self._check_slot(src, progress.applied_lsn)
                start_lsn = progress.applied_lsn
                self._load_tables(warehouse)
            destination = PostgresDestination(warehouse, config.slot)
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

    def _load_tables(self, warehouse: psycopg2.extensions.connection) -> None:
        states = read_table_states(warehouse)
        replica = {t.qualified: t for t in catalog.list_tables(warehouse, self.config.schemas)}
        warehouse.commit()
        self.tables, self.sync_lsn, self.paused = {}, {}, set()
        for name, status in states.items():
            if status.state == TableState.FAILED or name not in replica:
                continue
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
        source.add_to_publication(
            src, config.publication, [t for t in eligible if t.qualified not in published]
        )
        point = source.create_slot(replication, config.slot, temporary=False)
        log.info(
            "initial copy started",
            extra={
                "tables": len(eligible),
                "consistent_point": pgoutput.lsn_to_str(point.consistent_point),
            },
        )

        def copy_one(table: catalog.TableInfo) -> None:
            conn = connect_replica(config.warehouse_url, config.replica_database)
            try:
                started = time.monotonic()
                rows = copy_table(config.source_url, point.snapshot, table, conn)
                with conn.cursor() as cur:
                    set_table_state(
                        cur,
                        table.schema,
                        table.name,
                        TableState.SYNCED,
                        sync_lsn=point.consistent_point,
                        reset_rows=True,
                    )
                conn.commit()
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
        with warehouse.cursor() as cur:
            write_progress(cur, config.slot, point.consistent_point, None)
        warehouse.commit()
        self.tables = {t.qualified: t for t in eligible}
        self.sync_lsn = {t.qualified: point.consistent_point for t in eligible}
        self.paused = set()
        return point.consistent_point

    def _classify(
        self, src: psycopg2.extensions.connection, warehouse: psycopg2.extensions.connection
    ) -> list[catalog.TableInfo]:
        """Record every source table's state: Failed with the reason, or Initializing."""
        eligible = []
        with warehouse.cursor() as cur:
            for table in catalog.list_tables(src, self.config.schemas, self.config.include):
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
        with warehouse.cursor() as cur:
            set_table_state(cur, table.schema, table.name, TableState.INITIALIZING, "copying")
            ensure_schema(cur, table.schema)
        warehouse.commit()
        if table.qualified not in source.published_tables(src, config.publication):
            source.add_to_publication(src, config.publication, [table])
        temporary = source.connect_replication(config.source_url)
        try:
            point = source.create_slot(
                temporary, f"{config.slot}_sync_{uuid.uuid4().hex[:8]}", temporary=True
            )
            rows = copy_table(config.source_url, point.snapshot, table, warehouse)
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
        except BaseException:
            warehouse.rollback()
            raise
        finally:
            temporary.close()
        self.tables[table.qualified] = table
        self.sync_lsn[table.qualified] = point.consistent_point
        self.paused.discard(table.qualified)
        log.info("table re-copied", extra={"table": table.qualified, "rows": rows})


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
        self.types: dict[tuple[int, int], tuple[str, str]] = {}

    def stream(self, stop: threading.Event) -> None:
        version = pgoutput.protocol_version(source.server_version(self.src))
        cursor = self.replication.cursor()
        cursor.start_replication(
            slot_name=self.config.slot,
            decode=False,
            start_lsn=self.applied_lsn,
            status_interval=1,
            options={"proto_version": str(version), "publication_names": self.config.publication},
        )
        inbox: queue.Queue[QueueItem] = queue.Queue(maxsize=QUEUE_LISTS)
        receiver = Receiver(cursor, inbox)
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
        try:
            self._apply_loop(inbox, stop)
        finally:
            self.metrics.streaming = False
            receiver.stopping.set()
            receiver.join(timeout=5)
            self.destination.rollback()

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
        if self.transaction is None and self.batch_lsn is not None:
            self._commit_batch()

    # --- messages --------------------------------------------------------------------------

    def _handle(self, message: pgoutput.Message, *, end_of_input: bool) -> None:
        if isinstance(message, pgoutput.Begin):
            self.transaction = message
            # The server starts at the stored LSN; this guards against a resend all the same.
            self.skipping = message.final_lsn < self.applied_lsn
            if self.batch_lsn is None:
                self.batch_started = time.monotonic()
        elif isinstance(message, pgoutput.Commit):
            self._on_commit(message, end_of_input)
        elif isinstance(message, pgoutput.Relation):
            self._on_relation(message)
        elif isinstance(message, pgoutput.Insert | pgoutput.Update | pgoutput.Delete):
            self._on_row(message)
        elif isinstance(message, pgoutput.Truncate):
            tables = [t for rid in message.relation_ids if (t := self._target(rid)) is not None]
            if tables:
                self.destination.truncate(tables)
        elif isinstance(
            message, pgoutput.StreamStart | pgoutput.StreamCommit | pgoutput.StreamAbort
        ):
            raise DataError("received a streamed transaction, but streaming was not requested")
        # Origin, Type, logical messages: nothing to apply.

    def _target(self, relation_id: int) -> catalog.TableInfo | None:
        """The replica table a change goes to, or None when this change must not be applied."""
        if self.skipping or self.transaction is None:
            return None
        relation = self.r.relations.get(relation_id)
        if relation is None:
            raise DataError(f"change for relation {relation_id} before its Relation message")
        name = f"{relation.namespace}.{relation.name}"
        if name in self.r.paused or name not in self.r.tables:
            return None
        if self.transaction.final_lsn < self.r.sync_lsn.get(name, 0):
            return None  # committed before this table's copy was taken: already in it
        return self.r.tables[name]

    def _on_row(self, message: pgoutput.Insert | pgoutput.Update | pgoutput.Delete) -> None:
        table = self._target(message.relation_id)
        if table is None:
            return
        names = [c.name for c in table.columns]
        key_positions = [names.index(k) for k in table.primary_key]
        if isinstance(message, pgoutput.Insert):
            self.destination.insert(table, message.new)
        elif isinstance(message, pgoutput.Update):
            # The old key when the key changed ('K') or the whole old row ('O', identity full)
            old = message.old if message.old is not None else message.new
            self.destination.update(table, [old[i] for i in key_positions], message.new)
        else:
            self.destination.delete(table, [message.old[i] for i in key_positions])
        name = table.qualified
        self.metrics.rows_applied[name] += 1

    def _on_relation(self, message: pgoutput.Relation) -> None:
        self.r.relations[message.relation_id] = message
        name = f"{message.namespace}.{message.name}"
        current = self.r.tables.get(name)
        if current is None or name in self.r.paused or self.skipping or self.transaction is None:
            return
        if self.transaction.final_lsn < self.r.sync_lsn.get(name, 0):
            return  # an older shape than the copy already has
        change = plan(current, message, self._type_of)
        if change is None:
            return
        if isinstance(change, SchemaChange):
            for statement in change.statements:
                self.destination.execute(statement)
            self.r.tables[name] = change.table
            log.info("schema change applied", extra={"table": name})
            return
        self.r.paused.add(name)
        with self.destination.conn.cursor() as cur:
            set_table_state(cur, current.schema, current.name, TableState.RESYNC_REQUIRED, change)
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
        if end_of_input or full:
            self._commit_batch()

    # --- batches and upkeep ----------------------------------------------------------------

    def _commit_batch(self) -> None:
        assert self.batch_lsn is not None
        self.destination.commit(self.batch_lsn, self.batch_commit_time)
        self._applied(self.batch_lsn)
        with self.metrics.lock:
            self.metrics.transactions_applied += self.batch_transactions
            self.metrics.batches_committed += 1
            if self.batch_commit_time is not None:
                self.metrics.lag_seconds = (
                    datetime.now(UTC) - self.batch_commit_time
                ).total_seconds()
        self.batch_lsn = None
        self.batch_transactions = 0

    def _applied(self, lsn: int) -> None:
        self.applied_lsn = max(self.applied_lsn, lsn)
        self.receiver.flush_lsn = self.applied_lsn  # only now may the source forget it
        self.metrics.applied_lsn = self.applied_lsn
        self.metrics.received_lsn = max(self.receiver.received_lsn, self.applied_lsn)
        self.last_progress_write = time.monotonic()

    def _between_transactions(self, wal_end: int | None) -> None:
        if self.transaction is not None:
            return
        if self.batch_lsn is not None:
            self._commit_batch()
        now = time.monotonic()
        if (
            wal_end is not None
            and wal_end > self.applied_lsn
            and now - self.last_progress_write >= PROGRESS_IDLE_SECONDS
        ):
            # Nothing of ours up to wal_end: record it so the slot (and lag) move on when idle.
            self.destination.commit(wal_end, None)
            self._applied(wal_end)
        if now - self.last_maintenance >= self.config.discovery_interval_seconds:
            self.last_maintenance = now
            self._maintain()

    def _maintain(self) -> None:
        """Between transactions: pick up new tables, resync requests and eligibility changes."""
        warehouse = self.destination.conn
        states = read_table_states(warehouse)
        for table in catalog.list_tables(self.src, self.config.schemas, self.config.include):
            status = states.get(table.qualified)
            problem = table.problem()
            replicated = status is not None and status.state != TableState.FAILED
            if not replicated and problem:
                if status is None or status.reason != problem:
                    with warehouse.cursor() as cur:
                        set_table_state(cur, table.schema, table.name, TableState.FAILED, problem)
                    warehouse.commit()
                    log.warning(
                        "table not replicated", extra={"table": table.qualified, "reason": problem}
                    )
                continue
            needs_copy = (
                not replicated
                or (status is not None and status.resync_requested)
                or (status is not None and status.state == TableState.INITIALIZING)
            )
            if needs_copy and not problem:
                self.r.resync(table, self.src, warehouse)


def _is_connection_error(exc: BaseException) -> bool:
    if isinstance(exc, psycopg2.OperationalError | psycopg2.InterfaceError):
        return True
    return isinstance(exc, ConfigError) and isinstance(exc.__cause__, psycopg2.OperationalError)


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
