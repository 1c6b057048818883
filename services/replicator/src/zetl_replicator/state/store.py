"""The replicator's durable state: where streaming resumes, and each table's state.

Every write of progress and table state goes through a ``StateStore``. The Postgres store
keeps them in the replica database, schema ``zetl`` (created by
``destination.replica.ensure_replica_database``, its schema in ``migrations``):

- ``zetl.replication_progress``: per slot, the end LSN of the last source transaction applied,
  written in the same warehouse transaction as the data it covers (exactly-once);
- ``zetl.table_state``: per table, its state, the reason, the LSN its copy was taken at and the
  rows applied. The monitor copies it into ``svv_integration_table_state`` of the warehouse
  database.

A write outside ``transaction()`` is committed at once; inside it, with the others when the
block ends (rolled back if it raises). Writes that must share the destination's open batch
(the progress at a commit, a table paused by a schema change) are taken as statements by the
destination (``progress_statement`` and friends), so that the SQL still lives here.
The memory store (``zetl_replicator.testing``) behaves the same, for unit tests.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import psycopg2.extensions

from zetl.integration import TableState
from zetl_replicator.source.pgoutput import lsn_to_str, str_to_lsn


@dataclass(frozen=True)
class Progress:
    applied_lsn: int
    source_commit_time: datetime | None
    applied_at: datetime


@dataclass(frozen=True)
class TableStatus:
    schema: str
    name: str
    state: TableState
    reason: str | None
    sync_lsn: int | None
    rows_applied: int
    resync_requested: bool
    updated_at: datetime
    apply_failed: bool = False

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"


class StateStore(Protocol):
    """Progress and table states, durable. Writes commit at once unless inside
    ``transaction()``, which commits them together (or none of them) when it ends."""

    def transaction(self) -> AbstractContextManager[None]:
        """Group the writes inside the block into one transaction."""
        ...

    def in_open_transaction(self) -> AbstractContextManager[None]:
        """Read and write inside the block in the transaction its owner has open (the
        destination's batch, say): neither committed nor rolled back here."""
        ...

    def progress(self, slot: str) -> Progress | None:
        """Where ``slot``'s streaming resumes (None: nothing applied yet, copy first)."""
        ...

    def set_progress(self, slot: str, lsn: int, commit_time: datetime | None) -> None:
        """Record that everything up to ``lsn`` is applied (``commit_time``: its source
        commit time, None keeps the one recorded)."""
        ...

    def forget_progress(self, slot: str) -> None:
        """Drop ``slot``'s progress: the next start copies every table afresh."""
        ...

    def table_states(self) -> dict[str, TableStatus]:
        """Every known table's state, by "schema.table"."""
        ...

    def set_table_state(
        self,
        schema: str,
        name: str,
        state: TableState,
        reason: str | None = None,
        *,
        sync_lsn: int | None = None,
        reset_rows: bool = False,
        apply_failed: bool = False,
    ) -> None:
        """Record a table's state. ``sync_lsn`` None keeps the recorded one; ``reset_rows``
        zeroes rows_applied (a fresh copy); Synced clears a resync request."""
        ...

    def forget_table(
        self,
        schema: str,
        name: str,
        state: TableState = TableState.DELETED,
        reason: str | None = None,
    ) -> None:
        """The table is no longer replicated (gone from the source): no state at all; its last
        transition (Deleted, or ResyncDeleted when it is copied again under another name) stays
        in the state change log."""
        ...

    def rename_table(self, schema: str, name: str, new_name: str) -> None:
        """The table was renamed in place (RENAME TABLE): its state under the new name."""
        ...

    def request_resync(self, schema: str, name: str, reason: str = "resync requested") -> bool:
        """Ask for a re-copy of the table (False: not known)."""
        ...

    def request_resync_of_all(self, reason: str) -> None:
        """Ask for a re-copy of every table that is not Failed or DroppedSource (``reason``:
        why)."""
        ...


_PROGRESS_SQL = (
    "INSERT INTO zetl.replication_progress AS p (slot_name, applied_lsn, source_commit_time)"
    " VALUES (%s, %s::pg_lsn, %s) ON CONFLICT (slot_name) DO UPDATE SET"
    " applied_lsn = excluded.applied_lsn,"
    " source_commit_time = coalesce(excluded.source_commit_time, p.source_commit_time),"
    " applied_at = now()"
)
_TABLE_STATE_SQL = (
    "INSERT INTO zetl.table_state AS t (schema_name, table_name, state, reason, sync_lsn,"
    " apply_failed) VALUES (%s, %s, %s, %s, %s::pg_lsn, %s)"
    " ON CONFLICT (schema_name, table_name) DO UPDATE SET"
    " state = excluded.state, reason = excluded.reason, apply_failed = excluded.apply_failed,"
    " sync_lsn = coalesce(excluded.sync_lsn, t.sync_lsn),"
    " rows_applied = CASE WHEN %s THEN 0 ELSE t.rows_applied END,"
    " resync_requested = CASE WHEN excluded.state = 'Synced' THEN false"
    "                         ELSE t.resync_requested END,"
    " updated_at = now();"
    " SELECT zetl.apply_visibility(%s, %s)"
)


class PostgresStateStore:
    """The state store in the replica database, over ``conn`` (the replicator's role)."""

    def __init__(self, conn: psycopg2.extensions.connection) -> None:
        self.conn = conn
        self._depth = 0

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self._depth += 1
        try:
            yield
        except BaseException:
            if self._depth == 1 and not self.conn.closed:
                self.conn.rollback()
            raise
        finally:
            self._depth -= 1
        if self._depth == 0:
            self.conn.commit()

    @contextmanager
    def in_open_transaction(self) -> Iterator[None]:
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1

    def _done(self) -> None:
        if self._depth == 0:
            self.conn.commit()

    # --- progress ----------------------------------------------------------------------------

    def progress(self, slot: str) -> Progress | None:
        with self.conn.cursor() as cur:
            cur.execute(
                "SELECT applied_lsn::text, source_commit_time, applied_at"
                " FROM zetl.replication_progress WHERE slot_name = %s",
                (slot,),
            )
            row = cur.fetchone()
        self._done()
        return None if row is None else Progress(str_to_lsn(row[0]), row[1], row[2])

    def set_progress(self, slot: str, lsn: int, commit_time: datetime | None) -> None:
        with self.conn.cursor() as cur:
            cur.execute(progress_statement(cur, slot, lsn, commit_time))
        self._done()

    def forget_progress(self, slot: str) -> None:
        with self.conn.cursor() as cur:
            cur.execute("DELETE FROM zetl.replication_progress WHERE slot_name = %s", (slot,))
        self._done()

    # --- tables ------------------------------------------------------------------------------

    def table_states(self) -> dict[str, TableStatus]:
        with self.conn.cursor() as cur:
            cur.execute(
                "SELECT schema_name, table_name, state, reason, sync_lsn::text, rows_applied,"
                " resync_requested, updated_at, apply_failed FROM zetl.table_state"
            )
            rows = cur.fetchall()
        self._done()
        states = {}
        for r in rows:
            status = TableStatus(
                r[0],
                r[1],
                TableState(r[2]),
                r[3],
                str_to_lsn(r[4]) if r[4] else None,
                r[5],
                r[6],
                r[7],
                r[8],
            )
            states[status.qualified] = status
        return states

    def set_table_state(
        self,
        schema: str,
        name: str,
        state: TableState,
        reason: str | None = None,
        *,
        sync_lsn: int | None = None,
        reset_rows: bool = False,
        apply_failed: bool = False,
    ) -> None:
        with self.conn.cursor() as cur:
            cur.execute(
                table_state_statement(
                    cur,
                    schema,
                    name,
                    state,
                    reason,
                    sync_lsn=sync_lsn,
                    reset_rows=reset_rows,
                    apply_failed=apply_failed,
                )
            )
        self._done()

    def forget_table(
        self,
        schema: str,
        name: str,
        state: TableState = TableState.DELETED,
        reason: str | None = None,
    ) -> None:
        with self.conn.cursor() as cur:
            # The update is what the state change log records; then the row goes.
            cur.execute(
                "UPDATE zetl.table_state SET state = %s, reason = %s"
                " WHERE schema_name = %s AND table_name = %s;"
                " DELETE FROM zetl.table_state WHERE schema_name = %s AND table_name = %s",
                (str(state), reason, schema, name, schema, name),
            )
        self._done()

    def rename_table(self, schema: str, name: str, new_name: str) -> None:
        with self.conn.cursor() as cur:
            cur.execute(
                "UPDATE zetl.table_state SET table_name = %s, updated_at = now()"
                " WHERE schema_name = %s AND table_name = %s",
                (new_name, schema, name),
            )
        self._done()

    def request_resync(self, schema: str, name: str, reason: str = "resync requested") -> bool:
        with self.conn.cursor() as cur:
            cur.execute(
                "UPDATE zetl.table_state SET resync_requested = true, state = 'ResyncRequired',"
                " reason = %s, apply_failed = false, updated_at = now()"
                " WHERE schema_name = %s AND table_name = %s",
                (reason, schema, name),
            )
            known = cur.rowcount == 1
            cur.execute("SELECT zetl.apply_visibility(%s, %s)", (schema, name))
        self._done()
        return known

    def request_resync_of_all(self, reason: str) -> None:
        with self.conn.cursor() as cur:
            cur.execute(
                "UPDATE zetl.table_state SET resync_requested = true, state = 'ResyncRequired',"
                " reason = %s, updated_at = now() WHERE state NOT IN ('Failed', 'DroppedSource')",
                (reason,),
            )
            cur.execute(
                "SELECT zetl.apply_visibility(schema_name, table_name) FROM zetl.table_state"
            )
        self._done()

    def refresh_visibility(self) -> None:
        """Grant or revoke reading each replicated table as its state and QUERY_ALL_STATES
        say (after the option changed)."""
        with self.conn.cursor() as cur:
            cur.execute(
                "SELECT zetl.apply_visibility(schema_name, table_name) FROM zetl.table_state"
            )
        self._done()


# Statements for writes that travel in someone else's transaction (the destination's batch).


def progress_statement(
    cur: psycopg2.extensions.cursor, slot: str, lsn: int, commit_time: datetime | None
) -> bytes:
    return cur.mogrify(_PROGRESS_SQL, (slot, lsn_to_str(lsn), commit_time))


def table_state_statement(
    cur: psycopg2.extensions.cursor,
    schema: str,
    name: str,
    state: TableState,
    reason: str | None = None,
    *,
    sync_lsn: int | None = None,
    reset_rows: bool = False,
    apply_failed: bool = False,
) -> bytes:
    return cur.mogrify(
        _TABLE_STATE_SQL,
        (
            schema,
            name,
            str(state),
            reason,
            lsn_to_str(sync_lsn) if sync_lsn else None,
            apply_failed,
            reset_rows,
            schema,
            name,
        ),
    )


def rows_applied_statement(
    cur: psycopg2.extensions.cursor, counts: dict[tuple[str, str], int]
) -> bytes | None:
    """One statement adding ``counts`` to the tables' rows_applied (None: nothing to add)."""
    if not counts:
        return None
    values = b",".join(
        cur.mogrify("(%s, %s, %s::bigint)", (schema, name, count))
        for (schema, name), count in counts.items()
    )
    return (
        b"UPDATE zetl.table_state AS t SET rows_applied = t.rows_applied + v.n,"
        b" updated_at = now() FROM (VALUES " + values + b") AS v (schema_name, table_name, n)"
        b" WHERE t.schema_name = v.schema_name AND t.table_name = v.table_name"
    )


def read_table_states(conn: psycopg2.extensions.connection) -> dict[str, TableStatus]:
    """Every table's state (for readers outside the replicator: the state store's own read)."""
    return PostgresStateStore(conn).table_states()
