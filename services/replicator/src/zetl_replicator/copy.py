"""Initial copy: one table, as of an exported snapshot, from source COPY to warehouse COPY.

Rows flow through an OS pipe between the two COPY commands (one thread each), so memory stays
bounded whatever the table's size. The replica table is created, filled and given its primary
key in one warehouse transaction (the key after the data, as pg_restore does: faster), so a
crash mid-copy leaves nothing behind but a rolled-back transaction.
"""

from __future__ import annotations

import os
import threading

import psycopg2.extensions
from psycopg2 import sql

from zetl.db import connect
from zetl_replicator.catalog import TEXT_FORMAT_OPTIONS, TableInfo
from zetl_replicator.warehouse import (
    create_table_sql,
    primary_key_sql,
    read_only_grants,
    table_identifier,
)

PIPE_CHUNK = 1 << 16


def _column_list(table: TableInfo) -> sql.Composed:
    return sql.SQL(", ").join(sql.Identifier(c.name) for c in table.columns)


def copy_table(
    source_url: str,
    snapshot: str,
    table: TableInfo,
    warehouse: psycopg2.extensions.connection,
) -> int:
    """Replace ``table`` in the replica with its content as of ``snapshot``; return the rows.

    The schema must exist (``ensure_schema``). Runs in ``warehouse``'s current transaction
    and leaves it open: the caller commits it together with the table's new state.
    """
    source = connect(source_url, options=TEXT_FORMAT_OPTIONS)
    try:
        with source.cursor() as cur:
            cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            cur.execute("SET TRANSACTION SNAPSHOT %s", (snapshot,))
        return _pipe_copy(source, table, warehouse)
    finally:
        source.close()


def _pipe_copy(
    source: psycopg2.extensions.connection,
    table: TableInfo,
    warehouse: psycopg2.extensions.connection,
) -> int:
    ident = table_identifier(table.schema, table.name)
    copy_out = sql.SQL("COPY (SELECT {} FROM {}) TO STDOUT").format(_column_list(table), ident)
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
        cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(ident))
        cur.execute(create_table_sql(table, with_key=False))
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
        cur.execute(sql.SQL("ALTER TABLE {} ADD {}").format(ident, primary_key_sql(table)))
        read_only_grants(cur, table)
    return rows
