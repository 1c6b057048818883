"""The pgoutput decoder on messages built here byte by byte from the documented layouts
("Logical Replication Message Formats"): every message type, every column kind, values that
are not ASCII, and damaged messages. No server needed: the layouts are the contract."""

from __future__ import annotations

import random
import struct
from datetime import UTC, datetime, timedelta

import pytest

from zetl_replicator.source import pgoutput
from zetl_replicator.source.pgoutput import (
    UNCHANGED_TOAST,
    Begin,
    Column,
    Commit,
    DecodeError,
    Delete,
    Insert,
    LogicalMessage,
    Origin,
    Relation,
    StreamAbort,
    StreamCommit,
    StreamStart,
    StreamStop,
    Truncate,
    TypeMessage,
    UnsupportedMessage,
    Update,
    Value,
    decode,
)

XID = 0x000002EE  # 0xEE: not ASCII, as real transaction ids and relation ids often are
REL = 16_512  # 0x4080: not ASCII either
WHEN = datetime(2026, 11, 27, 19, 30, 1, 123456, tzinfo=UTC)
WHEN_MICROS = (WHEN - datetime(2000, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


def u8(n: int) -> bytes:
    return struct.pack(">B", n)


def i16(n: int) -> bytes:
    return struct.pack(">h", n)


def u32(n: int) -> bytes:
    return struct.pack(">I", n)


def i32(n: int) -> bytes:
    return struct.pack(">i", n)


def u64(n: int) -> bytes:
    return struct.pack(">Q", n)


def i64(n: int) -> bytes:
    return struct.pack(">q", n)


def cstr(text: str) -> bytes:
    return text.encode() + b"\x00"


def tuple_data(values: list[Value | bytes]) -> bytes:
    """TupleData: Int16 count, then per column 'n', 'u', 't' + Int32 length + text, or
    'b' + Int32 length + bytes (bytes values stand for the binary kind here)."""
    out = [i16(len(values))]
    for value in values:
        if value is None:
            out.append(b"n")
        elif value is UNCHANGED_TOAST:
            out.append(b"u")
        elif isinstance(value, bytes):
            out.append(b"b" + i32(len(value)) + value)
        else:
            encoded = value.encode()
            out.append(b"t" + i32(len(encoded)) + encoded)
    return b"".join(out)


def head(kind: bytes, xid: int | None) -> bytes:
    return kind + (u32(xid) if xid is not None else b"")


def insert(values: list[Value | bytes], xid: int | None = None) -> bytes:
    return head(b"I", xid) + u32(REL) + b"N" + tuple_data(values)


def update(
    new: list[Value], old: list[Value] | None = None, kind: bytes = b"K", xid: int | None = None
) -> bytes:
    before = kind + tuple_data(list(old)) if old is not None else b""
    return head(b"U", xid) + u32(REL) + before + b"N" + tuple_data(list(new))


def delete(old: list[Value], kind: bytes = b"K", xid: int | None = None) -> bytes:
    return head(b"D", xid) + u32(REL) + kind + tuple_data(list(old))


def reference_tuple(data: bytes, pos: int) -> tuple[tuple[Value, ...], int]:
    """TupleData read the plain way, one field at a time: what the decoder must agree with."""
    (count,) = struct.unpack_from(">h", data, pos)
    pos += 2
    values: list[Value] = []
    for _ in range(count):
        kind = data[pos : pos + 1]
        pos += 1
        if kind == b"n":
            values.append(None)
        elif kind == b"u":
            values.append(UNCHANGED_TOAST)
        else:
            assert kind == b"t"
            (length,) = struct.unpack_from(">i", data, pos)
            values.append(data[pos + 4 : pos + 4 + length].decode("utf-8"))
            pos += 4 + length
    return tuple(values), pos


# --- every message type -----------------------------------------------------------------------


def test_transaction_frame_messages() -> None:
    begin = b"B" + u64(0x16B374D848) + i64(WHEN_MICROS) + u32(XID)
    assert decode(begin) == Begin(0x16B374D848, WHEN, XID)
    commit = b"C" + u8(0) + u64(0x10) + u64(0x20) + i64(WHEN_MICROS)
    assert decode(commit) == Commit(0, 0x10, 0x20, WHEN)
    assert decode(b"O" + u64(0x30) + cstr("upstream")) == Origin(0x30, "upstream")


@pytest.mark.parametrize("xid", [None, XID])
def test_relation_type_truncate_and_logical_message(xid: int | None) -> None:
    in_stream = xid is not None
    columns = (
        Column("id", 20, -1, is_key=True),
        Column("naïve", 1043, 68, is_key=False),  # a UTF-8 column name, varchar(64)
    )
    body = b"".join(
        u8(int(c.is_key)) + cstr(c.name) + u32(c.type_oid) + i32(c.type_modifier) for c in columns
    )
    relation = head(b"R", xid) + u32(REL) + cstr("public") + cstr("orders") + b"f" + i16(2) + body
    assert decode(relation, in_stream=in_stream) == Relation(
        xid, REL, "public", "orders", "f", columns
    )
    type_message = head(b"Y", xid) + u32(600_001) + cstr("public") + cstr("mood")
    assert decode(type_message, in_stream=in_stream) == TypeMessage(xid, 600_001, "public", "mood")
    truncate = head(b"T", xid) + i32(2) + u8(3) + u32(REL) + u32(REL + 1)
    assert decode(truncate, in_stream=in_stream) == Truncate(xid, True, True, (REL, REL + 1))
    content = b"\x00\xffbinary"
    message = head(b"M", xid) + u8(1) + u64(0x40) + cstr("zetl") + i32(len(content)) + content
    assert decode(message, in_stream=in_stream) == LogicalMessage(xid, True, 0x40, "zetl", content)


def test_stream_messages_in_both_abort_layouts() -> None:
    assert decode(b"S" + u32(XID) + u8(1)) == StreamStart(XID, first_segment=True)
    assert decode(b"S" + u32(XID) + u8(0)) == StreamStart(XID, first_segment=False)
    assert decode(b"E") == StreamStop()
    commit = b"c" + u32(XID) + u8(0) + u64(0x50) + u64(0x58) + i64(WHEN_MICROS)
    assert decode(commit) == StreamCommit(XID, 0, 0x50, 0x58, WHEN)
    abort = b"A" + u32(XID) + u32(XID + 1)
    assert decode(abort) == StreamAbort(XID, XID + 1)
    parallel = abort + u64(0x60) + i64(WHEN_MICROS)
    assert decode(parallel, parallel_abort=True) == StreamAbort(XID, XID + 1, 0x60, WHEN)
    with pytest.raises(DecodeError, match="truncated"):
        decode(abort, parallel_abort=True)  # protocol 4 parallel: the LSN and time must follow


@pytest.mark.parametrize("kind", list("bPKrp"))
def test_two_phase_messages_are_reported_not_decoded(kind: str) -> None:
    assert decode(kind.encode() + b"\x00" * 30) == UnsupportedMessage(kind)


# --- row changes and column kinds -------------------------------------------------------------


@pytest.mark.parametrize("xid", [None, XID])
def test_insert_with_text_null_and_empty_values(xid: int | None) -> None:
    values: list[Value] = ["42", None, "", "a\tb\nc\\d", "EUR"]
    data = insert(list(values), xid)
    assert decode(data, in_stream=xid is not None) == Insert(xid, REL, tuple(values), len(data))


@pytest.mark.parametrize("xid", [None, XID])
def test_update_without_old_with_key_and_with_full_old_row(xid: int | None) -> None:
    in_stream = xid is not None
    new: list[Value] = ["1", "after", UNCHANGED_TOAST]
    plain = update(new, xid=xid)
    assert decode(plain, in_stream=in_stream) == Update(
        xid, REL, None, None, tuple(new), len(plain)
    )
    key: list[Value] = ["0", None, None]  # the old key: other columns are NULL
    keyed = update(new, key, b"K", xid)
    assert decode(keyed, in_stream=in_stream) == Update(
        xid, REL, tuple(key), "K", tuple(new), len(keyed)
    )
    old: list[Value] = ["1", "before", "ünïcode"]
    full = update(new, old, b"O", xid)
    assert decode(full, in_stream=in_stream) == Update(
        xid, REL, tuple(old), "O", tuple(new), len(full)
    )


@pytest.mark.parametrize("xid", [None, XID])
def test_delete_by_key_and_by_full_old_row(xid: int | None) -> None:
    in_stream = xid is not None
    key: list[Value] = ["7", None]
    by_key = delete(key, b"K", xid)
    assert decode(by_key, in_stream=in_stream) == Delete(xid, REL, tuple(key), "K", len(by_key))
    row: list[Value] = ["7", "x" * 300]
    by_row = delete(row, b"O", xid)
    assert decode(by_row, in_stream=in_stream) == Delete(xid, REL, tuple(row), "O", len(by_row))


def test_unchanged_toast_is_the_marker_object_itself() -> None:
    message = decode(update(["1", UNCHANGED_TOAST]))
    assert isinstance(message, Update)
    assert message.new[1] is UNCHANGED_TOAST  # callers test with `is`


def test_values_that_are_not_ascii_and_long_values() -> None:
    # Multi-byte UTF-8 and lengths >= 128 (their length bytes are not ASCII either)
    values: list[Value] = ["Zoë", "日本語のテキスト", "x" * 200, "😀" * 70, None, "plain"]
    message = decode(insert(list(values)))
    assert isinstance(message, Insert)
    assert message.new == tuple(values)
    assert all(type(v) is str for v in message.new if v is not None)


def test_binary_column_values_are_refused_clearly() -> None:
    with pytest.raises(DecodeError, match="binary"):
        decode(insert(["1", b"\x00\x00\x00\x2a"]))


def test_matches_a_plain_reading_on_random_tuples() -> None:
    rng = random.Random(20261127)
    alphabet = "abcXYZ019 \t\n\\,.é漢😀\x7f"
    for _ in range(2000):
        values: list[Value] = []
        for _ in range(rng.randint(0, 12)):
            roll = rng.random()
            if roll < 0.15:
                values.append(None)
            elif roll < 0.25:
                values.append(UNCHANGED_TOAST)
            else:
                size = rng.choice([0, 1, 5, 40, 127, 128, 300])
                values.append("".join(rng.choice(alphabet) for _ in range(size)))
        xid = rng.choice([None, rng.getrandbits(32)])
        data = update(values, values, b"O", xid)
        message = decode(data, in_stream=xid is not None)
        again = decode(data, in_stream=xid is not None)  # now through the learned shape
        assert again == message
        assert isinstance(message, Update)
        header = 10 if xid is not None else 6
        expected_old, after = reference_tuple(data, header)
        expected_new, end = reference_tuple(data, after + 1)
        assert end == len(data)
        assert message.old == expected_old == tuple(values)
        assert message.new == expected_new


def test_a_learned_shape_is_only_used_for_the_same_layout() -> None:
    first = decode(insert(["12", "ab", "xyz"]))
    # Same relation, same message size, other column lengths: the kinds and lengths differ
    second = decode(insert(["1", "abc", "xyz"]))
    # Same layout, but a value that is not ASCII (two bytes, like "ab")
    third = decode(insert(["12", "é", "xyz"]))
    # Same size, a NULL where a value was
    fourth = decode(insert(["12", None, "abc", "z"]))
    assert [m.new for m in (first, second, third, fourth) if isinstance(m, Insert)] == [
        ("12", "ab", "xyz"),
        ("1", "abc", "xyz"),
        ("12", "é", "xyz"),
        ("12", None, "abc", "z"),
    ]


def test_the_shape_cache_stays_bounded() -> None:
    for n in range(pgoutput.SHAPE_CACHE_SIZE + 10):
        value = "v" * (n % 500)
        data = head(b"I", None) + u32(REL + n // 500) + b"N" + tuple_data(["1", value])
        assert decode(data) == Insert(None, REL + n // 500, ("1", value), len(data))
    assert 0 < len(pgoutput._SHAPES) <= pgoutput.SHAPE_CACHE_SIZE


# --- damaged messages -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        insert(["1", None, "two", UNCHANGED_TOAST]),
        update(["1", "new"], ["0", None], b"K"),
        delete(["1", "x" * 200], b"O"),
        insert(["1", "ü"], XID),
    ],
    ids=["insert", "update", "delete", "streamed-insert"],
)
def test_every_truncation_is_a_decode_error(data: bytes) -> None:
    in_stream = data.startswith(b"I" + u32(XID))
    decode(data, in_stream=in_stream)  # whole: fine
    for cut in range(1, len(data)):
        with pytest.raises(DecodeError):
            decode(data[:cut], in_stream=in_stream)


def test_corrupt_lengths_kinds_and_text_are_decode_errors() -> None:
    huge = b"I" + u32(REL) + b"N" + i16(1) + b"t" + b"\xff\xff\xff\xff" + b"abc"
    with pytest.raises(DecodeError, match="truncated"):
        decode(huge)  # a negative length read as signed would step backwards
    with pytest.raises(DecodeError, match="column kind"):
        decode(b"I" + u32(REL) + b"N" + i16(1) + b"q")
    bad_utf8 = b"I" + u32(REL) + b"N" + i16(1) + b"t" + i32(2) + b"\xc3\x28"
    with pytest.raises(DecodeError, match="UTF-8"):
        decode(bad_utf8)
    with pytest.raises(DecodeError, match="new tuple"):
        decode(b"U" + u32(REL) + b"X" + tuple_data(["1"]))
    with pytest.raises(DecodeError, match="new tuple"):
        decode(b"U" + u32(REL) + b"K" + tuple_data(["1"]) + b"K" + tuple_data(["1"]))
    with pytest.raises(DecodeError, match="old key"):
        decode(b"D" + u32(REL) + b"N" + tuple_data(["1"]))


def test_lsn_and_timestamp_helpers() -> None:
    assert pgoutput.str_to_lsn(pgoutput.lsn_to_str(0xFFFFFFFF_00000001)) == 0xFFFFFFFF_00000001
    assert pgoutput.pg_timestamp(WHEN_MICROS) == WHEN
