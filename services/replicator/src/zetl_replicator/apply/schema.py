"""Schema changes: turn a Relation message that differs from the replica into DDL, or a reason.

Zero-ETL applies added and dropped columns and type widenings; anything else (a rename, a
narrowing, a new column of an unsupported type) needs the table re-copied: ResyncRequired.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass

from psycopg2 import sql

from zetl_replicator.destination.ddl import column_sql
from zetl_replicator.destination.statements import table_identifier
from zetl_replicator.source.column_changes import Backfill
from zetl_replicator.source.eligibility import type_problem
from zetl_replicator.source.pgoutput import Relation
from zetl_replicator.source.tables import ColumnInfo, TableInfo

TypeLookup = Callable[[int, int], tuple[str, str]]  # (oid, modifier) -> (type_sql, typname)
BackfillLookup = Callable[[str], Backfill]  # added column name -> what existing rows hold
RenameLookup = Callable[[str], bool]  # new column name -> whether it can be a rename in place

_INTEGERS = {"smallint": 1, "integer": 2, "bigint": 3}
_VARCHAR = re.compile(r"^character varying(?:\((\d+)\))?$")
_NUMERIC = re.compile(r"^numeric(?:\((\d+),(\d+)\))?$")


@dataclass(frozen=True)
class SchemaChange:
    table: TableInfo  # the table as it is once the statements ran
    statements: tuple[sql.Composed, ...]


def is_widening(old: str, new: str) -> bool:
    """True when every value of type ``old`` fits ``new`` unchanged (format_type spellings)."""
    if old == new:
        return True
    if old in _INTEGERS and new in _INTEGERS:
        return _INTEGERS[new] > _INTEGERS[old]
    if old == "real" and new == "double precision":
        return True
    old_varchar, new_varchar = _VARCHAR.match(old), _VARCHAR.match(new)
    if old_varchar and (new == "text" or new_varchar):
        if new == "text" or new_varchar is None or new_varchar.group(1) is None:
            return True
        return old_varchar.group(1) is not None and int(new_varchar.group(1)) >= int(
            old_varchar.group(1)
        )
    old_num, new_num = _NUMERIC.match(old), _NUMERIC.match(new)
    if old_num and new_num:
        if new_num.group(1) is None:
            return True
        if old_num.group(1) is None:
            return False
        (p1, s1), (p2, s2) = map(int, old_num.groups()), map(int, new_num.groups())
        return s2 >= s1 and p2 - s2 >= p1 - s1
    return old in _INTEGERS and new_num is not None and new_num.group(1) is None


def plan(
    current: TableInfo,
    relation: Relation,
    types: TypeLookup,
    backfill: BackfillLookup = lambda _name: Backfill(known=True),
    renamed: RenameLookup = lambda _name: False,
) -> SchemaChange | str | None:
    """None when ``relation`` matches ``current``; else the change, or why it cannot be applied.

    An added column gets, on the rows already in the replica, the value the source's rows
    have in it (``backfill``): ``ADD COLUMN ... DEFAULT v`` changes no row in the WAL.
    """
    wanted: list[ColumnInfo] = []
    for col in relation.columns:
        existing = current.column(col.name)
        type_sql, type_name = types(col.type_oid, col.type_modifier)
        wanted.append(  # compared with the replica: as AWS maps the type
            ColumnInfo(
                col.name, type_sql, type_name, existing.not_null if existing else False
            ).target()
        )
    wanted_names = [c.name for c in wanted]
    if wanted_names == [c.name for c in current.columns] and all(
        w.type_sql == current.columns[i].type_sql for i, w in enumerate(wanted)
    ):
        return None
    added = [c for c in wanted if current.column(c.name) is None]
    dropped = [c for c in current.columns if c.name not in wanted_names]
    ident = table_identifier(current.schema, current.name)
    renames = _renames(current, wanted, added, dropped, renamed)
    if renames:
        names = {old: new for old, new in renames}
        return SchemaChange(
            dataclasses.replace(
                current,
                columns=tuple(
                    dataclasses.replace(c, name=names.get(c.name, c.name)) for c in current.columns
                ),
                primary_key=tuple(names.get(k, k) for k in current.primary_key),
            ),
            tuple(
                sql.SQL("ALTER TABLE {} RENAME COLUMN {} TO {}").format(
                    ident, sql.Identifier(old), sql.Identifier(new)
                )
                for old, new in renames
            ),
        )
    if added and dropped:
        return (
            f"columns replaced or renamed (dropped {', '.join(c.name for c in dropped)};"
            f" added {', '.join(c.name for c in added)})"
        )
    if any(k in {c.name for c in dropped} for k in current.primary_key):
        return "a primary-key column was dropped"
    unsupported = [
        f"{c.name} ({c.type_sql}: {problem})"
        for c in added
        if (problem := type_problem(c.type_sql, c.type_name))
    ]
    if unsupported:
        return "added column with an unsupported data type: " + ", ".join(unsupported)
    statements: list[sql.Composed] = []
    for c in added:
        fill = backfill(c.name)
        if not fill.known:
            return (
                f"column {c.name} was added with a value on existing rows that only a re-copy"
                " can read (a volatile default, or a default set after the column was added)"
            )
        column = sql.SQL("ALTER TABLE {} ADD COLUMN {}").format(ident, column_sql(c))
        if fill.value is None:
            statements.append(column)
            continue
        # The default fills the rows already there (as on the source), then goes: later rows
        # carry their own value in their change messages.
        statements.append(
            sql.SQL("{} DEFAULT {}::{}").format(
                column, sql.Literal(fill.value), sql.SQL(c.type_sql)
            )
        )
        statements.append(
            sql.SQL("ALTER TABLE {} ALTER COLUMN {} DROP DEFAULT").format(
                ident, sql.Identifier(c.name)
            )
        )
    statements += [
        sql.SQL("ALTER TABLE {} DROP COLUMN {}").format(ident, sql.Identifier(c.name))
        for c in dropped
    ]
    for w in wanted:
        old = current.column(w.name)
        if old is None or old.type_sql == w.type_sql:
            continue
        if not is_widening(old.type_sql, w.type_sql):
            return f"column {w.name} changed type {old.type_sql} → {w.type_sql} (not a widening)"
        statements.append(
            sql.SQL("ALTER TABLE {} ALTER COLUMN {} TYPE {}").format(
                ident, sql.Identifier(w.name), sql.SQL(w.type_sql)
            )
        )
    return SchemaChange(dataclasses.replace(current, columns=tuple(wanted)), tuple(statements))


def _renames(
    current: TableInfo,
    wanted: list[ColumnInfo],
    added: list[ColumnInfo],
    dropped: list[ColumnInfo],
    renamed: RenameLookup,
) -> list[tuple[str, str]]:
    """The columns renamed in place, as (old, new) pairs, when that is the whole change: every
    column where it was, of the same type, the new names renames on the source too."""
    if not added or len(added) != len(dropped) or len(wanted) != len(current.columns):
        return []
    pairs = []
    for old, new in zip(current.columns, wanted, strict=True):
        if old.type_sql != new.type_sql:
            return []
        if old.name != new.name:
            if old not in dropped or new not in added or not renamed(new.name):
                return []
            pairs.append((old.name, new.name))
    return pairs
