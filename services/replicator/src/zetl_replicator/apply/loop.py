"""The apply loop: decoded messages in, destination writes and committed batches out.

The loop takes lists of messages from the receiver and applies whole source transactions to
the destination in batches; a batch is committed together with the end LSN of its last
transaction (exactly-once), and only then is that LSN confirmed to the source. Streamed
in-progress transactions are handled by ``streams.StreamedTransactions`` (the loop is its
``StreamHost``); new tables, resync requests and eligibility changes by table sync between
transactions (``TableUpkeep``: ``sync.tablesync.TableSync``). The loop reads the time from the
clock it is given, so tests can move it.

The seam where decoded row data becomes destination writes is ``ApplyLoop._on_row``: a row
change of a routed table goes to ``Destination.insert/update/delete`` with the decoded tuple
(text values, ``UNCHANGED_TOAST``, None). A faster bulk path plugs in there.
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

import psycopg2.extensions

from zetl.integration import TableState
from zetl_replicator.apply import captured_ddl
from zetl_replicator.apply.netchange import Row
from zetl_replicator.apply.registry import TableRegistry
from zetl_replicator.apply.schema import SchemaChange, plan
from zetl_replicator.apply.streams import StreamedTransactions
from zetl_replicator.config import ReplicatorConfig
from zetl_replicator.destination.interface import Destination, utc_text
from zetl_replicator.ops.metrics import Metrics
from zetl_replicator.source import catalog, pgoutput
from zetl_replicator.source.column_changes import added_column_backfill, is_renamed_in_place
from zetl_replicator.source.receiver import Idle, QueueItem, ReceiveFailed
from zetl_replicator.source.tables import TableInfo
from zetl_replicator.source.types import cut_to_bytes, varchar_sizes

log = logging.getLogger(__name__)

PROGRESS_IDLE_SECONDS = 1.0  # how often an idle replicator records the server's WAL end
# Batches commit without waiting for the warehouse's WAL flush (as Postgres' own apply worker
# does); at most this often one waits for it, and only what it made durable is confirmed to the
# source, so a warehouse crash that loses the unflushed commits loses nothing the source forgot.
DURABLE_EVERY_SECONDS = 1.0


@dataclass
class Isolation:
    """After the warehouse refused a batch that held several tables' changes: each table's
    statements are sent apart until the replica is past ``until``, to learn which one.
    Outlives a session (the next one starts where the refused batch did)."""

    until: int = 0


@dataclass
class Batch:
    """The open batch: whole source transactions applied and not committed yet."""

    lsn: int | None = None  # end LSN of its last transaction (None: nothing in it)
    commit_time: datetime | None = None  # source commit time of its last transaction
    started: float = 0.0  # monotonic time its first transaction began
    transactions: int = 0


@dataclass
class Transaction:
    """The source transaction being applied."""

    begin: pgoutput.Begin | None = None  # None: between transactions
    skipping: bool = False  # applied already (a resend): its changes are dropped


class TableUpkeep(Protocol):
    """What the loop needs of table sync (``sync.tablesync.TableSync``)."""

    def maintain(self) -> None:
        """Discovery and resyncs, between batches."""
        ...

    def reload(self, *, in_open_transaction: bool = False) -> None:
        """Load the replicated tables as the replica has them."""
        ...

    def replica_name(self, oid: int) -> tuple[str, str] | None:
        """The (schema, name) the replica has the source table ``oid`` under (None: unknown)."""
        ...

    def renamed(self, oid: int, name: tuple[str, str]) -> None:
        """The source table ``oid`` was renamed in place in the replica."""
        ...


class StreamPosition(Protocol):
    """What the loop needs of the receiver (``source.receiver.Receiver``): how far the stream
    came, and where to tell the source it may forget up to."""

    flush_lsn: int
    received_lsn: int


class ApplyLoop:
    """Applies the stream to the destination until ``stop``, for one streaming session."""

    def __init__(
        self,
        *,
        config: ReplicatorConfig,
        metrics: Metrics,
        registry: TableRegistry,
        destination: Destination,
        table_sync: TableUpkeep,
        src: psycopg2.extensions.connection,
        applied_lsn: int,
        isolation: Isolation,
        state_changed: Callable[[], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.metrics = metrics
        self.registry = registry
        self.destination = destination
        self.table_sync = table_sync
        self.src = src  # for the source's view of a changed table (types, backfills)
        self.clock = clock  # monotonic seconds: batches' ages, what is due
        self.applied_lsn = applied_lsn  # committed (visible) in the warehouse
        self.durable_lsn = 0  # flushed in the warehouse: what the source may forget
        self.last_durable = 0.0
        self.isolation = isolation
        self.state_changed = state_changed
        self.transaction = Transaction()
        self.batch = Batch()
        self.streams = StreamedTransactions(self)
        self.receiver: StreamPosition | None = None
        self.last_progress_write = clock()
        self.last_maintenance = 0.0
        self.last_commit = 0.0
        self.idle_wal_end = 0  # the newest idle position the server reported, to record
        self.discovery_requested = False  # captured DDL: discovery runs after its transaction
        self.types: dict[tuple[int, int], tuple[str, str]] = {}
        # replica table -> its VARCHAR(n) columns, for TRUNCATECOLUMNS
        self.varchar_sizes: dict[int, tuple[TableInfo, tuple[tuple[int, int], ...]]] = {}

    def run(
        self, receiver: StreamPosition, inbox: queue.Queue[QueueItem], stop: threading.Event
    ) -> None:
        """Apply what ``receiver`` puts in ``inbox`` until ``stop``; the open batch is committed
        on the way out when no transaction is half applied."""
        self.receiver = receiver
        while not stop.is_set():
            self.metrics.beat()
            self._linger(stop)
            ready = self.batch.lsn is not None and self._refresh_due()  # commits once input stops
            try:
                item = inbox.get(timeout=0.001 if ready else 0.1)
            except queue.Empty:
                self.between_transactions(None)
                continue
            if isinstance(item, ReceiveFailed):
                raise item.error
            if isinstance(item, Idle):
                self.between_transactions(item.wal_end)
                continue
            last = len(item) - 1
            for index, message in enumerate(item):
                self.handle(message, end_of_input=index == last and inbox.empty())
        idle = self.transaction.begin is None and not self.streams.applying_live
        if idle and self.batch.lsn is not None:
            self.commit_batch(durable=True)

    def close(self) -> None:
        """Drop what is not committed (the batch, spooled transactions)."""
        self.destination.rollback()
        self.streams.close()

    # --- messages ----------------------------------------------------------------------------

    def handle(self, message: pgoutput.Message, *, end_of_input: bool) -> None:
        if not self.streams.handle(message):
            self.apply(message, end_of_input=end_of_input)

    def apply(self, message: pgoutput.Message, *, end_of_input: bool) -> None:
        kind = type(message)
        if kind is pgoutput.Insert or kind is pgoutput.Update or kind is pgoutput.Delete:
            self._on_row(message)  # type: ignore[arg-type]  # narrowed by the line above
        elif isinstance(message, pgoutput.Begin):
            # The server starts at the stored LSN; this guards against a resend all the same.
            self.enter_transaction(message, skipping=message.final_lsn < self.applied_lsn)
            self.destination.change_time = utc_text(message.commit_time)
            if self.batch.lsn is None:
                self.batch.started = self.clock()
            if self.metrics.pending_since is None and not self.transaction.skipping:
                self.metrics.pending_since = message.commit_time
            self.metrics.detected_commit_time = message.commit_time
        elif isinstance(message, pgoutput.Commit):
            self._on_commit(message, end_of_input)
        elif isinstance(message, pgoutput.Relation):
            self._on_relation(message)
        elif isinstance(message, pgoutput.Truncate):
            tables = [t for rid in message.relation_ids if (t := self._target(rid)) is not None]
            if tables:
                self.destination.truncate(tables)
        elif isinstance(message, pgoutput.LogicalMessage):
            self._on_logical_message(message)
        # Origin, Type, other logical messages: nothing to apply.

    def enter_transaction(self, begin: pgoutput.Begin, *, skipping: bool = False) -> None:
        """Changes from now on belong to ``begin``'s transaction (``skipping``: drop them)."""
        self.transaction = Transaction(begin, skipping)
        self.registry.new_transaction()

    def leave_transaction(self) -> None:
        """Changes from now on belong to no transaction (until the next one is entered)."""
        self.transaction = Transaction()
        self.registry.new_transaction()

    @property
    def current_begin(self) -> pgoutput.Begin | None:
        return self.transaction.begin

    def reload_tables(self, *, in_open_transaction: bool = False) -> None:
        self.table_sync.reload(in_open_transaction=in_open_transaction)

    def _target(self, relation_id: int) -> TableInfo | None:
        """The replica table a change goes to, or None when this change must not be applied."""
        begin = self.transaction.begin
        if self.transaction.skipping or begin is None:
            return None
        return self.registry.route(relation_id, begin.final_lsn)

    def _on_row(self, message: pgoutput.Insert | pgoutput.Update | pgoutput.Delete) -> None:
        """The seam: a decoded row change becomes a destination write."""
        table = self._target(message.relation_id)
        if table is None:
            return
        truncate = self.registry.options.truncatecolumns
        if isinstance(message, pgoutput.Insert):
            row = message.new
            if truncate:
                row = self._truncated(table, row)
            self.destination.insert(table, row, message.size)
        elif isinstance(message, pgoutput.Update):
            row = message.new
            if truncate:
                row = self._truncated(table, row)
            # The old key when the key changed ('K') or the whole old row ('O', identity full)
            self.destination.update(table, message.old, row, message.size)
        else:
            self.destination.delete(table, message.old, message.size)

    def _truncated(self, table: TableInfo, row: Row) -> Row:
        """``row`` with values over their VARCHAR(n) or CHAR(n) column's n bytes cut to fit
        (TRUNCATECOLUMNS), on a character boundary."""
        cached = self.varchar_sizes.get(id(table))
        if cached is None or cached[0] is not table:
            cached = self.varchar_sizes[id(table)] = (table, varchar_sizes(table))
        cut: list[pgoutput.Value] | None = None
        for i, n in cached[1]:
            value = row[i]
            if value is None or value is pgoutput.UNCHANGED_TOAST or len(value) * 4 <= n:
                continue
            fitting = cut_to_bytes(value, n)
            if fitting is not value:
                if cut is None:
                    cut = list(row)
                cut[i] = fitting
        return row if cut is None else tuple(cut)

    def _on_relation(
        self, message: pgoutput.Relation, captured: captured_ddl.CapturedTable | None = None
    ) -> None:
        """A table's shape, from a Relation message or captured DDL (``captured``: what the
        source's catalog said at that point, instead of asking it now)."""
        registry = self.registry
        registry.remember(message)
        begin = self.transaction.begin
        if self.transaction.skipping or begin is None:
            return
        name = f"{message.namespace}.{message.name}"
        current = registry.target_table(name, begin.final_lsn)
        if current is None:
            return  # not replicated, paused, or an older shape than the copy already has
        if captured is not None:
            change = plan(
                current, message, self._type_of, captured.backfill, captured.can_be_renamed
            )
        else:
            change = plan(
                current,
                message,
                self._type_of,
                lambda c: added_column_backfill(self.src, message.namespace, message.name, c),
                lambda c: is_renamed_in_place(self.src, message.namespace, message.name, c),
            )
        if change is None:
            return
        self.streams.schema_changed()  # undone if a live transaction rolls back: reload then
        if isinstance(change, SchemaChange):
            for statement in change.statements:
                self.destination.execute(statement, current)
            registry.reshape(name, change.table)
            log.info("schema change applied", extra={"table": name})
            return
        registry.pause(name)
        self.destination.set_table_state(current, TableState.RESYNC_REQUIRED, change)
        self.state_changed()
        log.warning("table needs a resync", extra={"table": name, "reason": change})

    def _on_logical_message(self, message: pgoutput.LogicalMessage) -> None:
        """Captured DDL, at its position in its transaction: renames and shape changes now,
        as a Relation message would bring them; discovery right after the transaction."""
        if not captured_ddl.is_captured_ddl(message):
            return
        if self.transaction.skipping or self.transaction.begin is None:
            return
        ddl = captured_ddl.parse(message)
        for table in ddl.tables:
            self._rename_in_place(table)
            self._on_relation(table.relation, table)
        if ddl.concerns(self.config.scope):  # new, dropped, moved or newly eligible tables
            self.discovery_requested = True
        log.info("captured DDL applied", extra={"command": ddl.tag})

    def _rename_in_place(self, captured: captured_ddl.CapturedTable) -> None:
        """RENAME TABLE renames the replica table in place; SET SCHEMA is left to discovery
        (it drops the table and copies it in its new schema, as zero-ETL does)."""
        old = self.table_sync.replica_name(captured.oid)
        new = (captured.relation.namespace, captured.relation.name)
        if old is None or old == new or old[0] != new[0]:
            return
        name = ".".join(old)
        replicated = self.registry.tables.get(name)  # None: Failed, its state alone is renamed
        table = replicated or TableInfo(old[0], old[1], (), ())
        self.destination.rename_table(table, new[1])
        if replicated is not None:
            self.registry.rename(name, dataclasses.replace(replicated, name=new[1]))
        self.table_sync.renamed(captured.oid, new)
        self.streams.schema_changed()  # undone if a live transaction rolls back: reload then
        self.state_changed()
        log.info("table renamed in place", extra={"table": name, "new_name": new[1]})

    def _type_of(self, oid: int, modifier: int) -> tuple[str, str]:
        key = (oid, modifier)
        if key not in self.types:
            self.types[key] = catalog.type_of(self.src, oid, modifier)
        return self.types[key]

    def _on_commit(self, message: pgoutput.Commit, end_of_input: bool) -> None:
        skipped = self.transaction.skipping
        self.leave_transaction()
        if skipped:
            return
        self.add_to_batch(message.end_lsn, message.commit_time)
        full = (
            self.clock() - self.batch.started >= self.config.batch_max_seconds
            or self.destination.pending_bytes >= self.config.batch_max_bytes
        )
        due = full or (end_of_input and self._batch_waited()) or self.discovery_requested
        if due and self._commit_allowed():
            self.commit_batch()
        if self.discovery_requested and self.batch.lsn is None:
            self._maintain()

    def _batch_waited(self) -> bool:
        """The batch has waited long enough for more transactions (ZETL_BATCH_MIN_SECONDS)."""
        return self.clock() - self.batch.started >= self.config.batch_min_seconds

    def _linger(self, stop: threading.Event) -> None:
        """Let the open batch wait for more until it is ZETL_BATCH_MIN_SECONDS old, asleep: the
        receiver queues what comes meanwhile without waking this thread for each list."""
        if self.batch.lsn is not None:
            left = self.batch.started + self.config.batch_min_seconds - self.clock()
            if left > 0:
                stop.wait(left)

    def _commit_allowed(self) -> bool:
        return not self.streams.applying_live and self._refresh_due()

    def _refresh_due(self) -> bool:
        """REFRESH_INTERVAL: the replica moves at most once every so many seconds."""
        interval = self.registry.options.refresh_interval
        return not interval or self.clock() - self.last_commit >= interval

    # --- batches and upkeep ------------------------------------------------------------------

    def add_to_batch(self, end_lsn: int, commit_time: datetime) -> None:
        """A source transaction ending at ``end_lsn`` is applied into the open batch."""
        self.batch.lsn = end_lsn
        self.batch.commit_time = commit_time
        self.batch.transactions += 1
        self.metrics.shipped_commit_time = commit_time

    def start_batch(self) -> None:
        """Commit the open batch, if any: what comes next is a batch of its own, from now."""
        if self.batch.lsn is not None:
            self.commit_batch()
        self.batch.started = self.clock()

    def discard_batch(self) -> None:
        """The open batch was rolled back."""
        self.batch.lsn, self.batch.transactions = None, 0

    def commit_batch(self, *, durable: bool | None = None) -> None:
        """Commit the open batch; ``durable``: wait for the warehouse's WAL flush (None: when
        the last wait is DURABLE_EVERY_SECONDS old)."""
        batch = self.batch
        assert batch.lsn is not None
        if durable is None:
            durable = self.clock() - self.last_durable >= DURABLE_EVERY_SECONDS
        counts = self.destination.commit(batch.lsn, batch.commit_time, durable=durable)
        self._applied(batch.lsn, durable=durable)
        with self.metrics.lock:
            for (schema, name), count in counts.items():
                self.metrics.rows_applied[f"{schema}.{name}"] += count
            self.metrics.transactions_applied += batch.transactions
            self.metrics.batches_committed += 1
            if batch.commit_time is not None:
                self.metrics.lag_seconds = (datetime.now(UTC) - batch.commit_time).total_seconds()
                self.metrics.applied_commit_time = batch.commit_time
            self.metrics.pending_since = None
        batch.lsn = None
        batch.transactions = 0
        self.last_commit = self.clock()

    def _applied(self, lsn: int, *, durable: bool) -> None:
        self.applied_lsn = max(self.applied_lsn, lsn)
        assert self.receiver is not None
        if durable:  # flushed with everything committed before it
            self.durable_lsn = self.applied_lsn
            self.last_durable = self.clock()
            self.receiver.flush_lsn = self.durable_lsn  # only now may the source forget it
        self.metrics.applied_lsn = self.applied_lsn
        self.metrics.first_applied_lsn = self.metrics.first_applied_lsn or self.applied_lsn
        self.metrics.received_lsn = max(self.receiver.received_lsn, self.applied_lsn)
        if self.destination.isolate and self.applied_lsn >= self.isolation.until:
            self.destination.isolate, self.isolation.until = False, 0
        self.last_progress_write = self.clock()

    def _record_progress(self, lsn: int) -> None:
        """Commit ``lsn`` as the progress with no changes of ours, flushed."""
        self.destination.commit(lsn, None, durable=True)
        self._applied(lsn, durable=True)

    def between_transactions(self, wal_end: int | None) -> None:
        if wal_end is not None:
            # Kept, not dropped, when busy or throttled: the server sends an idle position once,
            # and a quiet source sends no other, so a dropped one would leave the replica behind.
            self.idle_wal_end = max(self.idle_wal_end, wal_end)
        if self.transaction.begin is not None or self.streams.applying_live:
            return
        now = self.clock()
        maintenance_due = (
            self.discovery_requested
            or now - self.last_maintenance >= self.config.discovery_interval_seconds
        )
        waited = maintenance_due or self._batch_waited()
        if self.batch.lsn is not None and waited and self._refresh_due():
            self.commit_batch()
        if (
            self.idle_wal_end > self.applied_lsn
            and self.batch.lsn is None
            and now - self.last_progress_write >= PROGRESS_IDLE_SECONDS
        ):
            # Nothing of ours up to there: record it so the slot (and lag) move on when idle.
            self._record_progress(self.idle_wal_end)
            self.metrics.lag_seconds = 0.0  # caught up with everything the source has
        elif (
            self.durable_lsn < self.applied_lsn
            and self.batch.lsn is None
            and now - self.last_durable >= DURABLE_EVERY_SECONDS
        ):
            # The last batches committed without a flush: the progress again, flushed this
            # time (with them: WAL is flushed in order), so the slot moves on when quiet.
            self._record_progress(self.applied_lsn)
        if maintenance_due and self.batch.lsn is None:
            # Never inside an open batch: maintenance commits its own state writes, which would
            # make the batch's changes durable without their progress.
            self._maintain()

    def _maintain(self) -> None:
        self.last_maintenance = self.clock()
        self.discovery_requested = False
        self.table_sync.maintain()
