"""The SQL the Postgres destination sends for a batch's changes, set-based, as text.

A statement over many rows is made of three parts: a head, one row of ``VALUES`` with a
placeholder per value, and a tail; the destination renders them once per table shape and joins
pages of rows in between (``literals``). Which statement a part belongs to is a ``Statement``:
the plain ones of net changes, and HISTORY_MODE's, which add and close row versions. Nothing
here touches a connection: what comes out is tested as strings.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from enum import Enum

from psycopg2 import sql

from zetl_replicator.apply.netchange import Row
from zetl_replicator.source.pgoutput import Value
from zetl_replicator.source.tables import TableInfo


class Statement(Enum):
    """A set-based statement over rows of one table."""

    DELETE = "delete"  # VALUES rows: the key
    UPDATE = "update"  # the key, then the changed columns
    UPSERT = "upsert"  # every column
    INSERT = "insert"  # every column
    HISTORY_INSERT = "history insert"  # every column, then the change time
    HISTORY_CLOSE = "history close"  # the key, then the change time
    HISTORY_UPDATE = "history update"  # the old key, the changed columns, the change time

    @property
    def history(self) -> bool:
        """A HISTORY_MODE statement: it adds or closes row versions."""
        return self in _HISTORY


_HISTORY = frozenset({Statement.HISTORY_INSERT, Statement.HISTORY_CLOSE, Statement.HISTORY_UPDATE})


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def copy_line(row: Sequence[Value]) -> str:
    line = "\t".join(["\\N" if v is None else v for v in row])
    if "\\" in line or "\n" in line or "\r" in line or line.count("\t") != len(row) - 1:
        line = "\t".join("\\N" if v is None else v.translate(_COPY_ESCAPES) for v in row)
    return line + "\n"


def literals(row: Row) -> tuple[bytes, ...]:
    """Each value of ``row`` as an SQL literal (a standard string, UTF-8; NULL for None)."""
    return tuple(
        [b"NULL" if v is None else b"'" + v.encode().replace(b"'", b"''") + b"'" for v in row]
    )


def column_list(table: TableInfo) -> sql.Composed:
    return sql.SQL(", ").join(sql.Identifier(c.name) for c in table.columns)


def placeholder(table: TableInfo, position: int) -> sql.Composed:
    type_sql = table.columns[position].type_sql
    # An explicit cast to VARCHAR(n) cuts longer values silently: cast to plain varchar, so
    # that storing into the column refuses them (TRUNCATECOLUMNS cuts them before, on purpose).
    if type_sql.startswith("character varying("):
        type_sql = "character varying"
    return sql.SQL("%s::{}").format(sql.SQL(type_sql))


def key_match(table: TableInfo) -> sql.Composed:
    """``k1 = %s::type AND ...`` over the primary key."""
    names = [c.name for c in table.columns]
    return sql.SQL(" AND ").join(
        sql.SQL("{} = {}").format(sql.Identifier(k), placeholder(table, names.index(k)))
        for k in table.primary_key
    )


def statement_parts(
    table: TableInfo, kind: Statement, changed: tuple[int, ...]
) -> tuple[sql.Composable, sql.Composable, sql.Composable]:
    """(head, one row of VALUES with placeholders, tail) of a set-based statement."""
    ident = table_identifier(table.schema, table.name)
    names = [c.name for c in table.columns]
    keys = [names.index(k) for k in table.primary_key]

    def values_row(positions: Sequence[int], typed: bool) -> sql.Composable:
        return sql.SQL("({})").format(
            sql.SQL(", ").join(
                placeholder(table, i) if typed else sql.Placeholder() for i in positions
            )
        )

    def alias(positions: Sequence[int]) -> sql.Composable:
        return sql.SQL(", ").join(sql.Identifier(names[i]) for i in positions)

    key_join = sql.SQL(" AND ").join(
        sql.SQL("t.{0} = v.{0}").format(sql.Identifier(names[i])) for i in keys
    )
    if kind.history:
        return _history_statement_parts(table, kind, changed, values_row, alias, key_join)
    if kind is Statement.DELETE:
        return (
            sql.SQL("DELETE FROM {} AS t USING (VALUES ").format(ident),
            values_row(keys, typed=True),
            sql.SQL(") AS v ({}) WHERE {}").format(alias(keys), key_join),
        )
    if kind is Statement.UPDATE:
        assignments = sql.SQL(", ").join(
            sql.SQL("{0} = v.{0}").format(sql.Identifier(names[i])) for i in changed
        )
        return (
            sql.SQL("UPDATE {} AS t SET {} FROM (VALUES ").format(ident, assignments),
            values_row([*keys, *changed], typed=True),
            sql.SQL(") AS v ({}) WHERE {}").format(alias([*keys, *changed]), key_join),
        )
    others = [i for i in range(len(names)) if i not in keys]
    on_conflict = (
        sql.SQL("DO UPDATE SET {}").format(
            sql.SQL(", ").join(
                sql.SQL("{0} = excluded.{0}").format(sql.Identifier(names[i])) for i in others
            )
        )
        if others
        else sql.SQL("DO NOTHING")
    )
    # Untyped literals in INSERT ... VALUES take the target columns' types.
    return (
        sql.SQL("INSERT INTO {} ({}) VALUES ").format(ident, alias(range(len(names)))),
        values_row(range(len(names)), typed=False),
        sql.SQL(" ON CONFLICT ({}) {}").format(alias(keys), on_conflict)
        if kind is Statement.UPSERT
        else sql.SQL(""),
    )


_TIME = sql.SQL("%s::timestamp")


def _history_statement_parts(
    table: TableInfo,
    kind: Statement,
    changed: tuple[int, ...],
    values_row: Callable[[Sequence[int], bool], sql.Composable],
    alias: Callable[[Sequence[int]], sql.Composable],
    key_join: sql.Composable,
) -> tuple[sql.Composable, sql.Composable, sql.Composable]:
    """A history table's statements: close versions, add new versions of updated rows,
    insert rows. The VALUES rows end with the change's time."""
    ident = table_identifier(table.schema, table.name)
    names = [c.name for c in table.columns]
    keys = [names.index(k) for k in table.primary_key]
    if kind is Statement.HISTORY_INSERT:
        return (
            sql.SQL("INSERT INTO {} ({}, _record_create_time) VALUES ").format(
                ident, alias(range(len(names)))
            ),
            sql.SQL("({}, %s)").format(sql.SQL(", ").join(sql.Placeholder() for _ in names)),
            sql.SQL(""),
        )
    if kind is Statement.HISTORY_CLOSE:
        return (
            sql.SQL(
                "UPDATE {} AS t SET _record_is_active = false, _record_delete_time = v.zetl_time"
                " FROM (VALUES "
            ).format(ident),
            sql.SQL("({}, {})").format(
                sql.SQL(", ").join(placeholder(table, i) for i in keys), _TIME
            ),
            sql.SQL(") AS v ({}, zetl_time) WHERE {} AND t._record_is_active").format(
                alias(keys), key_join
            ),
        )
    # An update: close the active version of the old key, and insert the new version from
    # it, with the changed values. v's columns: the old key, then the changed values, the time.
    old_names = [sql.Identifier(f"zetl_key_{n}") for n in range(len(keys))]
    new_names = [sql.Identifier(f"zetl_new_{n}") for n in range(len(changed))]
    new_of = dict(zip(changed, new_names, strict=True))
    match = sql.SQL(" AND ").join(
        sql.SQL("t.{} = v.{}").format(sql.Identifier(names[i]), old)
        for i, old in zip(keys, old_names, strict=True)
    )
    returned = sql.SQL(", ").join(
        sql.SQL("v.{0} AS {0}").format(new_of[i])
        if i in new_of
        else sql.SQL("t.{0} AS {0}").format(sql.Identifier(names[i]))
        for i in range(len(names))
    )
    return (
        sql.SQL("WITH v ({}, zetl_time) AS (VALUES ").format(
            sql.SQL(", ").join([*old_names, *new_names])
        ),
        sql.SQL("({}, {})").format(
            sql.SQL(", ").join(placeholder(table, i) for i in [*keys, *changed]), _TIME
        ),
        sql.SQL(
            "), closed AS (UPDATE {ident} AS t SET _record_is_active = false,"
            " _record_delete_time = v.zetl_time FROM v WHERE {match} AND t._record_is_active"
            " RETURNING {returned}, v.zetl_time AS zetl_time)"
            " INSERT INTO {ident} ({columns}, _record_create_time)"
            " SELECT {selected}, zetl_time FROM closed"
        ).format(
            ident=ident,
            match=match,
            returned=returned,
            columns=alias(range(len(names))),
            selected=sql.SQL(", ").join(
                new_of.get(i, sql.Identifier(names[i])) for i in range(len(names))
            ),
        ),
    )


def table_identifier(schema: str, name: str) -> sql.Identifier:
    return sql.Identifier(schema, name)
