"""A decoder for pgoutput, Postgres' logical replication protocol (versions 1 to 4).

Each XLogData payload the server streams is one message; ``decode`` turns it into one of the
dataclasses below. The layouts follow "Logical Replication Message Formats" in the Postgres
documentation. Version differences:

- v2 adds streamed in-progress transactions: Stream Start/Stop/Commit/Abort, and a transaction
  id at the front of Relation, Type, Insert, Update, Delete, Truncate and Message while inside a
  stream block (``in_stream``).
- v3 adds two-phase commit messages, sent only when the ``two_phase`` option is on; this
  replicator never turns it on, so they are reported as ``UnsupportedMessage``.
- v4 adds, with ``streaming 'parallel'`` only, the abort LSN and time in Stream Abort
  (``parallel_abort``).

Column values stay in Postgres' text output form (the replicator never asks for binary), which
is what COPY and SQL parameters want on the warehouse side.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from operator import itemgetter

PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)

# A column value: text, None for SQL NULL, or UNCHANGED for an unchanged TOASTed value (the
# server does not resend large values an UPDATE left alone).
UNCHANGED_TOAST = "\x00unchanged-toast\x00"
Value = str | None


class DecodeError(ValueError):
    """The bytes are not a pgoutput message this decoder understands."""


def lsn_to_str(lsn: int) -> str:
    return f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"


def str_to_lsn(text: str) -> int:
    high, low = text.split("/")
    return (int(high, 16) << 32) | int(low, 16)


def pg_timestamp(micros: int) -> datetime:
    return PG_EPOCH + timedelta(microseconds=micros)


@dataclass(frozen=True, slots=True)
class Begin:
    final_lsn: int  # the LSN of the transaction's commit record
    commit_time: datetime
    xid: int


@dataclass(frozen=True, slots=True)
class Commit:
    flags: int
    commit_lsn: int
    end_lsn: int  # the position after the commit record: what to confirm once applied
    commit_time: datetime


@dataclass(frozen=True, slots=True)
class Origin:
    commit_lsn: int
    name: str


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    type_oid: int
    type_modifier: int
    is_key: bool


@dataclass(frozen=True, slots=True)
class Relation:
    xid: int | None
    relation_id: int
    namespace: str
    name: str
    replica_identity: str  # d default, n nothing, f full, i index
    columns: tuple[Column, ...]


@dataclass(frozen=True, slots=True)
class TypeMessage:
    xid: int | None
    type_oid: int
    namespace: str
    name: str


@dataclass(slots=True)  # not frozen: cheaper to build, one per row
class Insert:
    xid: int | None
    relation_id: int
    new: tuple[Value, ...]
    size: int = 0  # bytes of the message: what holding it costs, roughly


@dataclass(slots=True)  # not frozen: cheaper to build, one per row
class Update:
    xid: int | None
    relation_id: int
    # The old key ('K', when the key changed) or the whole old row ('O', replica identity full)
    old: tuple[Value, ...] | None
    old_kind: str | None
    new: tuple[Value, ...]
    size: int = 0


@dataclass(slots=True)  # not frozen: cheaper to build, one per row
class Delete:
    xid: int | None
    relation_id: int
    old: tuple[Value, ...]
    old_kind: str
    size: int = 0


@dataclass(frozen=True, slots=True)
class Truncate:
    xid: int | None
    cascade: bool
    restart_identity: bool
    relation_ids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class LogicalMessage:
    xid: int | None
    transactional: bool
    lsn: int
    prefix: str
    content: bytes


@dataclass(frozen=True, slots=True)
class StreamStart:
    xid: int
    first_segment: bool


@dataclass(frozen=True, slots=True)
class StreamStop:
    pass


@dataclass(frozen=True, slots=True)
class StreamCommit:
    xid: int
    flags: int
    commit_lsn: int
    end_lsn: int
    commit_time: datetime


@dataclass(frozen=True, slots=True)
class StreamAbort:
    xid: int
    subxid: int
    abort_lsn: int | None = None
    abort_time: datetime | None = None


@dataclass(frozen=True, slots=True)
class UnsupportedMessage:
    kind: str


Message = (
    Begin
    | Commit
    | Origin
    | Relation
    | TypeMessage
    | Insert
    | Update
    | Delete
    | Truncate
    | LogicalMessage
    | StreamStart
    | StreamStop
    | StreamCommit
    | StreamAbort
    | UnsupportedMessage
)

_I8 = struct.Struct(">b")
_U8 = struct.Struct(">B")
_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_I64 = struct.Struct(">q")


class _Reader:
    """A cursor over one message's bytes."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def _take(self, fmt: struct.Struct) -> int:
        try:
            (value,) = fmt.unpack_from(self.data, self.pos)
        except struct.error as exc:
            raise DecodeError(f"message truncated at byte {self.pos}") from exc
        self.pos += fmt.size
        return int(value)

    def int8(self) -> int:
        return self._take(_I8)

    def byte(self) -> int:
        return self._take(_U8)

    def int16(self) -> int:
        return self._take(_I16)

    def int32(self) -> int:
        return self._take(_I32)

    def uint32(self) -> int:
        return self._take(_U32)

    def lsn(self) -> int:
        return self._take(_U64)

    def timestamp(self) -> datetime:
        return pg_timestamp(self._take(_I64))

    def string(self) -> str:
        end = self.data.find(b"\x00", self.pos)
        if end < 0:
            raise DecodeError(f"unterminated string at byte {self.pos}")
        text = self.data[self.pos : end].decode("utf-8")
        self.pos = end + 1
        return text

    def raw(self, length: int) -> bytes:
        if self.pos + length > len(self.data):
            raise DecodeError(f"message truncated at byte {self.pos}")
        chunk = self.data[self.pos : self.pos + length]
        self.pos += length
        return chunk

    def char(self) -> str:
        return chr(self.byte())


_KIND_TEXT, _KIND_NULL, _KIND_UNCHANGED, _KIND_BINARY = b"t"[0], b"n"[0], b"u"[0], b"b"[0]
_KIND_INSERT, _KIND_UPDATE, _KIND_DELETE = b"I"[0], b"U"[0], b"D"[0]
_NEW_TUPLE, _KEY_TUPLE, _OLD_TUPLE = b"N"[0], b"K"[0], b"O"[0]
_XID_RELATION = struct.Struct(">II")
_unpack_count = _I16.unpack_from
# Unsigned: a corrupt "negative" length becomes a huge one, which the final bounds check catches
# (a signed one would move the cursor backwards and slice nonsense without an error).
_unpack_length = _U32.unpack_from
_unpack_u32 = _U32.unpack_from
_unpack_xid_relation = _XID_RELATION.unpack_from


def _tuple_data(data: bytes, pos: int) -> tuple[tuple[Value, ...], int]:
    """Decode TupleData at ``pos``; return the values and the position after them.

    The hottest loop of the replicator (once per column of every row), so it is written flat,
    with locals only: each attribute lookup or call here costs whole seconds on a million-row
    transaction. When the TupleData is all ASCII (the usual case; the message as a whole is
    often not, for its binary ids), the message is decoded once as Latin-1, which maps byte
    offsets 1:1 to string offsets, and each value is one slice of that string; otherwise each
    value is decoded from UTF-8 on its own. Bounds are checked once, at the end: a slice past
    the end cannot fail, so one comparison covers every value.
    """
    text = data.decode("latin-1") if data[pos:].isascii() else None
    try:
        (count,) = _unpack_count(data, pos)
        pos += 2
        values: list[Value] = []
        append = values.append
        unpack_length = _unpack_length
        for _ in range(count):
            kind = data[pos]
            if kind == _KIND_TEXT:
                (length,) = unpack_length(data, pos + 1)
                pos += 5
                end = pos + length
                append(text[pos:end] if text is not None else data[pos:end].decode("utf-8"))
                pos = end
            elif kind == _KIND_NULL:
                append(None)
                pos += 1
            elif kind == _KIND_UNCHANGED:
                append(UNCHANGED_TOAST)
                pos += 1
            elif kind == _KIND_BINARY:
                raise DecodeError("binary column values are not supported (text mode only)")
            else:
                raise DecodeError(f"unknown column kind {chr(kind)!r}")
    except (struct.error, IndexError) as exc:
        raise DecodeError(f"message truncated at byte {pos}") from exc
    except UnicodeDecodeError as exc:
        raise DecodeError(f"a column value is not valid UTF-8: {exc.reason}") from exc
    if pos > len(data):
        raise DecodeError(f"message truncated at byte {len(data)}")
    return tuple(values), pos


# A row's TupleData laid out exactly like one seen before (same relation, same message size,
# same column kinds and lengths: the usual case, rows of a table look alike) is read in a few
# C calls instead of a Python loop over its columns: one struct checks every kind byte and
# length at once, one itemgetter slices every value. Only all-text tuples are kept (NULL and
# unchanged-TOAST values cannot come out of a slice). Keyed by the message size too, so that
# one lookup finds the candidate; a mismatch just reads the slow way and learns the new shape.
_Shape = tuple[
    Callable[[bytes, int], tuple[int, ...]],  # unpacks count, then kind and length per column
    tuple[int, ...],  # what it must unpack to
    Callable[[str], tuple[str, ...]],  # every value, sliced from the Latin-1 reading
    int,  # the TupleData's size in bytes
]
_SHAPES: dict[tuple[int, int, int], _Shape] = {}
SHAPE_CACHE_SIZE = 1024  # shapes kept; when full the cache starts again (bounded memory)


def _row_tuple(data: bytes, pos: int, relation_id: int) -> tuple[tuple[Value, ...], int]:
    """``_tuple_data`` for a row change of ``relation_id``, through the shape cache."""
    key = (relation_id, pos, len(data))
    shape = _SHAPES.get(key)
    # The message has the learned size, so the struct cannot run past its end.
    if shape is not None and shape[0](data, pos) == shape[1]:
        values: tuple[Value, ...] = shape[2](data.decode("latin-1"))
        if "".join(values).isascii():  # type: ignore[arg-type]  # all text: no None
            return values, pos + shape[3]
        return _tuple_data(data, pos)  # the same layout, with UTF-8 in it: nothing to learn
    values, end = _tuple_data(data, pos)
    if len(values) > 1 and None not in values and UNCHANGED_TOAST not in values:
        _learn_shape(data, pos, end, key)
    return values, end


def _learn_shape(data: bytes, pos: int, end: int, key: tuple[int, int, int]) -> None:
    """Remember the layout of the (valid, all-text) TupleData at ``pos``..``end``."""
    fmt = [">h"]
    expected = [_unpack_count(data, pos)[0]]
    slices = []
    at = pos + 2
    while at < end:
        (length,) = _unpack_length(data, at + 1)
        fmt.append(f"BI{length}x")
        expected += (_KIND_TEXT, length)
        slices.append(slice(at + 5, at + 5 + length))
        at += 5 + length
    if len(_SHAPES) >= SHAPE_CACHE_SIZE:
        _SHAPES.clear()
    _SHAPES[key] = (
        struct.Struct("".join(fmt)).unpack_from,
        tuple(expected),
        itemgetter(*slices),
        end - pos,
    )


def decode(data: bytes, *, in_stream: bool = False, parallel_abort: bool = False) -> Message:
    """Decode one pgoutput message.

    ``in_stream``: the message sits between Stream Start and Stream Stop, so data messages carry
    a transaction id. ``parallel_abort``: protocol 4 with ``streaming 'parallel'``.
    """
    if not data:
        raise DecodeError("empty message")
    first = data[0]
    # Row changes are nearly every message: decoded without the _Reader machinery.
    if first == _KIND_INSERT:
        return _insert_fast(data, in_stream)
    if first == _KIND_UPDATE:
        return _update_fast(data, in_stream)
    if first == _KIND_DELETE:
        return _delete_fast(data, in_stream)
    reader = _Reader(data)
    kind = reader.char()
    if kind == "A":
        return _stream_abort(reader, parallel_abort)
    decoder = _DECODERS.get(kind)
    if decoder is None:
        if kind in _TWO_PHASE_KINDS:
            return UnsupportedMessage(kind)
        raise DecodeError(f"unknown message type {kind!r}")
    xid = reader.uint32() if in_stream and kind in _CARRIES_XID else None
    return decoder(reader, xid)


def _row_head(data: bytes, in_stream: bool) -> tuple[int | None, int, int, int]:
    """(xid, relation id, the tuple marker byte, its position) of a row change."""
    try:
        if in_stream:
            xid, relation_id = _unpack_xid_relation(data, 1)
            return xid, relation_id, data[9], 9
        (relation_id,) = _unpack_u32(data, 1)
        return None, relation_id, data[5], 5
    except (struct.error, IndexError) as exc:
        raise DecodeError("message truncated at byte 1") from exc


def _insert_fast(data: bytes, in_stream: bool) -> Insert:
    # _row_head inlined: this runs once per inserted row
    try:
        if in_stream:
            xid, relation_id = _unpack_xid_relation(data, 1)
            pos = 9
        else:
            xid = None
            (relation_id,) = _unpack_u32(data, 1)
            pos = 5
        marker = data[pos]
    except (struct.error, IndexError) as exc:
        raise DecodeError("message truncated at byte 1") from exc
    if marker != _NEW_TUPLE:
        raise DecodeError("Insert without a new tuple")
    new, _ = _row_tuple(data, pos + 1, relation_id)
    return Insert(xid, relation_id, new, len(data))


def _update_fast(data: bytes, in_stream: bool) -> Update:
    xid, relation_id, marker, pos = _row_head(data, in_stream)
    old: tuple[Value, ...] | None = None
    old_kind: str | None = None
    if marker in (_KEY_TUPLE, _OLD_TUPLE):
        old_kind = "K" if marker == _KEY_TUPLE else "O"
        old, pos = _row_tuple(data, pos + 1, relation_id)
        if pos >= len(data):
            raise DecodeError(f"message truncated at byte {pos}")
        marker = data[pos]
    if marker != _NEW_TUPLE:
        raise DecodeError(f"Update without a new tuple (got {chr(marker)!r})")
    new, _ = _row_tuple(data, pos + 1, relation_id)
    return Update(xid, relation_id, old, old_kind, new, len(data))


def _delete_fast(data: bytes, in_stream: bool) -> Delete:
    xid, relation_id, marker, pos = _row_head(data, in_stream)
    if marker == _KEY_TUPLE:
        old_kind = "K"
    elif marker == _OLD_TUPLE:
        old_kind = "O"
    else:
        raise DecodeError(f"Delete without an old key or row (got {chr(marker)!r})")
    old, _ = _row_tuple(data, pos + 1, relation_id)
    return Delete(xid, relation_id, old, old_kind, len(data))


def _begin(r: _Reader, _xid: int | None) -> Begin:
    return Begin(final_lsn=r.lsn(), commit_time=r.timestamp(), xid=r.uint32())


def _commit(r: _Reader, _xid: int | None) -> Commit:
    return Commit(flags=r.int8(), commit_lsn=r.lsn(), end_lsn=r.lsn(), commit_time=r.timestamp())


def _origin(r: _Reader, _xid: int | None) -> Origin:
    return Origin(commit_lsn=r.lsn(), name=r.string())


def _relation(r: _Reader, xid: int | None) -> Relation:
    relation_id, namespace, name = r.uint32(), r.string(), r.string()
    identity = r.char()
    columns = []
    for _ in range(r.int16()):
        flags = r.int8()
        column, type_oid, modifier = r.string(), r.uint32(), r.int32()
        columns.append(Column(column, type_oid, modifier, is_key=bool(flags & 1)))
    return Relation(xid, relation_id, namespace, name, identity, tuple(columns))


def _type(r: _Reader, xid: int | None) -> TypeMessage:
    return TypeMessage(xid, type_oid=r.uint32(), namespace=r.string(), name=r.string())


def _truncate(r: _Reader, xid: int | None) -> Truncate:
    count, options = r.int32(), r.int8()
    relation_ids = tuple(r.uint32() for _ in range(count))
    return Truncate(xid, bool(options & 1), bool(options & 2), relation_ids)


def _message(r: _Reader, xid: int | None) -> LogicalMessage:
    flags, lsn, prefix = r.int8(), r.lsn(), r.string()
    return LogicalMessage(xid, bool(flags & 1), lsn, prefix, r.raw(r.int32()))


def _stream_start(r: _Reader, _xid: int | None) -> StreamStart:
    return StreamStart(xid=r.uint32(), first_segment=r.int8() == 1)


def _stream_stop(_r: _Reader, _xid: int | None) -> StreamStop:
    return StreamStop()


def _stream_commit(r: _Reader, _xid: int | None) -> StreamCommit:
    return StreamCommit(
        xid=r.uint32(),
        flags=r.int8(),
        commit_lsn=r.lsn(),
        end_lsn=r.lsn(),
        commit_time=r.timestamp(),
    )


def _stream_abort(r: _Reader, parallel: bool) -> StreamAbort:
    xid, subxid = r.uint32(), r.uint32()
    if parallel:
        return StreamAbort(xid, subxid, abort_lsn=r.lsn(), abort_time=r.timestamp())
    return StreamAbort(xid, subxid)


_DECODERS: dict[str, Callable[[_Reader, int | None], Message]] = {
    "B": _begin,
    "C": _commit,
    "O": _origin,
    "R": _relation,
    "Y": _type,
    "T": _truncate,
    "M": _message,
    "S": _stream_start,
    "E": _stream_stop,
    "c": _stream_commit,
}
_CARRIES_XID = frozenset("RYIUDTM")
_TWO_PHASE_KINDS = frozenset("bPKrp")


def protocol_version(server_version_num: int) -> int:
    """The newest pgoutput protocol the server speaks: 4 on 16+, 3 on 15, 2 on 14, else 1."""
    if server_version_num >= 160000:
        return 4
    if server_version_num >= 150000:
        return 3
    if server_version_num >= 140000:
        return 2
    return 1
