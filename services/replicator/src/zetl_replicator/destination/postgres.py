"""The Postgres destination: a batch's changes applied to the replica database.

``PostgresDestination`` (the ``interface.Destination`` contract) applies changes set-based,
not row by row. Per table it folds the changes since the last flush into their *net* change
per primary key (``netchange``), then emits them grouped by kind: inserts by COPY (a few as
one ``INSERT``), upserts as one ``INSERT ... ON CONFLICT``, updates as ``UPDATE ... FROM
(VALUES ...)`` per set of changed columns, deletes as ``DELETE ... USING (VALUES ...)``;
statements travel together, with the progress row at commit, in one round trip. A COPY runs
in a thread while the next changes are gathered; the connection waits for it before anything
else. Buffers are flushed when they grow past a size, so memory stays bounded even inside a
huge source transaction, and before anything whose order matters (truncate, DDL,
savepoints). HISTORY_MODE tables keep every version instead (``history``). The SQL itself is
written in ``statements``.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from io import StringIO

import psycopg2
import psycopg2.extensions
from psycopg2 import sql

from zetl.integration import TableState
from zetl_replicator.apply.netchange import Key, NetChanges, Row
from zetl_replicator.destination.history import HistoryChanges
from zetl_replicator.destination.interface import ApplyError, raise_if_exhausted
from zetl_replicator.destination.statements import (
    Statement,
    column_list,
    copy_line,
    key_match,
    literals,
    placeholder,
    statement_parts,
    table_identifier,
)
from zetl_replicator.source.pgoutput import UNCHANGED_TOAST
from zetl_replicator.source.tables import TableInfo
from zetl_replicator.state.store import (
    PostgresStateStore,
    progress_statement,
    rows_applied_statement,
)

FLUSH_BYTES = 8 * 1024 * 1024
STATEMENT_PAGE = 1000  # rows per set-based statement
COPY_MIN_ROWS = 1000  # fewer new rows go as INSERT statements, in the same round trip as the rest
SCRIPT_BYTES = 1024 * 1024  # statements sent together in one round trip
COPY_READ_CHARS = 1024 * 1024  # COPY data handed to the driver at a time


class PostgresDestination:
    """Applies changes to the replica database over one connection (the replicator's role).

    ``history``: the HISTORY_MODE tables ("schema.table"), whose changes add and close
    versions; the caller keeps the set current (the registry shares it).
    """

    def __init__(
        self, conn: psycopg2.extensions.connection, slot: str, history: set[str] | None = None
    ) -> None:
        if (
            conn.encoding != "UTF8"
            or conn.info.parameter_status("standard_conforming_strings") != "on"
        ):
            raise ValueError(
                "the destination's connection needs client_encoding UTF8 and"
                " standard_conforming_strings on (replica.connect_replica sets both)"
            )
        self._conn = conn
        self._copy: threading.Thread | None = None  # the COPY in flight
        self._copy_error: BaseException | None = None
        self.slot = slot
        self._store = PostgresStateStore(conn)
        self._changes: dict[str, NetChanges] = {}
        self._buffered = 0
        self._batch_bytes = 0
        self._rows: Counter[tuple[str, str]] = Counter()
        self._script: list[bytes] = []
        self._script_bytes = 0
        self._templates: dict[
            tuple[Statement, str, int, tuple[int, ...]], tuple[bytes, bytes, bytes]
        ] = {}
        self._rows_at_savepoint: dict[str, Counter[tuple[str, str]]] = {}
        self._script_tables: set[str] = set()  # tables with statements in the unsent script
        # Send each table's statements on their own, so that a failure names its table.
        self.isolate = False
        self.history: set[str] = set() if history is None else history
        self._history_changes: dict[str, HistoryChanges] = {}
        # The source time of the changes coming in (UTC, as text): their versions' times
        self.change_time: str = ""

    @property
    def conn(self) -> psycopg2.extensions.connection:
        """The connection, once the COPY in flight is done (one command at a time on it)."""
        self._copy_done()
        return self._conn

    @property
    def pending_bytes(self) -> int:
        return self._batch_bytes

    # --- changes ---------------------------------------------------------------------------

    def insert(self, table: TableInfo, row: Row, size: int) -> None:
        """``size``: about the bytes the change holds (the message's size will do)."""
        if self.history and table.qualified in self.history:
            history = self._history(table, [self._history_key(table, row)])
            history.inserts.append((*row, self.change_time))
            self._history_grew(history, size)
            return
        changes = self._table(table)
        changes.insert(row)
        self._grew(changes, size)

    def update(self, table: TableInfo, old: Row | None, row: Row, size: int) -> None:
        """``old``: the old key ('K', the key changed) or old row ('O', identity full), or None."""
        if self.history and table.qualified in self.history:
            self._history_update(table, old, row, size)
            return
        changes = self._table(table)
        changes.update(old, row)
        self._grew(changes, size)

    def delete(self, table: TableInfo, old: Row, size: int) -> None:
        if self.history and table.qualified in self.history:
            key = self._history_key(table, old)
            history = self._history(table, [key])
            history.closes.append((*key, self.change_time))
            self._history_grew(history, size)
            return
        changes = self._table(table)
        changes.delete(old)
        self._grew(changes, size)

    def truncate(self, tables: Sequence[TableInfo]) -> None:
        for table in tables:
            self._flush_table(table.qualified)
        self._send_script()
        plain = [t for t in tables if t.qualified not in self.history]
        with self._refused({t.qualified for t in tables}), self.conn.cursor() as cur:
            if plain:
                cur.execute(
                    sql.SQL("TRUNCATE {}").format(
                        sql.SQL(", ").join(table_identifier(t.schema, t.name) for t in plain)
                    )
                )
            for table in tables:
                if table.qualified in self.history:  # every row's version is closed
                    cur.execute(
                        sql.SQL(
                            "UPDATE {} SET _record_is_active = false,"
                            " _record_delete_time = %s::timestamp WHERE _record_is_active"
                        ).format(table_identifier(table.schema, table.name)),
                        (self.change_time,),
                    )

    def execute(self, statement: sql.Composable, table: TableInfo | None = None) -> None:
        """Run DDL (a schema change of ``table``) in the open batch, after the changes
        buffered before it."""
        self.flush()
        with self._refused({table.qualified} if table else set()), self.conn.cursor() as cur:
            cur.execute(statement)
        self._templates.clear()

    def rename_table(self, table: TableInfo, new_name: str) -> None:
        self.execute(
            sql.SQL("ALTER TABLE IF EXISTS {} RENAME TO {}").format(
                table_identifier(table.schema, table.name), sql.Identifier(new_name)
            ),
            table,
        )
        with self._store.in_open_transaction():
            self._store.rename_table(table.schema, table.name, new_name)
        # The rows applied before it are counted under the name the state now has.
        counted = self._rows.pop((table.schema, table.name), 0)
        if counted:
            self._rows[(table.schema, new_name)] += counted

    def set_table_state(self, table: TableInfo, state: TableState, reason: str) -> None:
        self._copy_done()  # the store shares the connection
        with self._store.in_open_transaction():
            self._store.set_table_state(table.schema, table.name, state, reason)

    def savepoint(self, name: str) -> None:
        self.flush()
        with self.conn.cursor() as cur:
            cur.execute(sql.SQL("SAVEPOINT {}").format(sql.Identifier(name)))
        self._rows_at_savepoint[name] = Counter(self._rows)

    def rollback_to(self, name: str) -> None:
        self._discard_buffers()
        with self.conn.cursor() as cur:
            cur.execute(sql.SQL("ROLLBACK TO SAVEPOINT {}").format(sql.Identifier(name)))
        self._rows = Counter(self._rows_at_savepoint[name])

    # --- batches ---------------------------------------------------------------------------

    def flush(self) -> None:
        for name in [*self._changes, *self._history_changes]:
            self._flush_table(name)
        self._send_script()

    def commit(
        self, lsn: int, commit_time: datetime | None, *, durable: bool = True
    ) -> dict[tuple[str, str], int]:
        """Commit the batch with ``lsn``; return the changes applied per (schema, table)."""
        for name in [*self._changes, *self._history_changes]:
            self._flush_table(name)
        rows = dict(self._rows)
        if not durable:
            self._script.append(b"SET LOCAL synchronous_commit = off")
        with self.conn.cursor() as cur:  # the progress goes with the last changes: one trip
            self._script.append(progress_statement(cur, self.slot, lsn, commit_time))
            counts = rows_applied_statement(cur, rows)
            if counts is not None:
                self._script.append(counts)
        self._send_script()
        self.conn.commit()
        self._rows.clear()
        self._rows_at_savepoint.clear()
        self._batch_bytes = 0
        return rows

    def rollback(self) -> None:
        self._discard_buffers()
        self._rows.clear()
        self._rows_at_savepoint.clear()
        self._batch_bytes = 0
        self._copy_done(raise_error=False)  # what it refused is being undone
        if not self._conn.closed:
            self._conn.rollback()

    # --- internals -------------------------------------------------------------------------

    def _discard_buffers(self) -> None:
        self._changes.clear()
        self._history_changes.clear()
        self._script_tables = set()
        self._script = []
        self._script_bytes = 0
        self._buffered = 0

    def _table(self, table: TableInfo) -> NetChanges:
        changes = self._changes.get(table.qualified)
        if changes is None or changes.table is not table:
            if changes is not None:  # the table's shape changed: apply the old shape first
                self._flush_table(table.qualified)
            changes = self._changes[table.qualified] = NetChanges(table, self)
        return changes

    def _grew(self, changes: NetChanges, size: int) -> None:
        changes.counted(size)
        self._buffered += size
        self._batch_bytes += size
        if self._buffered >= FLUSH_BYTES:
            self.flush()

    # --- HISTORY_MODE ------------------------------------------------------------------------

    def _history(self, table: TableInfo, keys: Sequence[Key]) -> HistoryChanges:
        """The table's history buffer with ``keys`` marked touched; flushed first when one of
        them is in it already (so a flush touches each key once: its statements commute)."""
        history = self._history_changes.get(table.qualified)
        if history is not None and (history.table is not table or history.keys & set(keys)):
            self._flush_table(table.qualified)
            history = None
        if history is None:
            names = [c.name for c in table.columns]
            positions = tuple(names.index(k) for k in table.primary_key)
            history = self._history_changes[table.qualified] = HistoryChanges(table, positions)
        history.keys.update(keys)
        return history

    def _history_key(self, table: TableInfo, row: Row) -> Key:
        names = [c.name for c in table.columns]
        return tuple([row[names.index(k)] for k in table.primary_key])

    def _history_update(self, table: TableInfo, old: Row | None, row: Row, size: int) -> None:
        """Close the key's active version and add the new one (unchanged TOASTed values, and
        the key when it did not change, are taken from the version closed)."""
        new_key = self._history_key(table, row)
        old_key = new_key if old is None else self._history_key(table, old)
        if UNCHANGED_TOAST in new_key:  # a TOASTed key column, unchanged
            new_key = old_key
        history = self._history(table, [old_key, new_key])
        positions = set(history.key_positions)
        changed = tuple(
            i
            for i, v in enumerate(row)
            if v is not UNCHANGED_TOAST and not (i in positions and new_key == old_key)
        )
        history.updates.setdefault(changed, []).append(
            (*old_key, *(row[i] for i in changed), self.change_time)
        )
        self._history_grew(history, size)

    def _history_grew(self, history: HistoryChanges, size: int) -> None:
        history.size += size
        history.changes += 1
        self._buffered += size
        self._batch_bytes += size
        if self._buffered >= FLUSH_BYTES:
            self.flush()

    def _flush_history(self, history: HistoryChanges) -> None:
        """Close versions, add new versions of updated rows, then insert: set-based."""
        self._buffered -= history.size
        table = history.table
        self._rows[(table.schema, table.name)] += history.changes
        if history.closes:
            self._script_rows(table, Statement.HISTORY_CLOSE, (), history.closes)
        for changed, rows in history.updates.items():
            self._script_rows(table, Statement.HISTORY_UPDATE, changed, rows)
        if history.inserts:
            self._script_rows(table, Statement.HISTORY_INSERT, (), history.inserts)

    def _flush_table(self, name: str) -> None:
        """Apply a table's net changes: deletes, updates, upserts, then inserts by COPY."""
        history = self._history_changes.pop(name, None)
        if history is not None:
            self._flush_history(history)
        changes = self._changes.pop(name, None)
        if changes is not None:
            self.emit(changes)

    # --- SQL emission (the folding's Sink) ---------------------------------------------------

    def emit(self, changes: NetChanges) -> None:
        """Apply a table's net changes: deletes, updates, upserts, then inserts by COPY."""
        self._buffered -= changes.size
        table = changes.table
        self._rows[(table.schema, table.name)] += changes.changes
        grouped = changes.grouped()
        if grouped.deletes:
            self._script_rows(table, Statement.DELETE, (), grouped.deletes)
        for changed, rows in grouped.updates.items():
            self._script_rows(
                table,
                Statement.UPDATE,
                changed,
                [(*(r[i] for i in changes.key_positions), *(r[i] for i in changed)) for r in rows],
            )
        if grouped.upserts:
            self._script_rows(table, Statement.UPSERT, (), grouped.upserts)
        inserts = grouped.inserts
        if 0 < len(inserts) < COPY_MIN_ROWS:
            self._script_rows(table, Statement.INSERT, (), inserts)
        elif inserts:
            text = "".join([copy_line(row) for row in inserts])  # while the last COPY runs
            self._send_script()
            self._copy_in_background(table, text)

    def _copy_in_background(self, table: TableInfo, text: str) -> None:
        """COPY ``text`` into ``table`` from a thread, after the COPY before it: the warehouse
        takes in one chunk while the next is gathered (the driver lets go of the GIL while it
        sends and waits). Its error is raised where the connection is next used."""
        statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
            table_identifier(table.schema, table.name), column_list(table)
        )
        conn = self.conn  # after the COPY in flight

        def send() -> None:
            try:
                with self._refused({table.qualified}), conn.cursor() as cur:
                    cur.copy_expert(statement, StringIO(text), COPY_READ_CHARS)
            except BaseException as exc:  # raised in the applier's thread
                self._copy_error = exc

        self._copy = threading.Thread(target=send, name="zetl-copy", daemon=True)
        self._copy.start()

    def _copy_done(self, *, raise_error: bool = True) -> None:
        """Wait for the COPY in flight, if any; raise what it raised."""
        if self._copy is not None:
            self._copy.join()
            self._copy = None
        error, self._copy_error = self._copy_error, None
        if error is not None and raise_error:
            raise error

    def update_key_in_order(self, table: TableInfo, old_key: Key, row: Row) -> None:
        """A key change as a real UPDATE, after everything before it."""
        self._send_script()
        changed = [i for i, v in enumerate(row) if v is not UNCHANGED_TOAST]
        statement = sql.SQL("UPDATE {} SET {} WHERE {}").format(
            table_identifier(table.schema, table.name),
            sql.SQL(", ").join(
                sql.SQL("{} = {}").format(
                    sql.Identifier(table.columns[i].name), placeholder(table, i)
                )
                for i in changed
            ),
            key_match(table),
        )
        with self._refused({table.qualified}), self.conn.cursor() as cur:
            cur.execute(statement, [*(row[i] for i in changed), *old_key])

    def _script_rows(
        self, table: TableInfo, kind: Statement, changed: tuple[int, ...], rows: list[Row]
    ) -> None:
        """Add set-based statements over ``rows`` to the script (pages of STATEMENT_PAGE)."""
        head, row_template, tail = self._template(table, kind, changed)
        for start in range(0, len(rows), STATEMENT_PAGE):
            # Each value as a literal, inlined: psycopg2's mogrify per row was a fifth of the
            # replicator's CPU under OLTP load. Sound on this connection only: UTF-8 and
            # standard_conforming_strings (checked in __init__), text values (no NUL in them).
            page = rows[start : start + STATEMENT_PAGE]
            values = b",".join([row_template % literals(row) for row in page])
            statement = head + values + tail
            self._script.append(statement)
            self._script_bytes += len(statement)
        self._script_tables.add(table.qualified)
        if self._script_bytes >= SCRIPT_BYTES or self.isolate:
            self._send_script()

    def _template(
        self, table: TableInfo, kind: Statement, changed: tuple[int, ...]
    ) -> tuple[bytes, bytes, bytes]:
        cache_key = (kind, table.qualified, id(table), changed)
        found = self._templates.get(cache_key)
        if found is None:
            head, row, tail = (
                part.as_string(self.conn).encode() for part in statement_parts(table, kind, changed)
            )
            found = self._templates[cache_key] = (head, row, tail)
        return found

    def _send_script(self) -> None:
        """Send the statements gathered so far in one round trip."""
        if self._script:
            with self._refused(self._script_tables), self.conn.cursor() as cur:
                cur.execute(b";".join(self._script))
        self._script = []
        self._script_bytes = 0
        self._script_tables = set()

    @contextmanager
    def _refused(self, tables: set[str]) -> Iterator[None]:
        """Turn the warehouse refusing a statement into an ApplyError naming its tables (a
        warehouse out of a resource is no table's fault: WarehouseExhausted)."""
        try:
            yield
        except psycopg2.Error as exc:
            raise_if_exhausted(exc)
            named = exc.diag.table_name
            if named and exc.diag.schema_name:  # constraint errors name their table
                tables = {f"{exc.diag.schema_name}.{named}"}
            raise ApplyError(set(tables), exc) from exc
