"""The registry of replicated tables: routing a change to its replica table, without a
database."""

from __future__ import annotations

import pytest

from zetl.errors import DataError
from zetl_replicator.apply.registry import TableRegistry
from zetl_replicator.source import pgoutput
from zetl_replicator.source.tables import ColumnInfo, TableInfo

T = TableInfo("public", "t", (ColumnInfo("id", "integer", "int4", True),), ("id",))
RELATION = pgoutput.Relation(None, 7, "public", "t", "d", (pgoutput.Column("id", 23, -1, True),))


def registry() -> TableRegistry:
    tables = TableRegistry()
    tables.start([T], 100, history=False)
    tables.remember(RELATION)
    return tables


def test_changes_route_to_their_table_from_its_copy_on() -> None:
    tables = registry()
    assert tables.route(7, 99) is None  # committed before the copy: in it already
    tables.new_transaction()
    assert tables.route(7, 100) == T
    assert not tables.copies_newer_than(100)
    assert tables.copies_newer_than(99)


def test_a_paused_table_takes_no_changes_until_copied_again() -> None:
    tables = registry()
    assert tables.route(7, 200) == T
    tables.pause("public.t")
    assert tables.route(7, 200) is None  # the pause reroutes at once
    tables.copied(T, 300, history=True)
    assert tables.route(7, 200) is None
    tables.new_transaction()  # a route holds within its transaction
    assert tables.route(7, 300) == T
    assert "public.t" in tables.history


def test_a_dropped_or_stopped_table_takes_no_changes() -> None:
    tables = registry()
    tables.stop("public.t")
    assert tables.route(7, 200) is None
    tables = registry()
    tables.drop("public.t")
    assert tables.route(7, 200) is None and tables.sync_lsn == {}


def test_a_change_before_its_relation_is_an_error() -> None:
    with pytest.raises(DataError, match="before its Relation message"):
        registry().route(8, 200)


def test_relations_are_restored_as_they_were() -> None:
    tables = registry()
    before = tables.relations_snapshot()
    tables.remember(pgoutput.Relation(None, 8, "public", "u", "d", ()))
    tables.restore_relations(before)
    assert set(tables.relations) == {7}
    assert tables.target_table("public.t", 200) == T
    assert tables.target_table("public.t", 50) is None
