"""Streamed in-progress transactions, and the spool that keeps them until they commit.

The server sends a transaction larger than logical_decoding_work_mem in stream blocks while it
runs (protocol 2+), then Stream Commit or Stream Abort. One of them at a time is applied live,
into the open warehouse transaction (a savepoint marks each of its subtransactions, which may
abort on their own), and committed at Stream Commit together with its end LSN: exactly-once as
for any other batch. Other streamed transactions wait in a spool (memory, then a temporary
file) until they commit. Transactions that commit while the live one is open are applied at
once, in arrival order, into the same warehouse transaction (later changes of the live one may
depend on them) and also logged: if the live transaction (or one of its subtransactions)
aborts, what was rolled back with it is applied again.
"""

from __future__ import annotations

import pickle
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from zetl.errors import DataError
from zetl_replicator.apply.registry import TableRegistry
from zetl_replicator.destination.interface import Destination, utc_text
from zetl_replicator.ops.metrics import Metrics
from zetl_replicator.source import pgoutput

SPOOL_MEMORY_BYTES = 16 * 1024 * 1024  # per spool; beyond it, a temporary file
SPOOL_CHUNK = 1024  # messages pickled together
LIVE_FINAL_LSN = (1 << 64) - 1  # the live streamed transaction commits after everything applied
STREAM_MESSAGES = (
    pgoutput.StreamStart,
    pgoutput.StreamStop,
    pgoutput.StreamCommit,
    pgoutput.StreamAbort,
)


def savepoint_name(subxid: int) -> str:
    return f"zetl_sub_{subxid}"


class StreamHost(Protocol):
    """What streamed transactions need from the apply loop that hosts them: the seam between
    the two (the loop asks ``StreamedTransactions.handle`` first, and ``applying_live``)."""

    destination: Destination
    registry: TableRegistry
    metrics: Metrics

    @property
    def applied_lsn(self) -> int:
        """The end LSN of the last source transaction committed in the warehouse."""
        ...

    @property
    def current_begin(self) -> pgoutput.Begin | None:
        """The transaction the next changes belong to (None: none)."""
        ...

    def enter_transaction(self, begin: pgoutput.Begin, *, skipping: bool = False) -> None:
        """Changes from now on belong to ``begin``'s transaction."""
        ...

    def leave_transaction(self) -> None:
        """Changes from now on belong to no transaction."""
        ...

    def apply(self, message: pgoutput.Message, *, end_of_input: bool) -> None:
        """Apply a message of a transaction that is not streamed (or replayed)."""
        ...

    def handle(self, message: pgoutput.Message, *, end_of_input: bool) -> None:
        """Take a message as if it came from the stream (a replay of the log)."""
        ...

    def start_batch(self) -> None:
        """Commit the open batch, if any: what comes next is a batch of its own, from now."""
        ...

    def add_to_batch(self, end_lsn: int, commit_time: datetime) -> None:
        """A source transaction ending at ``end_lsn`` is applied into the open batch."""
        ...

    def commit_batch(self, *, durable: bool | None = None) -> None:
        """Commit the open batch."""
        ...

    def discard_batch(self) -> None:
        """The open batch was rolled back."""
        ...

    def reload_tables(self, *, in_open_transaction: bool = False) -> None:
        """Load the replicated tables again as the replica has them (a schema change undone)."""
        ...


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


@dataclass
class LiveStream:
    """The streamed transaction being applied into the open warehouse transaction."""

    xid: int
    begin: pgoutput.Begin  # stands for it while its changes are applied
    relations: dict[int, pgoutput.Relation]  # as before it: restored if it aborts
    log: Spool  # transactions applied into it that committed at the source before it
    savepoints: dict[int, int] = field(default_factory=dict)  # subtransaction -> log position
    spooled: set[int] = field(default_factory=set)  # spooled transactions applied into it
    schema_changed: bool = False


class StreamedTransactions:
    """The apply loop's handling of stream blocks, Stream Commit and Stream Abort."""

    def __init__(self, loop: StreamHost) -> None:
        self.loop = loop
        self.stream_xid: int | None = None  # the transaction of the open stream block
        self.live: LiveStream | None = None  # the one applied as it arrives
        self.spools: dict[int, Spool] = {}  # the others, until they commit

    def close(self) -> None:
        for spool in self.spools.values():
            spool.close()
        if self.live is not None:
            self.live.log.close()

    @property
    def applying_live(self) -> bool:
        """A streamed transaction is being applied into the open batch: it must not commit."""
        return self.live is not None

    def handle(self, message: pgoutput.Message) -> bool:
        """Take ``message`` if it is streaming's: a stream message, a change inside a stream
        block, or one of a transaction committing while the live one is open. False: the
        host applies it as any other."""
        if isinstance(message, STREAM_MESSAGES):
            self.on_message(message)
        elif self.stream_xid is not None:
            self.on_change(self.stream_xid, message)
        elif self.live is not None:
            self.on_committed_while_live(message)
        else:
            return False
        return True

    def schema_changed(self) -> None:
        """A schema change was applied: undone if the live transaction rolls back."""
        if self.live is not None:
            self.live.schema_changed = True

    def on_message(self, message: pgoutput.Message) -> None:
        if isinstance(message, pgoutput.StreamStart):
            self._on_start(message)
        elif isinstance(message, pgoutput.StreamStop):
            self.stream_xid = None
            if self.live is not None:
                # Until the next block: transactions that commit meanwhile may come.
                self.loop.leave_transaction()
        elif isinstance(message, pgoutput.StreamCommit):
            self._on_commit(message)
        elif isinstance(message, pgoutput.StreamAbort):
            self._on_abort(message)

    def _on_start(self, message: pgoutput.StreamStart) -> None:
        loop = self.loop
        # Applied before its commit time is known: its versions get the time they arrive.
        loop.destination.change_time = utc_text(datetime.now(UTC))
        xid = message.xid
        self.stream_xid = xid
        if self.live is not None and self.live.xid == xid:
            loop.enter_transaction(self.live.begin)
            return
        if xid in self.spools:
            return
        if not message.first_segment:
            raise DataError(f"a stream block of transaction {xid} without its beginning")
        # Live only when the commit LSN, unknown until Stream Commit, cannot matter: no table
        # copy is newer than what is applied (a copy taken later waits for this transaction).
        if self.live is not None or loop.registry.copies_newer_than(loop.applied_lsn):
            self.spools[xid] = Spool()
            loop.metrics.streamed_spooled += 1
            return
        loop.metrics.streamed_applied_live += 1
        loop.start_batch()  # the live transaction is a warehouse transaction of its own
        # Not known yet: the commit LSN. "Later than anything applied" is what the checks need.
        begin = pgoutput.Begin(LIVE_FINAL_LSN, datetime.now(UTC), xid)
        self.live = LiveStream(xid, begin, loop.registry.relations_snapshot(), Spool())
        loop.enter_transaction(begin)

    def on_change(self, xid: int, message: pgoutput.Message) -> None:
        """A change inside the stream block of transaction ``xid``."""
        live = self.live
        if live is None or live.xid != xid:
            self.spools[xid].add(message)
            return
        sub = getattr(message, "xid", None)
        if sub is not None and sub != xid and sub not in live.savepoints:
            self.loop.destination.savepoint(savepoint_name(sub))
            live.savepoints[sub] = live.log.count
        self.loop.apply(message, end_of_input=False)

    def on_committed_while_live(self, message: pgoutput.Message) -> None:
        """A message of a transaction that commits while the live one is open."""
        assert self.live is not None
        self.live.log.add(message)
        if isinstance(message, pgoutput.StreamCommit):
            self.live.spooled.add(message.xid)
            self._apply_spooled(message)
        else:
            self.loop.apply(message, end_of_input=False)

    def _on_commit(self, message: pgoutput.StreamCommit) -> None:
        loop = self.loop
        loop.destination.change_time = utc_text(message.commit_time)  # for a spooled one
        live = self.live
        if live is not None and live.xid == message.xid:
            self.live = None
            loop.leave_transaction()
            if message.commit_lsn < loop.applied_lsn:  # a resend of something applied
                self._roll_back_live(live)
                return
            loop.add_to_batch(message.end_lsn, message.commit_time)
            loop.commit_batch()
            live.log.close()
            for xid in live.spooled:
                self.spools.pop(xid).close()
        elif live is not None:
            self.on_committed_while_live(message)  # commits before the live one: now
        else:
            self._apply_spooled(message)

    def _on_abort(self, message: pgoutput.StreamAbort) -> None:
        live = self.live
        if live is not None and live.xid == message.xid:
            if message.subxid == message.xid:
                self.live = None
                self.loop.leave_transaction()
                self._roll_back_live(live)
            elif message.subxid in live.savepoints:
                self._roll_back_subtransaction(live, message.subxid)
        elif message.xid in self.spools:
            if message.subxid == message.xid:
                self.spools.pop(message.xid).close()
            else:
                self.spools[message.xid].abort_subtransaction(message.subxid)

    def _roll_back_live(self, live: LiveStream) -> None:
        """Undo the live transaction, then apply again what committed meanwhile."""
        loop = self.loop
        loop.destination.rollback()
        loop.discard_batch()
        if live.schema_changed:
            loop.reload_tables()
        loop.registry.restore_relations(live.relations)
        for message in live.log.replay():
            loop.handle(message, end_of_input=False)
        live.log.close()

    def _roll_back_subtransaction(self, live: LiveStream, subxid: int) -> None:
        loop = self.loop
        logged = live.savepoints[subxid]
        loop.destination.rollback_to(savepoint_name(subxid))
        names = list(live.savepoints)  # in creation order; the later ones are gone with it
        live.savepoints = {s: live.savepoints[s] for s in names[: names.index(subxid) + 1]}
        loop.registry.new_transaction()
        if live.schema_changed:
            loop.reload_tables(in_open_transaction=True)
        begin = loop.current_begin  # replaying leaves it: return to it after
        for message in live.log.replay(start=logged):
            if isinstance(message, pgoutput.StreamCommit):
                self._apply_spooled(message, keep=True)
            else:
                loop.apply(message, end_of_input=False)
        if begin is None:
            loop.leave_transaction()
        else:
            loop.enter_transaction(begin)

    def _apply_spooled(self, commit: pgoutput.StreamCommit, *, keep: bool = False) -> None:
        """A spooled streamed transaction committed: apply it like any other transaction."""
        spool = self.spools.get(commit.xid) if keep else self.spools.pop(commit.xid, None)
        if spool is None:
            return  # nothing of it was published
        loop = self.loop
        loop.apply(
            pgoutput.Begin(commit.commit_lsn, commit.commit_time, commit.xid), end_of_input=False
        )
        for change in spool.replay():
            loop.apply(change, end_of_input=False)
        loop.apply(
            pgoutput.Commit(commit.flags, commit.commit_lsn, commit.end_lsn, commit.commit_time),
            end_of_input=False,
        )
        if self.live is None:
            spool.close()
        else:
            self.spools[commit.xid] = spool  # kept until the live one ends: it may be replayed
