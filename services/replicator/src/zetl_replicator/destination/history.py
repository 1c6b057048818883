"""HISTORY_MODE: every version of a row is kept in the replica, told apart by three columns.

What the destination buffers for a history table between flushes, the columns' names and
definition, and how the replica's history tables are found again after a restart.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import psycopg2.extensions
from psycopg2 import sql

from zetl_replicator.apply.netchange import Key, Row
from zetl_replicator.destination.statements import table_identifier
from zetl_replicator.source.tables import TableInfo


@dataclass
class HistoryChanges:
    """A history table's changes since the last flush, each key touched once at most (a key
    touched again flushes first: every source change is a version of its own)."""

    table: TableInfo
    key_positions: tuple[int, ...]
    keys: set[Key] = field(default_factory=set)
    inserts: list[Row] = field(default_factory=list)  # the row, then its change time
    closes: list[Row] = field(default_factory=list)  # the key, then the change time
    # changed positions -> (old key, new values of those positions, change time)
    updates: dict[tuple[int, ...], list[Row]] = field(default_factory=dict)
    changes: int = 0
    size: int = 0


# HISTORY_MODE: every version of a row is kept; these columns tell them apart (Redshift's
# names). The key is unique among the active versions only (a partial unique index).
IS_ACTIVE, CREATE_TIME, DELETE_TIME = (
    "_record_is_active",
    "_record_create_time",
    "_record_delete_time",
)


HISTORY_COLUMNS = (IS_ACTIVE, CREATE_TIME, DELETE_TIME)


HISTORY_COLUMNS_SQL = sql.SQL(
    "_record_is_active boolean NOT NULL DEFAULT true,"
    " _record_create_time timestamp NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'),"
    " _record_delete_time timestamp"
)


def history_key_sql(table: TableInfo) -> sql.Composed:
    """A history table's key: unique among its active versions."""
    return sql.SQL("CREATE UNIQUE INDEX ON {} ({}) WHERE _record_is_active").format(
        table_identifier(table.schema, table.name),
        sql.SQL(", ").join(sql.Identifier(k) for k in table.primary_key),
    )


def history_tables(conn: psycopg2.extensions.connection) -> dict[str, tuple[str, ...]]:
    """The replica's history tables ("schema.table") and their keys."""
    with conn.cursor() as cur:
        cur.execute(
            """
            SELECT n.nspname, c.relname,
                   array_agg(a.attname::text ORDER BY k.ord)
              FROM pg_index i
              JOIN pg_class c ON c.oid = i.indrelid
              JOIN pg_namespace n ON n.oid = c.relnamespace
             CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k (attnum, ord)
              JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
             WHERE i.indisunique AND i.indpred IS NOT NULL
               AND EXISTS (SELECT FROM pg_attribute h WHERE h.attrelid = c.oid
                           AND h.attname = '_record_is_active' AND NOT h.attisdropped)
             GROUP BY n.nspname, c.relname, i.indexrelid
            """
        )
        return {f"{schema}.{name}": tuple(key) for schema, name, key in cur.fetchall()}


def is_history_table(conn: psycopg2.extensions.connection, schema: str, name: str) -> bool:
    with conn.cursor() as cur:
        cur.execute(
            "SELECT EXISTS (SELECT FROM pg_attribute WHERE attrelid = %s::regclass"
            " AND attname = '_record_is_active' AND NOT attisdropped)",
            (sql.Identifier(schema, name).as_string(conn),),
        )
        row = cur.fetchone()
    return bool(row and row[0])


def without_history_columns(table: TableInfo, key: tuple[str, ...]) -> TableInfo:
    """A history table as replicated: the source's columns and key."""
    return replace(
        table,
        columns=tuple(c for c in table.columns if c.name not in HISTORY_COLUMNS),
        primary_key=key,
    )
