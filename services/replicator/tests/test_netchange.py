"""Net-change folding without a database: what a table's buffered changes reduce to."""

from __future__ import annotations

from services.replicator.tests.support import T
from zetl_replicator.apply.netchange import DELETE, INSERT, UPDATE, UPSERT, Key, NetChanges, Row
from zetl_replicator.source.pgoutput import UNCHANGED_TOAST
from zetl_replicator.source.tables import TableInfo

U = UNCHANGED_TOAST


class Recorder:
    """A sink that records what folding hands it, in order."""

    def __init__(self) -> None:
        self.events: list[tuple[str, object]] = []

    def emit(self, changes: NetChanges) -> None:
        self.events.append(("flush", dict(changes.ops)))

    def update_key_in_order(self, table: TableInfo, old_key: Key, row: Row) -> None:
        self.events.append(("update key", (old_key, row)))


def fold() -> tuple[NetChanges, Recorder]:
    sink = Recorder()
    return NetChanges(T, sink), sink


def test_insert_then_updates_stay_one_insert_with_the_last_values() -> None:
    changes, sink = fold()
    changes.insert(("1", "a", "x"))
    changes.update(None, ("1", "b", U))
    changes.update(None, ("1", "c", U))
    assert changes.ops == {("1",): (INSERT, ("1", "c", "x"))}
    assert sink.events == []


def test_insert_then_delete_is_nothing() -> None:
    changes, _ = fold()
    changes.insert(("1", "a", "x"))
    changes.delete(("1", None, None))
    assert changes.ops == {}


def test_insert_delete_insert_is_an_upsert_of_the_last_row() -> None:
    changes, sink = fold()
    changes.delete(("1", None, None))  # a row the replica has
    changes.insert(("1", "a", "x"))
    assert changes.ops == {("1",): (UPSERT, ("1", "a", "x"))}
    changes, sink = fold()
    changes.insert(("1", "a", "x"))
    changes.delete(("1", None, None))
    changes.insert(("1", "b", "y"))
    assert changes.grouped().inserts == [("1", "b", "y")]  # never was in the replica
    assert changes.grouped().upserts == []
    assert sink.events == []
    changes, sink = fold()
    changes.insert(("1", "a", "x"))
    changes.clear()  # flushed: the replica has the row now
    changes.delete(("1", None, None))
    changes.insert(("1", "b", "y"))
    assert changes.ops == {("1",): (UPSERT, ("1", "b", "y"))}


def test_inserts_alone_stay_a_list_in_arrival_order_until_another_change_comes() -> None:
    changes, sink = fold()
    for n in ("1", "2", "3"):
        changes.insert((n, "a", "x"))
    assert changes.ops == {}
    assert changes.grouped().inserts == [("1", "a", "x"), ("2", "a", "x"), ("3", "a", "x")]
    changes.update(None, ("2", "b", U))  # needs the keys: the list is folded first
    assert changes.appended == []
    assert changes.ops == {
        ("1",): (INSERT, ("1", "a", "x")),
        ("2",): (INSERT, ("2", "b", "x")),
        ("3",): (INSERT, ("3", "a", "x")),
    }
    changes.insert(("4", "a", "x"))  # keyed from now on
    assert changes.appended == [] and ("4",) in changes.ops
    assert sink.events == []


def test_an_insert_of_a_buffered_key_applies_what_came_before_first() -> None:
    changes, sink = fold()
    changes.insert(("1", "a", "x"))
    changes.insert(("1", "b", "y"))  # a deferrable key: the source held both for a moment
    changes.delete(("2", None, None))  # keys the inserts: the first goes before the second
    assert sink.events == [("flush", {("1",): (INSERT, ("1", "a", "x"))})]
    assert changes.ops == {("1",): (INSERT, ("1", "b", "y")), ("2",): (DELETE, ("2",))}


def test_update_of_a_deleted_row_is_applied_in_order() -> None:
    changes, sink = fold()
    changes.delete(("1", None, None))
    changes.update(None, ("1", "a", "x"))
    assert sink.events == [("flush", {("1",): (DELETE, ("1",))})]
    assert changes.ops == {("1",): (UPDATE, ("1", "a", "x"))}


def test_unchanged_toast_values_are_kept_from_the_buffered_change() -> None:
    changes, _ = fold()
    changes.update(None, ("1", "a", "big"))
    changes.update(None, ("1", "b", U))
    assert changes.ops == {("1",): (UPDATE, ("1", "b", "big"))}
    changes, _ = fold()
    changes.update(None, ("1", "a", U))  # only the replica knows big: left alone
    grouped = changes.grouped()
    assert grouped.updates == {(1,): [("1", "a", U)]}


def test_an_unchanged_toasted_key_is_the_old_key() -> None:
    changes, _ = fold()
    changes.update(("1", None, None), (U, "a", "x"))
    assert changes.ops == {("1",): (UPDATE, ("1", "a", "x"))}


def test_a_primary_key_change_deletes_the_old_key_and_inserts_the_new() -> None:
    changes, sink = fold()
    changes.update(("1", None, None), ("2", "a", "x"))
    assert changes.ops == {("1",): (DELETE, ("1",)), ("2",): (INSERT, ("2", "a", "x"))}
    grouped = changes.grouped()
    assert grouped.deletes == [("1",)]
    assert grouped.inserts == [("2", "a", "x")]
    assert sink.events == []


def test_a_key_change_of_a_buffered_insert_moves_it() -> None:
    changes, _ = fold()
    changes.insert(("1", "a", "x"))
    changes.update(("1", None, None), ("2", "b", U))
    assert changes.ops == {("2",): (INSERT, ("2", "b", "x"))}


def test_a_key_change_onto_a_deleted_key_is_an_upsert() -> None:
    changes, _ = fold()
    changes.delete(("2", None, None))
    changes.update(("1", None, None), ("2", "a", "x"))
    assert changes.ops == {("2",): (UPSERT, ("2", "a", "x")), ("1",): (DELETE, ("1",))}


def test_a_key_change_with_values_only_the_replica_has_is_a_real_update_in_order() -> None:
    changes, sink = fold()
    changes.insert(("5", "e", "e"))
    changes.update(("1", None, None), ("2", "a", U))
    assert sink.events == [
        ("flush", {("5",): (INSERT, ("5", "e", "e"))}),
        ("update key", (("1",), ("2", "a", U))),
    ]
    assert changes.ops == {}


def test_grouped_orders_kinds_and_drops_updates_that_change_nothing() -> None:
    changes, _ = fold()
    changes.insert(("1", "a", "x"))
    changes.delete(("2", None, None))
    changes.update(None, ("3", "c", U))
    changes.update(None, ("4", U, U))  # nothing but the key: the row is as it was
    changes.delete(("5", None, None))
    changes.insert(("5", "e", "e"))
    grouped = changes.grouped()
    assert grouped.inserts == [("1", "a", "x")]
    assert grouped.deletes == [("2",)]
    assert grouped.updates == {(1,): [("3", "c", U)]}
    assert grouped.upserts == [("5", "e", "e")]


def test_counted_changes_and_clear() -> None:
    changes, _ = fold()
    changes.insert(("1", "a", "x"))
    changes.counted(10)
    changes.counted(5)
    assert (changes.changes, changes.size) == (2, 15)
    changes.clear()
    assert (changes.ops, changes.appended, changes.changes, changes.size) == ({}, [], 0, 0)
