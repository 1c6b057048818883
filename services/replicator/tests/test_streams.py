"""The spool and streamed in-progress transactions, without a database: replay, aborted
subtransactions, and the apply loop's handling of stream aborts and commits, and of batches
(when they commit, what the source is told), against an in-memory destination that keeps the
``Destination`` contract."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import cast

import psycopg2.extensions

from zetl_replicator.apply.loop import DURABLE_EVERY_SECONDS, ApplyLoop, Isolation
from zetl_replicator.apply.registry import TableRegistry
from zetl_replicator.apply.streams import Spool
from zetl_replicator.config import ReplicatorConfig
from zetl_replicator.destination.interface import Destination
from zetl_replicator.ops.metrics import Metrics
from zetl_replicator.source import pgoutput
from zetl_replicator.source.tables import ColumnInfo, TableInfo
from zetl_replicator.state.options import DatabaseOptions
from zetl_replicator.testing import ManualClock, MemoryDestination, ReceivedPosition

NOW = datetime(2026, 1, 1, tzinfo=UTC)
T = TableInfo(
    "public",
    "t",
    (ColumnInfo("id", "integer", "int4", True), ColumnInfo("v", "text", "text", False)),
    ("id",),
)
RELATION = pgoutput.Relation(
    None,
    7,
    "public",
    "t",
    "d",
    (pgoutput.Column("id", 23, -1, True), pgoutput.Column("v", 25, -1, False)),
)


def insert(xid: int | None, key: int, value: str = "v") -> pgoutput.Insert:
    return pgoutput.Insert(xid, 7, (str(key), value), 10)


# --- the spool -------------------------------------------------------------------------------


def test_a_spool_replays_in_order_and_again() -> None:
    spool = Spool()
    messages = [insert(1, i) for i in range(3000)]  # several pickled chunks
    for message in messages:
        spool.add(message)
    assert list(spool.replay()) == messages
    assert list(spool.replay(start=2990)) == messages[2990:]
    spool.close()


def test_an_aborted_subtransaction_drops_its_changes_and_those_after_them() -> None:
    spool = Spool()
    spool.add(insert(1, 1))
    spool.add(insert(2, 2))  # subtransaction 2 starts here
    spool.add(RELATION)  # a Relation inside it still describes the table: kept
    spool.add(insert(1, 3))
    spool.abort_subtransaction(2)
    spool.add(insert(1, 4))
    spool.abort_subtransaction(99)  # nothing of it: nothing dropped
    assert list(spool.replay()) == [insert(1, 1), RELATION, insert(1, 4)]
    spool.close()


def test_a_spool_spills_to_disk_past_its_memory() -> None:
    spool = Spool()
    for i in range(2500):  # about 25 MB of distinct values: past SPOOL_MEMORY_BYTES
        spool.add(insert(1, i, f"{i:06d}" + "x" * 10_000))
    assert spool.file._rolled  # type: ignore[attr-defined]  # SpooledTemporaryFile's flag
    assert [m.new[0] for m in spool.replay() if isinstance(m, pgoutput.Insert)] == [
        str(i) for i in range(2500)
    ]
    spool.close()


# --- streamed transactions in the apply loop ---------------------------------------------------


class Discovery:
    """Stands in for the table sync: counts the maintenance runs."""

    def __init__(self) -> None:
        self.runs = 0

    def maintain(self) -> None:
        self.runs += 1

    def reload(self, *, in_open_transaction: bool = False) -> None:
        raise AssertionError("no schema change here")

    def replica_name(self, oid: int) -> tuple[str, str] | None:
        return None

    def renamed(self, oid: int, name: tuple[str, str]) -> None:
        raise AssertionError("no rename here")


def loop_over(
    destination: MemoryDestination,
    applied_lsn: int = 100,
    *,
    batch_min_seconds: float = 0.1,
    clock: ManualClock | None = None,
    discovery: Discovery | None = None,
) -> ApplyLoop:
    registry = TableRegistry()
    registry.start([T], 0, history=False)
    registry.remember(RELATION)
    typed: Destination = destination
    loop = ApplyLoop(
        config=ReplicatorConfig("", "", "replica", batch_min_seconds=batch_min_seconds),
        metrics=Metrics(),
        registry=registry,
        destination=typed,
        table_sync=discovery or Discovery(),
        src=cast(psycopg2.extensions.connection, None),  # no schema change either
        applied_lsn=applied_lsn,
        isolation=Isolation(),
        state_changed=lambda: None,
        clock=clock or ManualClock(),
    )
    loop.receiver = ReceivedPosition()
    return loop


def feed(loop: ApplyLoop, *messages: pgoutput.Message) -> None:
    for message in messages:
        loop.handle(message, end_of_input=True)


def commit(xid: int, lsn: int) -> pgoutput.StreamCommit:
    return pgoutput.StreamCommit(xid, 0, lsn, lsn + 8, NOW)


def test_a_live_streamed_transaction_commits_with_its_end_lsn() -> None:
    dest = MemoryDestination()
    loop = loop_over(dest)
    feed(loop, pgoutput.StreamStart(10, True), insert(10, 1), pgoutput.StreamStop())
    feed(loop, pgoutput.StreamStart(10, False), insert(10, 2), pgoutput.StreamStop())
    assert dest.keys() == []  # applied into the open batch, not committed
    feed(loop, commit(10, 500))
    assert dest.keys() == [1, 2]
    assert dest.lsn == 508
    assert loop.applied_lsn == 508


def test_an_aborted_live_transaction_leaves_nothing() -> None:
    dest = MemoryDestination()
    loop = loop_over(dest)
    feed(loop, pgoutput.StreamStart(10, True), insert(10, 1), pgoutput.StreamStop())
    feed(loop, pgoutput.StreamAbort(10, 10))
    assert dest.keys() == [] and dest.batch == {}
    assert loop.streams.live is None
    assert loop.applied_lsn == 100


def test_an_aborted_subtransaction_of_the_live_one_is_rolled_back_to_its_savepoint() -> None:
    dest = MemoryDestination()
    loop = loop_over(dest)
    feed(
        loop,
        pgoutput.StreamStart(10, True),
        insert(10, 1),
        insert(11, 2),  # subtransaction 11
        pgoutput.StreamStop(),
        pgoutput.StreamAbort(10, 11),
        pgoutput.StreamStart(10, False),
        insert(10, 3),
        pgoutput.StreamStop(),
        commit(10, 500),
    )
    assert dest.keys() == [1, 3]


def test_a_second_stream_is_spooled_and_applied_at_its_commit() -> None:
    dest = MemoryDestination()
    loop = loop_over(dest)
    feed(loop, pgoutput.StreamStart(10, True), insert(10, 1), pgoutput.StreamStop())
    feed(loop, pgoutput.StreamStart(20, True), insert(20, 2), pgoutput.StreamStop())
    assert 20 in loop.streams.spools
    feed(loop, pgoutput.StreamAbort(20, 20))  # the spooled one aborts: dropped
    assert 20 not in loop.streams.spools
    feed(loop, pgoutput.StreamStart(30, True), insert(30, 3), pgoutput.StreamStop())
    feed(loop, commit(30, 400))  # commits before the live one: into its warehouse transaction
    feed(loop, commit(10, 500))
    assert dest.keys() == [1, 3]


def test_what_committed_while_the_live_one_ran_is_applied_again_when_it_aborts() -> None:
    dest = MemoryDestination()
    loop = loop_over(dest)
    feed(loop, pgoutput.StreamStart(10, True), insert(10, 1), pgoutput.StreamStop())
    feed(
        loop,
        pgoutput.Begin(400, NOW, 40),
        insert(None, 4),
        pgoutput.Commit(0, 400, 408, NOW),
    )
    feed(loop, pgoutput.StreamAbort(10, 10))
    assert loop.streams.live is None
    loop.commit_batch()
    assert dest.keys() == [4]
    assert dest.lsn == 408


def test_a_resent_transaction_is_skipped() -> None:
    dest = MemoryDestination()
    loop = loop_over(dest, applied_lsn=1000)
    feed(loop, pgoutput.Begin(900, NOW, 5), insert(None, 9), pgoutput.Commit(0, 900, 908, NOW))
    assert dest.changes == 0 and loop.batch.lsn is None


# --- batches -----------------------------------------------------------------------------------


def transaction(lsn: int, key: int) -> list[pgoutput.Message]:
    """A source transaction inserting ``key``, committing at ``lsn`` (ending at lsn + 8)."""
    return [
        pgoutput.Begin(lsn, NOW, 1),
        insert(None, key),
        pgoutput.Commit(0, lsn, lsn + 8, NOW),
    ]


def test_the_source_hears_only_of_flushed_commits() -> None:
    dest = MemoryDestination()
    clock = ManualClock()
    loop = loop_over(dest, batch_min_seconds=0, clock=clock)
    feed(loop, *transaction(200, 1))
    assert dest.durable == [True]  # the first waits for the flush
    assert loop.receiver is not None and loop.receiver.flush_lsn == 208
    feed(loop, *transaction(300, 2))
    assert dest.durable == [True, False]  # visible at once, flushed later
    assert dest.keys() == [1, 2] and loop.applied_lsn == 308
    assert loop.receiver.flush_lsn == 208  # the source must keep what is not flushed yet
    clock.advance(DURABLE_EVERY_SECONDS)  # a quiet second later
    loop.between_transactions(None)
    assert dest.durable == [True, False, True] and dest.lsn == 308
    assert loop.receiver.flush_lsn == 308


def test_a_batch_waits_for_more_transactions_before_it_commits() -> None:
    dest = MemoryDestination()
    clock = ManualClock()
    loop = loop_over(dest, batch_min_seconds=3600, clock=clock)
    loop.between_transactions(None)  # due maintenance runs now (it would commit the batch)
    feed(loop, *transaction(200, 1), *transaction(300, 2))
    loop.between_transactions(None)
    assert dest.keys() == [] and loop.batch.transactions == 2  # nothing waited long enough
    clock.advance(3600)
    loop.between_transactions(None)
    assert dest.keys() == [1, 2] and dest.lsn == 308


def test_discovery_never_runs_inside_a_batch_held_open_by_refresh_interval() -> None:
    dest = MemoryDestination()
    clock, discovery = ManualClock(), Discovery()
    loop = loop_over(dest, batch_min_seconds=0, clock=clock, discovery=discovery)
    loop.registry.options = DatabaseOptions(refresh_interval=3600)
    # The replica moved just now (a transaction with no changes of ours): the next batch is held.
    feed(loop, pgoutput.Begin(100, NOW, 1), pgoutput.Commit(0, 100, 108, NOW))
    feed(loop, *transaction(200, 1))
    loop.between_transactions(None)  # discovery is due (never ran), the batch is open
    assert discovery.runs == 0 and dest.keys() == []
    clock.advance(3600)
    loop.between_transactions(None)
    assert dest.keys() == [1] and discovery.runs == 1  # committed first, then discovery
