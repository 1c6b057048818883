"""Initial copy: one table, as of an exported snapshot, from source COPY to warehouse COPY.

Rows flow through an OS pipe between the two COPY commands (one thread each), so memory stays
bounded whatever the table's size. The replica table is emptied (or created), filled and given
its primary key in one warehouse transaction (the key after the data, as pg_restore does:
faster), so a crash mid-copy leaves nothing behind but a rolled-back transaction.

A replica table that already has the source table's shape is truncated, not dropped: views on
it (dbt's models live in the replica database) keep working. Only a changed shape needs a
drop, which Postgres refuses while something depends on the table: that is a clear error.
"""

from __future__ import annotations

import os
import threading

import psycopg2.errors
import psycopg2.extensions
from psycopg2 import sql

from zetl.db import connect
from zetl.errors import DataError
from zetl_replicator.destination.ddl import create_table_sql, primary_key_sql, read_only_grants
from zetl_replicator.destination.history import HISTORY_COLUMNS, history_key_sql
from zetl_replicator.destination.statements import table_identifier
from zetl_replicator.source.catalog import find_table
from zetl_replicator.source.tables import TableInfo
from zetl_replicator.source.types import TEXT_FORMAT_OPTIONS, varchar_sizes
from zetl_replicator.state.options import DatabaseOptions

PIPE_CHUNK = 1 << 16


def _column_list(table: TableInfo) -> sql.Composed:
    return sql.SQL(", ").join(sql.Identifier(c.name) for c in table.columns)


# A value cut to its first n bytes of UTF-8 on a character boundary: when byte n+1 continues a
# character (10xxxxxx), the cut backs up to where that character starts (1 to 3 bytes back).
_CUT_TO_BYTES = """CASE WHEN octet_length({c}::text) <= {n} THEN {c}::text
ELSE convert_from(substring(convert_to({c}::text, 'UTF8') FROM 1 FOR {n} - CASE
  WHEN get_byte(convert_to({c}::text, 'UTF8'), {n}) & 192 <> 128 THEN 0
  WHEN get_byte(convert_to({c}::text, 'UTF8'), {n} - 1) & 192 <> 128 THEN 1
  WHEN get_byte(convert_to({c}::text, 'UTF8'), {n} - 2) & 192 <> 128 THEN 2
  ELSE 3 END), 'UTF8') END"""


def _truncated_column_list(target: TableInfo) -> sql.Composed:
    """The columns, values over their replica VARCHAR(n) or CHAR(n)'s n bytes cut to fit on a
    character boundary (TRUNCATECOLUMNS): the source cuts them, so the copy stays one COPY
    stream."""
    sizes = dict(varchar_sizes(target))
    return sql.SQL(", ").join(
        sql.SQL(_CUT_TO_BYTES).format(c=sql.Identifier(c.name), n=sql.Literal(sizes[i]))
        if i in sizes
        else sql.Identifier(c.name)
        for i, c in enumerate(target.columns)
    )


def copy_table(
    source_url: str,
    snapshot: str,
    table: TableInfo,
    warehouse: psycopg2.extensions.connection,
    options: DatabaseOptions | None = None,
) -> int:
    """Replace ``table`` in the replica with its content as of ``snapshot``; return the rows.

    ``options``: the target database's (TRUNCATECOLUMNS, HISTORY_MODE shape the copy).

    The schema must exist (``ensure_schema``). Runs in ``warehouse``'s current transaction
    and leaves it open: the caller commits it together with the table's new state.
    """
    source = connect(source_url, raise_lost=True, options=TEXT_FORMAT_OPTIONS)
    try:
        with source.cursor() as cur:
            cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            cur.execute("SET TRANSACTION SNAPSHOT %s", (snapshot,))
        return _pipe_copy(source, table, warehouse, options or DatabaseOptions())
    finally:
        source.close()


def _pipe_copy(
    source: psycopg2.extensions.connection,
    table: TableInfo,
    warehouse: psycopg2.extensions.connection,
    options: DatabaseOptions,
) -> int:
    target = table.target()  # the replica's column types, as AWS maps them
    ident = table_identifier(table.schema, table.name)
    selected = _column_list(table)
    if options.truncatecolumns:
        selected = _truncated_column_list(target)
    copy_out = sql.SQL("COPY (SELECT {} FROM {}) TO STDOUT").format(selected, ident)
    copy_in = sql.SQL("COPY {} ({}) FROM STDIN").format(ident, _column_list(table))
    read_fd, write_fd = os.pipe()
    errors: list[BaseException] = []

    def produce() -> None:
        with os.fdopen(write_fd, "wb", buffering=PIPE_CHUNK) as sink, source.cursor() as cur:
            try:
                cur.copy_expert(copy_out.as_string(source), sink, size=PIPE_CHUNK)
            except BaseException as exc:  # reported by the consumer side
                errors.append(exc)

    with warehouse.cursor() as cur:
        add_key = _empty_target(cur, warehouse, target, history=options.history_mode)
        producer = threading.Thread(target=produce, name=f"copy-out {table.qualified}")
        producer.start()
        try:
            with os.fdopen(read_fd, "rb", buffering=PIPE_CHUNK) as pipe:
                cur.copy_expert(copy_in.as_string(warehouse), pipe, size=PIPE_CHUNK)
        finally:
            producer.join()
        if errors:
            raise errors[0]
        rows = cur.rowcount
        if add_key and options.history_mode:
            cur.execute(history_key_sql(table))
        elif add_key:
            cur.execute(sql.SQL("ALTER TABLE {} ADD {}").format(ident, primary_key_sql(table)))
        read_only_grants(cur, table)
    return rows


def _same_shape(replica: TableInfo, table: TableInfo) -> bool:
    """Same columns (names, types, order) and primary key: the replica table can be reused."""
    return replica.primary_key == table.primary_key and [
        (c.name, c.type_sql) for c in replica.columns
    ] == [(c.name, c.type_sql) for c in table.columns]


def _empty_target(
    cur: psycopg2.extensions.cursor,
    warehouse: psycopg2.extensions.connection,
    table: TableInfo,
    *,
    history: bool = False,
) -> bool:
    """Make the replica table exist, empty, with ``table``'s columns (and the history
    columns in HISTORY_MODE); True when it was created (its key is then added after the
    data). A history table is always created anew: its copy starts a new history."""
    ident = table_identifier(table.schema, table.name)
    replica = find_table(warehouse, table.schema, table.name)
    was_history = replica is not None and any(c.name in HISTORY_COLUMNS for c in replica.columns)
    if replica is not None and not history and not was_history and _same_shape(replica, table):
        cur.execute(sql.SQL("TRUNCATE {}").format(ident))
        for column in table.columns:
            was = replica.column(column.name)
            if was is not None and was.not_null != column.not_null:
                cur.execute(
                    sql.SQL("ALTER TABLE {} ALTER COLUMN {} {} NOT NULL").format(
                        ident,
                        sql.Identifier(column.name),
                        sql.SQL("SET" if column.not_null else "DROP"),
                    )
                )
        return False
    if replica is not None:
        try:
            cur.execute(sql.SQL("DROP TABLE {}").format(ident))
        except psycopg2.errors.DependentObjectsStillExist as exc:
            dependents = (exc.diag.message_detail or "").replace("\n", "; ")
            raise DataError(
                f"cannot re-copy {table.qualified}: its columns or key changed on the source, so"
                f" the replica table must be recreated, but other objects depend on it"
                f" ({dependents}). Drop them, re-copy (zetl resync {table.qualified}), then"
                " recreate them (e.g. dbt run)"
            ) from exc
    cur.execute(create_table_sql(table, with_key=False, history=history))
    return True
