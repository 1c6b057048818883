"""Destinations: where decoded changes are applied, behind one small interface.

A destination holds one open batch at a time. Changes go in with ``insert``/``update``/
``delete``/``truncate``; ``commit(lsn)`` makes the whole batch durable *together with* the LSN it
covers, which is what makes replication exactly-once.

``PostgresDestination`` buffers changes per table, in order: runs of inserts become one COPY,
updates and deletes go out in pages of statements (few round trips). Buffers are flushed when
they grow past a size, so memory stays bounded even inside a huge source transaction.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from io import StringIO
from typing import Protocol

import psycopg2.extensions
from psycopg2 import sql

from zetl_replicator.catalog import TableInfo
from zetl_replicator.pgoutput import UNCHANGED_TOAST, Value
from zetl_replicator.warehouse import add_rows_applied, table_identifier, write_progress

FLUSH_BYTES = 8 * 1024 * 1024
STATEMENT_PAGE = 500  # rows per multi-row INSERT
COPY_MIN_ROWS = 1000  # a run of inserts this long goes by COPY
SCRIPT_BYTES = 1024 * 1024  # statements sent together in one round trip
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


class Destination(Protocol):
    def insert(self, table: TableInfo, row: Sequence[Value]) -> None: ...

    def update(self, table: TableInfo, key: Sequence[Value], row: Sequence[Value]) -> None: ...

    def delete(self, table: TableInfo, key: Sequence[Value]) -> None: ...

    def truncate(self, tables: Sequence[TableInfo]) -> None: ...

    def execute(self, statement: sql.Composable) -> None: ...

    def commit(self, lsn: int, commit_time: datetime | None) -> None: ...

    def rollback(self) -> None: ...

    @property
    def pending_bytes(self) -> int: ...


@dataclass
class _Run:
    """Consecutive changes of one kind to one table: COPY lines, or one statement's params."""

    statement: sql.Composed | None  # None: a run of inserts
    params: list[tuple[Value, ...]] = field(default_factory=list)  # rows, or statement params


@dataclass
class _TableBuffer:
    table: TableInfo
    runs: list[_Run] = field(default_factory=list)
    size: int = 0


def copy_line(row: Sequence[Value]) -> str:
    return "\t".join("\\N" if v is None else v.translate(_COPY_ESCAPES) for v in row) + "\n"


class PostgresDestination:
    """Applies changes to the replica database over one connection (the replicator's role)."""

    def __init__(self, conn: psycopg2.extensions.connection, slot: str) -> None:
        self.conn = conn
        self.slot = slot
        self._buffers: dict[str, _TableBuffer] = {}
        self._buffered = 0
        self._batch_bytes = 0
        self._rows: Counter[tuple[str, str]] = Counter()
        self._statements: dict[tuple[str, tuple[str, ...]], sql.Composed] = {}
        self._script: list[bytes] = []
        self._script_bytes = 0

    @property
    def pending_bytes(self) -> int:
        return self._batch_bytes

    # --- changes ---------------------------------------------------------------------------

    def insert(self, table: TableInfo, row: Sequence[Value]) -> None:
        self._run(table, None).params.append(tuple(row))
        self._grow(table, sum(len(v) for v in row if v) + len(row))

    def update(self, table: TableInfo, key: Sequence[Value], row: Sequence[Value]) -> None:
        # An unchanged TOAST value is not resent: leave that column as it is.
        changed = tuple(
            c.name for c, v in zip(table.columns, row, strict=True) if v is not UNCHANGED_TOAST
        )
        values = tuple(v for v in row if v is not UNCHANGED_TOAST)
        statement = self._statement("update", table, changed)
        self._run(table, statement).params.append((*values, *key))
        self._grow(table, sum(len(v) for v in values if v) + 16)

    def delete(self, table: TableInfo, key: Sequence[Value]) -> None:
        statement = self._statement("delete", table, ())
        self._run(table, statement).params.append(tuple(key))
        self._grow(table, sum(len(v) for v in key if v) + 16)

    def truncate(self, tables: Sequence[TableInfo]) -> None:
        for table in tables:
            self._flush_table(table.qualified)
        self._send_script()
        with self.conn.cursor() as cur:
            cur.execute(
                sql.SQL("TRUNCATE {}").format(
                    sql.SQL(", ").join(table_identifier(t.schema, t.name) for t in tables)
                )
            )

    def execute(self, statement: sql.Composable) -> None:
        """Run DDL (a schema change) in the open batch, after the changes buffered before it."""
        self.flush()
        with self.conn.cursor() as cur:
            cur.execute(statement)
        self._statements.clear()

    # --- batches ---------------------------------------------------------------------------

    def flush(self) -> None:
        for name in list(self._buffers):
            self._flush_table(name)
        self._send_script()

    def commit(self, lsn: int, commit_time: datetime | None) -> None:
        self.flush()
        with self.conn.cursor() as cur:
            write_progress(cur, self.slot, lsn, commit_time)
            add_rows_applied(cur, dict(self._rows))
        self.conn.commit()
        self._rows.clear()
        self._batch_bytes = 0

    def rollback(self) -> None:
        self._buffers.clear()
        self._script = []
        self._script_bytes = 0
        self._rows.clear()
        self._buffered = self._batch_bytes = 0
        if not self.conn.closed:
            self.conn.rollback()

    # --- internals -------------------------------------------------------------------------

    def _run(self, table: TableInfo, statement: sql.Composed | None) -> _Run:
        runs = self._buffers.setdefault(table.qualified, _TableBuffer(table)).runs
        if not runs or runs[-1].statement is not statement:
            runs.append(_Run(statement))
        self._rows[(table.schema, table.name)] += 1
        return runs[-1]

    def _grow(self, table: TableInfo, size: int) -> None:
        self._buffers[table.qualified].size += size
        self._buffered += size
        self._batch_bytes += size
        if self._buffered >= FLUSH_BYTES:
            self.flush()

    def _flush_table(self, name: str) -> None:
        """Turn a table's buffered runs into SQL, in order; large insert runs go by COPY."""
        buffer = self._buffers.pop(name, None)
        if buffer is None:
            return
        self._buffered -= buffer.size
        table = buffer.table
        with self.conn.cursor() as cur:
            for run in buffer.runs:
                before = len(self._script)
                if run.statement is not None:
                    self._script += [cur.mogrify(run.statement, p) for p in run.params]
                elif len(run.params) >= COPY_MIN_ROWS:
                    self._send_script()
                    cur.copy_expert(
                        sql.SQL("COPY {} ({}) FROM STDIN").format(
                            table_identifier(table.schema, table.name), _column_list(table)
                        ),
                        StringIO("".join(copy_line(row) for row in run.params)),
                    )
                else:
                    self._script += [
                        cur.mogrify(_insert_sql(table, len(page)), [v for row in page for v in row])
                        for page in _pages(run.params, STATEMENT_PAGE)
                    ]
                self._script_bytes += sum(len(s) for s in self._script[before:])
                if self._script_bytes >= SCRIPT_BYTES:
                    self._send_script()

    def _send_script(self) -> None:
        """Send the statements gathered so far in one round trip."""
        if self._script:
            with self.conn.cursor() as cur:
                cur.execute(b";".join(self._script))
        self._script = []
        self._script_bytes = 0

    def _statement(self, kind: str, table: TableInfo, changed: tuple[str, ...]) -> sql.Composed:
        cache_key = (f"{kind} {table.qualified}", changed)
        statement = self._statements.get(cache_key)
        if statement is None:
            statement = _build_statement(kind, table, changed)
            self._statements[cache_key] = statement
        return statement


def _column_list(table: TableInfo) -> sql.Composed:
    return sql.SQL(", ").join(sql.Identifier(c.name) for c in table.columns)


def _insert_sql(table: TableInfo, rows: int) -> sql.Composed:
    # Untyped literals in INSERT ... VALUES take the target columns' types.
    row = sql.SQL("({})").format(sql.SQL(", ").join([sql.Placeholder()] * len(table.columns)))
    return sql.SQL("INSERT INTO {} ({}) VALUES {}").format(
        table_identifier(table.schema, table.name),
        _column_list(table),
        sql.SQL(", ").join([row] * rows),
    )


def _pages(items: list[tuple[Value, ...]], size: int) -> list[list[tuple[Value, ...]]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def _typed(table: TableInfo, column: str) -> sql.Composed:
    info = table.column(column)
    type_sql = info.type_sql if info else "text"
    return sql.SQL("%s::{}").format(sql.SQL(type_sql))


def _build_statement(kind: str, table: TableInfo, changed: tuple[str, ...]) -> sql.Composed:
    ident = table_identifier(table.schema, table.name)
    where = sql.SQL(" AND ").join(
        sql.SQL("{} = {}").format(sql.Identifier(k), _typed(table, k)) for k in table.primary_key
    )
    if kind == "delete":
        return sql.SQL("DELETE FROM {} WHERE {}").format(ident, where)
    assignments = sql.SQL(", ").join(
        sql.SQL("{} = {}").format(sql.Identifier(c), _typed(table, c)) for c in changed
    )
    return sql.SQL("UPDATE {} SET {} WHERE {}").format(ident, assignments, where)
