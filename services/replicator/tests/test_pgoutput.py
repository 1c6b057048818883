"""The pgoutput decoder, on bytes captured from a real Postgres server in the test itself."""

from __future__ import annotations

import select
import time
import uuid
from collections.abc import Callable

import psycopg2
import psycopg2.extras
import pytest

from services.replicator.tests.support import execute
from zetl_replicator.source import pgoutput
from zetl_replicator.source.pgoutput import (
    UNCHANGED_TOAST,
    Begin,
    Commit,
    DecodeError,
    Delete,
    Insert,
    Relation,
    StreamAbort,
    StreamCommit,
    StreamStart,
    StreamStop,
    Truncate,
    Update,
    decode,
)

BIG = "x" * 20000 + "".join(str(i) for i in range(3000))  # stored out of line (TOAST)
# How long a capture may take to decode what its workload wrote: generous, since decoding
# thousands of rows on a loaded machine takes many times what it takes on an idle one.
CAPTURE_SECONDS = 180


def capture(
    url: str,
    workload: Callable[[], None],
    *,
    options: dict[str, str],
    done: Callable[[list[bytes]], bool],
    connection_options: str = "",
) -> list[bytes]:
    """Create a slot, run ``workload``, and return the raw pgoutput payloads it produced."""
    slot = f"capture_{uuid.uuid4().hex[:8]}"
    conn = psycopg2.connect(
        url,
        connection_factory=psycopg2.extras.LogicalReplicationConnection,
        options=connection_options or None,
    )
    payloads: list[bytes] = []
    try:
        cur = conn.cursor()
        cur.create_replication_slot(slot, output_plugin="pgoutput")
        workload()
        cur.start_replication(slot_name=slot, decode=False, options=options)
        deadline = time.monotonic() + CAPTURE_SECONDS
        while not done(payloads):
            assert time.monotonic() < deadline, (
                f"captured only {len(payloads)} messages in {CAPTURE_SECONDS} s"
            )
            message = cur.read_message()
            if message is None:
                select.select([cur], [], [], 0.5)
                continue
            payloads.append(bytes(message.payload))
    finally:
        conn.close()
        execute(url, f"SELECT pg_drop_replication_slot('{slot}')")
    return payloads


def commits(count: int) -> Callable[[list[bytes]], bool]:
    return lambda payloads: sum(p[:1] in (b"C", b"c", b"A") for p in payloads) >= count


def test_decodes_every_change_kind_captured_from_postgres(source_url: str) -> None:
    execute(
        source_url,
        "CREATE TABLE items (id bigint PRIMARY KEY, name text, price numeric(12,2),"
        " at timestamptz, note text)",
        "CREATE TABLE audit (id int PRIMARY KEY, what text)",
        "ALTER TABLE audit REPLICA IDENTITY FULL",
        "CREATE PUBLICATION pub FOR TABLE items, audit",
    )

    def workload() -> None:
        execute(
            source_url,
            "INSERT INTO items VALUES (1, 'tab\tand\nnewline', 12.50, '2024-01-02 03:04:05+00',"
            f" '{BIG}'), (2, NULL, 0.99, NULL, NULL)",
            "UPDATE items SET name = 'renamed' WHERE id = 1",  # note: unchanged TOAST
            "UPDATE items SET id = 10 WHERE id = 2",  # key change: old key sent
            "INSERT INTO audit VALUES (1, 'a')",
            "UPDATE audit SET what = 'b' WHERE id = 1",  # identity full: old row sent
            "DELETE FROM items WHERE id = 10",
            "TRUNCATE items, audit",
        )

    payloads = capture(
        source_url,
        workload,
        options={"proto_version": "1", "publication_names": "pub"},
        done=commits(7),
    )
    messages = [decode(p) for p in payloads]
    relations = {m.relation_id: m for m in messages if isinstance(m, Relation)}
    items = next(r for r in relations.values() if r.name == "items")
    assert [c.name for c in items.columns] == ["id", "name", "price", "at", "note"]
    assert [c.is_key for c in items.columns] == [True, False, False, False, False]
    assert items.namespace == "public" and items.replica_identity == "d"
    assert items.columns[2].type_oid == 1700  # numeric
    assert items.columns[2].type_modifier == ((12 << 16) | 2) + 4

    begins = [m for m in messages if isinstance(m, Begin)]
    ends = [m for m in messages if isinstance(m, Commit)]
    assert len(begins) == len(ends) == 7
    assert all(
        b.final_lsn == c.commit_lsn and c.end_lsn > c.commit_lsn
        for b, c in zip(begins, ends, strict=True)
    )
    assert [c.end_lsn for c in ends] == sorted(c.end_lsn for c in ends)

    inserts = [m for m in messages if isinstance(m, Insert)]
    assert inserts[0].new == ("1", "tab\tand\nnewline", "12.50", "2024-01-02 03:04:05+00", BIG)
    assert inserts[1].new == ("2", None, "0.99", None, None)

    updates = [m for m in messages if isinstance(m, Update)]
    assert updates[0].old is None and updates[0].new[1] == "renamed"
    assert updates[0].new[4] is UNCHANGED_TOAST
    assert updates[1].old_kind == "K" and updates[1].old is not None
    assert updates[1].old[0] == "2" and updates[1].new[0] == "10"
    assert updates[2].old_kind == "O" and updates[2].old == ("1", "a")

    deletes = [m for m in messages if isinstance(m, Delete)]
    assert deletes[0].old_kind == "K" and deletes[0].old[0] == "10"
    truncates = [m for m in messages if isinstance(m, Truncate)]
    assert len(truncates) == 1
    assert set(truncates[0].relation_ids) == set(relations)
    assert not truncates[0].cascade


def test_decodes_streamed_in_progress_transactions(source_url: str) -> None:
    """Protocol 2+: a transaction larger than logical_decoding_work_mem arrives in stream blocks."""
    execute(
        source_url,
        "CREATE TABLE events (id int PRIMARY KEY, payload text)",
        "CREATE PUBLICATION pub FOR TABLE events",
    )

    def workload() -> None:
        conn = psycopg2.connect(source_url)
        try:
            with conn.cursor() as cur:
                cur.execute(
                    "INSERT INTO events SELECT g, repeat('p', 200) FROM generate_series(1, 3000) g"
                )
            conn.commit()
            with conn.cursor() as cur:
                cur.execute(
                    "INSERT INTO events SELECT g, 'gone' FROM generate_series(5001, 8000) g"
                )
            conn.rollback()
            # A small transaction after both: not streamed, its Commit ends the capture.
            with conn.cursor() as cur:
                cur.execute("INSERT INTO events VALUES (9999, 'end')")
            conn.commit()
        finally:
            conn.close()

    server_version = psycopg2.connect(source_url).server_version
    version = pgoutput.protocol_version(server_version)
    payloads = capture(
        source_url,
        workload,
        options={"proto_version": str(version), "publication_names": "pub", "streaming": "on"},
        done=lambda p: any(x[:1] == b"c" for x in p) and any(x[:1] == b"C" for x in p),
        connection_options="-c logical_decoding_work_mem=64kB",
    )
    in_stream = False
    decoded = []
    for payload in payloads:
        message = decode(payload, in_stream=in_stream)
        if isinstance(message, StreamStart):
            in_stream = True
        elif isinstance(message, StreamStop):
            in_stream = False
        decoded.append(message)
    starts = [m for m in decoded if isinstance(m, StreamStart)]
    assert starts and starts[0].first_segment
    commit = next(m for m in decoded if isinstance(m, StreamCommit))
    committed_rows = [m for m in decoded if isinstance(m, Insert) and m.xid == commit.xid]
    assert len(committed_rows) == 3000
    assert committed_rows[-1].new == ("3000", "p" * 200)
    gone = [m for m in decoded if isinstance(m, Insert) and m.new[1] == "gone"]
    aborts = [m for m in decoded if isinstance(m, StreamAbort)]
    if aborts or server_version < 180000:
        abort = aborts[0]
        assert abort.xid != commit.xid and abort.subxid == abort.xid
        assert gone and all(m.xid == abort.xid for m in gone)
    else:
        # PostgreSQL 18 does not stream a transaction it already knows to be aborted (it was,
        # by the time this slot decoded it): nothing of it arrives, not even the abort.
        assert gone == []


def test_rejects_malformed_messages() -> None:
    with pytest.raises(DecodeError, match="empty"):
        decode(b"")
    with pytest.raises(DecodeError, match="unknown message type"):
        decode(b"Z")
    with pytest.raises(DecodeError, match="truncated"):
        decode(b"B\x00\x00")
    assert isinstance(decode(b"E"), StreamStop)
    row = b"\x00\x02t\x00\x00\x00\x011n"  # two columns: '1' and NULL
    assert decode(b"I\x00\x00\x00\x07N" + row) == Insert(None, 7, ("1", None), 15)
    streamed = decode(b"I\x00\x00\x00\x09\x00\x00\x00\x07N" + row, in_stream=True)
    assert streamed == Insert(9, 7, ("1", None), 19)
    with pytest.raises(DecodeError, match="truncated"):
        decode(b"I\x00\x00\x00\x07N" + row[:-3])
    with pytest.raises(DecodeError, match="truncated"):
        decode(b"I\x00\x00")
    with pytest.raises(DecodeError, match="new tuple"):
        decode(b"I\x00\x00\x00\x07K" + row)


def test_lsn_text_round_trip_and_protocol_negotiation() -> None:
    assert pgoutput.lsn_to_str(0x16B374D848) == "16/B374D848"
    assert pgoutput.str_to_lsn("16/B374D848") == 0x16B374D848
    assert pgoutput.protocol_version(170002) == 4
    assert pgoutput.protocol_version(150010) == 3
    assert pgoutput.protocol_version(140000) == 2
    assert pgoutput.protocol_version(130000) == 1
