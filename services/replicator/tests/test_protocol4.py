"""pgoutput protocol 4 (PostgreSQL 16+): parallel streaming of in-progress transactions.

With ``streaming 'parallel'`` the server streams large transactions as they run, as with
protocol 2, and every Stream Abort also carries the abort's LSN and time. These tests read a
real server's stream with the replicator's decoder while the transactions run: a streamed
commit whose subtransactions were partly rolled back, a streamed top-level abort, and the
ordinary transaction after them.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from contextlib import closing
from typing import cast

import psycopg2
import psycopg2.extensions
import psycopg2.extras
import pytest

from services.replicator.tests.support import execute, rows
from zetl_replicator.config import ReplicatorConfig
from zetl_replicator.source import pgoutput

STREAM_TIMEOUT_S = 180.0
MARKER_ID = 999_999


def server_version(url: str) -> int:
    return int(str(rows(url, "SHOW server_version_num")[0][0]))


def test_the_replicator_asks_for_the_newest_protocol_of_the_server(
    config: ReplicatorConfig,
) -> None:
    version = server_version(config.source_url)
    expected = {15: 3, 16: 4, 17: 4, 18: 4}[version // 10000]
    assert pgoutput.protocol_version(version) == expected


def insert_rows(cur: psycopg2.extensions.cursor, first: int, last: int) -> None:
    cur.execute(
        "INSERT INTO big SELECT g, repeat('p', 200) FROM generate_series(%s, %s) g", (first, last)
    )


def test_protocol_4_streams_commit_abort_and_subtransactions(config: ReplicatorConfig) -> None:
    src = config.source_url
    if server_version(src) < 160000:
        pytest.skip("protocol 4 exists from PostgreSQL 16 on; this server speaks up to 3")
    database = src.rsplit("/", 1)[1]
    slot, publication = f"{config.slot}_p4", f"{config.publication}_p4"
    execute(
        src,
        # A few hundred rows exceed this, so the transactions below reach the client streamed.
        f"ALTER DATABASE {database} SET logical_decoding_work_mem = '64kB'",
        "CREATE TABLE big (id int PRIMARY KEY, payload text)",
        f"CREATE PUBLICATION {publication} FOR TABLE big",
    )
    replication = psycopg2.connect(
        src, connection_factory=psycopg2.extras.LogicalReplicationConnection
    )
    aborted = AbortedTransaction()
    writer = threading.Thread(target=write_transactions, args=(src, aborted), daemon=True)
    try:
        with replication.cursor() as cur:
            cur.create_replication_slot(slot, output_plugin="pgoutput")
        # Written while the stream is read, as in production: a server decoding a transaction
        # it already knows to be aborted may drop it without streaming it (18 does).
        writer.start()
        committed, stream_aborts, marker_committed = read_stream(
            replication, slot, publication, aborted
        )
        writer.join(timeout=STREAM_TIMEOUT_S)
        assert aborted.error is None, aborted.error
    finally:
        replication.close()
        execute(
            src,
            f"SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots"
            f" WHERE slot_name = '{slot}'",
        )

    assert marker_committed, "the transaction after the streamed ones arrived whole"
    assert list(committed.values()) == [set(range(1, 2001)) | set(range(4001, 5001))]
    (top_xid,) = committed
    subtransaction_aborts = [a for a in stream_aborts if a.subxid != a.xid]
    whole_aborts = [a for a in stream_aborts if a.subxid == a.xid]
    assert [a.xid for a in subtransaction_aborts] == [top_xid]
    assert len(whole_aborts) == 1 and whole_aborts[0].xid != top_xid
    # What protocol 4's parallel mode adds: where and when each abort happened.
    for abort in stream_aborts:
        assert abort.abort_lsn is not None and abort.abort_lsn > 0
        assert abort.abort_time is not None


class AbortedTransaction:
    """The writer's transaction that ends in ROLLBACK, and when the reader saw it streamed."""

    def __init__(self) -> None:
        self.xid: int | None = None
        self.streamed = threading.Event()
        self.error: BaseException | None = None


def write_transactions(url: str, aborted: AbortedTransaction) -> None:
    try:
        with closing(psycopg2.connect(url)) as writer, writer.cursor() as cur:
            # Committed, with one rolled-back and one released subtransaction.
            insert_rows(cur, 1, 2000)
            cur.execute("SAVEPOINT undone")
            insert_rows(cur, 2001, 4000)
            cur.execute("ROLLBACK TO SAVEPOINT undone")
            cur.execute("SAVEPOINT kept")
            insert_rows(cur, 4001, 5000)
            cur.execute("RELEASE SAVEPOINT kept")
            writer.commit()
            # Aborted as a whole, once part of it reached the reader.
            insert_rows(cur, 10001, 13000)
            cur.execute("SELECT pg_current_xact_id()::text")
            aborted.xid = int(str(cur.fetchone()[0])) & 0xFFFFFFFF  # type: ignore[index]
            if not aborted.streamed.wait(STREAM_TIMEOUT_S):
                raise AssertionError("the transaction to abort was never streamed")
            writer.rollback()
            # A small transaction: not streamed, and the end of what to read.
            cur.execute("INSERT INTO big VALUES (%s, 'marker')", (MARKER_ID,))
            writer.commit()
    except BaseException as exc:
        aborted.error = exc


def read_stream(
    replication: psycopg2.extensions.connection,
    slot: str,
    publication: str,
    aborted: AbortedTransaction,
) -> tuple[dict[int, set[int]], list[pgoutput.StreamAbort], bool]:
    """Reads the slot with protocol 4 and streaming 'parallel' until the marker row commits.

    Returns the ids each streamed transaction committed (changes of rolled-back subtransactions
    taken out, as an applier must), every Stream Abort, and whether the marker committed.
    """
    cur = cast(psycopg2.extras.ReplicationCursor, replication.cursor())
    cur.start_replication(
        slot_name=slot,
        decode=False,
        options={"proto_version": "4", "publication_names": publication, "streaming": "parallel"},
    )
    # (top-level xid, xid of the change) -> ids, while streamed; top-level xid -> ids, committed
    pending: dict[tuple[int, int], set[int]] = defaultdict(set)
    committed: dict[int, set[int]] = {}
    aborts: list[pgoutput.StreamAbort] = []
    stream_xid: int | None = None
    in_plain_transaction: set[int] = set()
    deadline = time.monotonic() + STREAM_TIMEOUT_S
    while time.monotonic() < deadline and aborted.error is None:
        message = cur.read_message()
        if message is None:
            time.sleep(0.05)
            continue
        decoded = pgoutput.decode(
            bytes(message.payload), in_stream=stream_xid is not None, parallel_abort=True
        )
        if isinstance(decoded, pgoutput.StreamStart):
            stream_xid = decoded.xid
            if decoded.xid == aborted.xid:
                aborted.streamed.set()
        elif isinstance(decoded, pgoutput.StreamStop):
            stream_xid = None
        elif isinstance(decoded, pgoutput.Insert):
            row_id = int(str(decoded.new[0]))
            if stream_xid is not None:
                pending[(stream_xid, decoded.xid or stream_xid)].add(row_id)
            else:
                in_plain_transaction.add(row_id)
        elif isinstance(decoded, pgoutput.StreamAbort):
            aborts.append(decoded)
            for key in [k for k in pending if k[0] == decoded.xid]:
                if decoded.subxid in (decoded.xid, key[1]):
                    del pending[key]
        elif isinstance(decoded, pgoutput.StreamCommit):
            ids: set[int] = set()
            for key in [k for k in pending if k[0] == decoded.xid]:
                ids |= pending.pop(key)
            committed[decoded.xid] = ids
        elif isinstance(decoded, pgoutput.Commit) and MARKER_ID in in_plain_transaction:
            return committed, aborts, True
        message.cursor.send_feedback(flush_lsn=message.data_start)
    return committed, aborts, False
