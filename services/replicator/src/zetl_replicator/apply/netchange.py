"""Net-change folding: a table's row changes since the last flush, reduced to one change per
primary key, without a database.

An insert then updates of the same row become one insert, an insert then a delete becomes
nothing, a delete then an insert an upsert; ``UNCHANGED_TOAST`` values of an update are filled
from the change buffered before it. Changes to different keys commute (the replica tables have
no constraint but the primary key, no triggers and no foreign keys), so the destination may
apply the result grouped by kind (``NetChanges.grouped``). Where folding cannot keep the
order of two changes (a key inserted again while buffered, say), it asks its ``Sink`` to apply
what is buffered first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from zetl_replicator.source.pgoutput import UNCHANGED_TOAST, Value
from zetl_replicator.source.tables import TableInfo

Row = tuple[Value, ...]
Key = tuple[Value, ...]

# The net change of one key since the last flush.
INSERT = 0  # the row did not exist before: a plain insert (COPY)
UPSERT = 1  # the row was deleted, then inserted again: insert or overwrite every column
UPDATE = 2  # the row exists; set the columns that are not UNCHANGED_TOAST
DELETE = 3


def merge(base: Row, new: Row) -> Row:
    """``new`` with its UNCHANGED_TOAST values taken from ``base``."""
    return tuple(b if n is UNCHANGED_TOAST else n for b, n in zip(base, new, strict=True))


def key_positions(table: TableInfo) -> tuple[int, ...]:
    names = [c.name for c in table.columns]
    return tuple(names.index(k) for k in table.primary_key)


class Sink(Protocol):
    """Where folded changes go when their order must be kept."""

    def emit(self, changes: NetChanges) -> None:
        """Apply ``changes`` as they are now (``changes.clear()`` follows)."""
        ...

    def update_key_in_order(self, table: TableInfo, old_key: Key, row: Row) -> None:
        """Apply, at once and after everything before, a key change to ``row`` whose
        UNCHANGED_TOAST values only the destination knows."""
        ...


@dataclass
class Grouped:
    """Net changes by kind: applied in this order, each group set-based."""

    deletes: list[Row] = field(default_factory=list)  # the keys
    updates: dict[tuple[int, ...], list[Row]] = field(default_factory=dict)  # changed -> rows
    upserts: list[Row] = field(default_factory=list)
    inserts: list[Row] = field(default_factory=list)


@dataclass
class NetChanges:
    """One table's net change per primary key since the last flush, in arrival order."""

    table: TableInfo
    sink: Sink
    key_positions: tuple[int, ...] = ()
    ops: dict[Key, tuple[int, Row]] = field(default_factory=dict)
    # Inserts while nothing else came, not keyed yet (a bulk load's rows stay a plain list):
    # the source's primary key makes them distinct. Keyed into ``ops`` when another change
    # comes; never both non-empty.
    appended: list[Row] = field(default_factory=list)
    changes: int = 0  # source changes folded in (for rows_applied)
    size: int = 0  # about the bytes they hold

    def __post_init__(self) -> None:
        if not self.key_positions:
            self.key_positions = key_positions(self.table)

    def clear(self) -> None:
        self.ops.clear()
        self.appended = []  # a new list: ``grouped`` handed the old one out
        self.changes = self.size = 0

    def _flush(self) -> None:
        self.sink.emit(self)
        self.clear()

    def key(self, row: Row) -> Key:
        return tuple([row[i] for i in self.key_positions])

    def insert(self, row: Row) -> None:
        if not self.ops:
            self.appended.append(row)
        else:
            self._insert_keyed(row)

    def _keyed(self) -> None:
        """Bring the appended inserts into ``ops``: another kind of change needs the keys."""
        rows, self.appended = self.appended, []
        for row in rows:
            self._insert_keyed(row)

    def _insert_keyed(self, row: Row) -> None:
        key = self.key(row)
        previous = self.ops.get(key)
        if previous is None:
            self.ops[key] = (INSERT, row)
        elif previous[0] == DELETE:
            self.ops[key] = (UPSERT, row)
        else:  # a key that is already there: apply what came before, then this insert
            self._flush()
            self.ops[key] = (INSERT, row)

    def update(self, old: Row | None, row: Row) -> None:
        """``old``: the old key ('K', the key changed) or old row ('O', identity full), or None."""
        if self.appended:
            self._keyed()
        positions = self.key_positions
        new_key = self.key(row)
        old_key = new_key if old is None else self.key(old)
        if UNCHANGED_TOAST in new_key:  # a TOASTed key column, unchanged: the key is old_key
            fixed = list(row)
            for position, value in zip(positions, old_key, strict=True):
                fixed[position] = value
            row, new_key = tuple(fixed), old_key
        if old_key == new_key:
            self._update_in_place(old_key, row)
        else:
            self._update_key(old_key, new_key, row)

    def delete(self, old: Row) -> None:
        if self.appended:
            self._keyed()
        key = self.key(old)
        previous = self.ops.get(key)
        if previous is not None and previous[0] == INSERT:
            del self.ops[key]  # inserted since the last flush: as if it never was
        else:
            self.ops[key] = (DELETE, key)

    def counted(self, size: int) -> None:
        """One source change of about ``size`` bytes was folded in."""
        self.changes += 1
        self.size += size

    def _update_in_place(self, key: Key, row: Row) -> None:
        previous = self.ops.get(key)
        if previous is None:
            self.ops[key] = (UPDATE, row)
        elif previous[0] == DELETE:  # an update of a deleted row: apply in order
            self._flush()
            self.ops[key] = (UPDATE, row)
        else:
            self.ops[key] = (previous[0], merge(previous[1], row))

    def _update_key(self, old_key: Key, new_key: Key, row: Row) -> None:
        """A primary-key change: the old key goes away, the new one gets the whole row."""
        previous = self.ops.get(old_key)
        if UNCHANGED_TOAST in row:
            if previous is None or previous[0] not in (INSERT, UPSERT):
                # Values only the replica has move to the new key: a real UPDATE, in order.
                self._flush()
                self.sink.update_key_in_order(self.table, old_key, row)
                return
            row = merge(previous[1], row)
        if previous is not None and previous[0] == INSERT:
            del self.ops[old_key]
        else:
            self.ops[old_key] = (DELETE, old_key)
        target = self.ops.get(new_key)
        if target is None:
            self.ops[new_key] = (INSERT, row)
        elif target[0] == DELETE:
            self.ops[new_key] = (UPSERT, row)
        else:
            self._flush()
            self.ops[new_key] = (INSERT, row)

    def grouped(self) -> Grouped:
        """The net changes by kind; an update's ``changed`` positions leave out the key and
        UNCHANGED_TOAST columns (an update changing nothing else is dropped)."""
        grouped = Grouped(inserts=self.appended)
        keys = set(self.key_positions)
        for kind, row in self.ops.values():
            if kind == INSERT:
                grouped.inserts.append(row)
            elif kind == UPDATE:
                changed = tuple(
                    i for i, v in enumerate(row) if v is not UNCHANGED_TOAST and i not in keys
                )
                if changed:  # else nothing but the key was "set": the row is as it was
                    grouped.updates.setdefault(changed, []).append(row)
            elif kind == UPSERT:
                grouped.upserts.append(row)
            else:
                grouped.deletes.append(row)
        return grouped
