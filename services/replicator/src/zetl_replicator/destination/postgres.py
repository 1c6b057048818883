"""Destinations: where decoded changes are applied, behind one small interface.

A destination holds one open batch at a time. Changes go in with ``insert``/``update``/
``delete``/``truncate``; ``commit(lsn)`` makes the whole batch durable *together with* the LSN it
covers, which is what makes replication exactly-once.

``PostgresDestination`` applies changes set-based, not row by row. Per table it folds the
changes since the last flush into their *net* change per primary key (``netchange``), then
emits them grouped by kind: inserts by COPY (a few as one ``INSERT``), upserts as one
``INSERT ... ON CONFLICT``, updates as ``UPDATE ... FROM (VALUES ...)`` per set of changed
columns, deletes as ``DELETE ... USING (VALUES ...)``; statements travel together, with the
progress row at commit, in one round trip. A COPY runs in a thread while the next changes are
gathered; the connection waits for it before anything else. Buffers are flushed when they
grow past a size, so memory stays bounded even inside a huge source transaction, and before
anything whose order matters (truncate, DDL, savepoints). HISTORY_MODE tables keep every
version instead.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from io import StringIO
from typing import Protocol

import psycopg2
import psycopg2.extensions
from psycopg2 import sql

from zetl_replicator.apply.netchange import Key, NetChanges, Row
from zetl_replicator.destination.replica import table_identifier
from zetl_replicator.source.catalog import TableInfo
from zetl_replicator.source.pgoutput import UNCHANGED_TOAST, Value
from zetl_replicator.state.store import (
    PostgresStateStore,
    TableState,
    progress_statement,
    rows_applied_statement,
)

FLUSH_BYTES = 8 * 1024 * 1024
STATEMENT_PAGE = 1000  # rows per set-based statement
COPY_MIN_ROWS = 1000  # fewer new rows go as INSERT statements, in the same round trip as the rest
SCRIPT_BYTES = 1024 * 1024  # statements sent together in one round trip
COPY_READ_CHARS = 1024 * 1024  # COPY data handed to the driver at a time
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


class ApplyError(Exception):
    """The warehouse refused changes (a constraint, a value): not a lost connection.

    ``tables``: the replica tables whose changes were in what failed ("schema.table"); one
    table names the culprit, several mean the statements have to be sent apart to find it.
    """

    def __init__(self, tables: set[str], error: psycopg2.Error) -> None:
        self.tables = tables
        self.error = error
        self.after_lsn = 0  # the last position committed before it (set by the pipeline)
        self.received_lsn = 0  # how far the stream had come
        text = str(error).strip().replace("\n", " ")
        super().__init__(text or type(error).__name__)


class Destination(Protocol):
    """Where the apply loop's changes go: one open batch at a time.

    Changes accumulate in the open batch and become durable only with ``commit``, together with
    the LSN they cover; ``rollback`` forgets them. Within a batch, changes must take effect in
    the order given for the same row, and a table's changes before ``truncate``, ``execute``
    and ``savepoint`` come before them. Lost connections raise ``zetl.db.ConnectionLost``; a
    change the destination refuses raises ``ApplyError`` naming the tables it may belong to,
    from the call that sent it or a later one of the same batch (writes may still be in flight
    when a call returns; ``commit`` returns once they all are done).
    """

    change_time: str
    """The source time of the changes coming in (UTC text): HISTORY_MODE versions get it."""

    isolate: bool
    """Send each table's changes on their own, so that a refusal names one table."""

    @property
    def pending_bytes(self) -> int:
        """About the bytes of changes in the open batch (the apply loop commits past a size)."""
        ...

    def insert(self, table: TableInfo, row: Row, size: int) -> None:
        """Add ``row`` (every column, in ``table``'s order) to ``table``. ``size``: about the
        bytes the change holds."""
        ...

    def update(self, table: TableInfo, old: Row | None, row: Row, size: int) -> None:
        """Change the row whose key is ``old``'s (or ``row``'s when ``old`` is None) to ``row``;
        ``old`` is the old key ('K', the key changed) or old row ('O', identity full).
        ``UNCHANGED_TOAST`` values in ``row`` keep what the destination has."""
        ...

    def delete(self, table: TableInfo, old: Row, size: int) -> None:
        """Remove the row whose key is ``old``'s (``old`` holds at least the key columns)."""
        ...

    def truncate(self, tables: Sequence[TableInfo]) -> None:
        """Empty ``tables`` (after their changes so far)."""
        ...

    def execute(self, statement: sql.Composable, table: TableInfo | None = None) -> None:
        """Run a schema change of ``table`` after the changes so far."""
        ...

    def set_table_state(self, table: TableInfo, state: TableState, reason: str) -> None:
        """Record ``table``'s state in the open batch: durable with it, undone with it."""
        ...

    def savepoint(self, name: str) -> None:
        """Mark the point a later ``rollback_to(name)`` returns to (everything before stays)."""
        ...

    def rollback_to(self, name: str) -> None:
        """Undo everything since ``savepoint(name)``, buffered or sent."""
        ...

    def commit(
        self, lsn: int, commit_time: datetime | None, *, durable: bool = True
    ) -> dict[tuple[str, str], int]:
        """Commit the batch with ``lsn`` as the progress (``commit_time``: the source commit
        time of its last transaction, None when nothing of ours was in it); return the changes
        applied per (schema, table). A new batch starts. ``durable``: return only once the
        commit is flushed (it and every commit before it survive a crash); else it is visible
        at once and flushed soon after, as Postgres' asynchronous commit does."""
        ...

    def rollback(self) -> None:
        """Forget the open batch; a new one starts."""
        ...


def utc_text(moment: datetime) -> str:
    """A moment as a UTC timestamp without time zone (history columns' type)."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.isoformat(sep=" ")


@dataclass
class _HistoryChanges:
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


def copy_line(row: Sequence[Value]) -> str:
    line = "\t".join(["\\N" if v is None else v for v in row])
    if "\\" in line or "\n" in line or "\r" in line or line.count("\t") != len(row) - 1:
        line = "\t".join("\\N" if v is None else v.translate(_COPY_ESCAPES) for v in row)
    return line + "\n"


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
                " standard_conforming_strings on (warehouse.connect_replica sets both)"
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
        self._templates: dict[tuple[str, int, tuple[int, ...]], tuple[bytes, bytes, bytes]] = {}
        self._rows_at_savepoint: dict[str, Counter[tuple[str, str]]] = {}
        self._script_tables: set[str] = set()  # tables with statements in the unsent script
        # Send each table's statements on their own, so that a failure names its table.
        self.isolate = False
        self.history: set[str] = set() if history is None else history
        self._history_changes: dict[str, _HistoryChanges] = {}
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

    def _history(self, table: TableInfo, keys: Sequence[Key]) -> _HistoryChanges:
        """The table's history buffer with ``keys`` marked touched; flushed first when one of
        them is in it already (so a flush touches each key once: its statements commute)."""
        history = self._history_changes.get(table.qualified)
        if history is not None and (history.table is not table or history.keys & set(keys)):
            self._flush_table(table.qualified)
            history = None
        if history is None:
            names = [c.name for c in table.columns]
            positions = tuple(names.index(k) for k in table.primary_key)
            history = self._history_changes[table.qualified] = _HistoryChanges(table, positions)
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

    def _history_grew(self, history: _HistoryChanges, size: int) -> None:
        history.size += size
        history.changes += 1
        self._buffered += size
        self._batch_bytes += size
        if self._buffered >= FLUSH_BYTES:
            self.flush()

    def _flush_history(self, history: _HistoryChanges) -> None:
        """Close versions, add new versions of updated rows, then insert: set-based."""
        self._buffered -= history.size
        table = history.table
        self._rows[(table.schema, table.name)] += history.changes
        if history.closes:
            self._script_rows(table, "history close", (), history.closes)
        for changed, rows in history.updates.items():
            self._script_rows(table, "history update", changed, rows)
        if history.inserts:
            self._script_rows(table, "history insert", (), history.inserts)

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
            self._script_rows(table, "delete", (), grouped.deletes)
        for changed, rows in grouped.updates.items():
            self._script_rows(
                table,
                "update",
                changed,
                [(*(r[i] for i in changes.key_positions), *(r[i] for i in changed)) for r in rows],
            )
        if grouped.upserts:
            self._script_rows(table, "upsert", (), grouped.upserts)
        inserts = grouped.inserts
        if 0 < len(inserts) < COPY_MIN_ROWS:
            self._script_rows(table, "insert", (), inserts)
        elif inserts:
            text = "".join([copy_line(row) for row in inserts])  # while the last COPY runs
            self._send_script()
            self._copy_in_background(table, text)

    def _copy_in_background(self, table: TableInfo, text: str) -> None:
        """COPY ``text`` into ``table`` from a thread, after the COPY before it: the warehouse
        takes in one chunk while the next is gathered (the driver lets go of the GIL while it
        sends and waits). Its error is raised where the connection is next used."""
        statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
            table_identifier(table.schema, table.name), _column_list(table)
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
                sql.SQL("{} = {}").format(sql.Identifier(table.columns[i].name), _typed(table, i))
                for i in changed
            ),
            _key_match(table),
        )
        with self._refused({table.qualified}), self.conn.cursor() as cur:
            cur.execute(statement, [*(row[i] for i in changed), *old_key])

    def _script_rows(
        self, table: TableInfo, kind: str, changed: tuple[int, ...], rows: list[Row]
    ) -> None:
        """Add set-based statements over ``rows`` to the script (pages of STATEMENT_PAGE)."""
        head, row_template, tail = self._template(table, kind, changed)
        for start in range(0, len(rows), STATEMENT_PAGE):
            # Each value as a literal, inlined: psycopg2's mogrify per row was a fifth of the
            # replicator's CPU under OLTP load. Sound on this connection only: UTF-8 and
            # standard_conforming_strings (checked in __init__), text values (no NUL in them).
            page = rows[start : start + STATEMENT_PAGE]
            values = b",".join([row_template % _literals(row) for row in page])
            statement = head + values + tail
            self._script.append(statement)
            self._script_bytes += len(statement)
        self._script_tables.add(table.qualified)
        if self._script_bytes >= SCRIPT_BYTES or self.isolate:
            self._send_script()

    def _template(
        self, table: TableInfo, kind: str, changed: tuple[int, ...]
    ) -> tuple[bytes, bytes, bytes]:
        cache_key = (f"{kind} {table.qualified}", id(table), changed)
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
        """Turn the warehouse refusing a statement into an ApplyError naming its tables."""
        try:
            yield
        except psycopg2.Error as exc:
            named = exc.diag.table_name
            if named and exc.diag.schema_name:  # constraint errors name their table
                tables = {f"{exc.diag.schema_name}.{named}"}
            raise ApplyError(set(tables), exc) from exc


def _literals(row: Row) -> tuple[bytes, ...]:
    """Each value of ``row`` as an SQL literal (a standard string, UTF-8; NULL for None)."""
    return tuple(
        [b"NULL" if v is None else b"'" + v.encode().replace(b"'", b"''") + b"'" for v in row]
    )


def _column_list(table: TableInfo) -> sql.Composed:
    return sql.SQL(", ").join(sql.Identifier(c.name) for c in table.columns)


def _typed(table: TableInfo, position: int) -> sql.Composed:
    type_sql = table.columns[position].type_sql
    # An explicit cast to VARCHAR(n) cuts longer values silently: cast to plain varchar, so
    # that storing into the column refuses them (TRUNCATECOLUMNS cuts them before, on purpose).
    if type_sql.startswith("character varying("):
        type_sql = "character varying"
    return sql.SQL("%s::{}").format(sql.SQL(type_sql))


def _key_match(table: TableInfo) -> sql.Composed:
    """``k1 = %s::type AND ...`` over the primary key."""
    names = [c.name for c in table.columns]
    return sql.SQL(" AND ").join(
        sql.SQL("{} = {}").format(sql.Identifier(k), _typed(table, names.index(k)))
        for k in table.primary_key
    )


def statement_parts(
    table: TableInfo, kind: str, changed: tuple[int, ...]
) -> tuple[sql.Composable, sql.Composable, sql.Composable]:
    """(head, one row of VALUES with placeholders, tail) of a set-based statement."""
    ident = table_identifier(table.schema, table.name)
    names = [c.name for c in table.columns]
    keys = [names.index(k) for k in table.primary_key]

    def values_row(positions: Sequence[int], typed: bool) -> sql.Composable:
        return sql.SQL("({})").format(
            sql.SQL(", ").join(_typed(table, i) if typed else sql.Placeholder() for i in positions)
        )

    def alias(positions: Sequence[int]) -> sql.Composable:
        return sql.SQL(", ").join(sql.Identifier(names[i]) for i in positions)

    key_join = sql.SQL(" AND ").join(
        sql.SQL("t.{0} = v.{0}").format(sql.Identifier(names[i])) for i in keys
    )
    if kind.startswith("history "):
        return _history_statement_parts(table, kind, changed, values_row, alias, key_join)
    if kind == "delete":
        return (
            sql.SQL("DELETE FROM {} AS t USING (VALUES ").format(ident),
            values_row(keys, typed=True),
            sql.SQL(") AS v ({}) WHERE {}").format(alias(keys), key_join),
        )
    if kind == "update":
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
        if kind == "upsert"
        else sql.SQL(""),
    )


_TIME = sql.SQL("%s::timestamp")


def _history_statement_parts(
    table: TableInfo,
    kind: str,
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
    if kind == "history insert":
        return (
            sql.SQL("INSERT INTO {} ({}, _record_create_time) VALUES ").format(
                ident, alias(range(len(names)))
            ),
            sql.SQL("({}, %s)").format(sql.SQL(", ").join(sql.Placeholder() for _ in names)),
            sql.SQL(""),
        )
    if kind == "history close":
        return (
            sql.SQL(
                "UPDATE {} AS t SET _record_is_active = false, _record_delete_time = v.zetl_time"
                " FROM (VALUES "
            ).format(ident),
            sql.SQL("({}, {})").format(sql.SQL(", ").join(_typed(table, i) for i in keys), _TIME),
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
            sql.SQL(", ").join(_typed(table, i) for i in [*keys, *changed]), _TIME
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
