"""The destination interface: what the apply loop writes to, whatever the warehouse is.

A destination holds one open batch at a time. Changes go in with ``insert``/``update``/
``delete``/``truncate``; ``commit(lsn)`` makes the whole batch durable *together with* the LSN it
covers, which is what makes replication exactly-once. ``postgres.PostgresDestination`` is the
one the replicator runs; ``zetl_replicator.testing.MemoryDestination`` keeps the same contract
for unit tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Protocol

import psycopg2
from psycopg2 import sql

from zetl.db import ConnectionLost
from zetl.errors import first_line
from zetl.integration import TableState
from zetl_replicator.apply.netchange import Row
from zetl_replicator.source.tables import TableInfo


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


class WarehouseExhausted(ConnectionLost):
    """The warehouse as a whole cannot take changes now (its disk is full, it is out of memory
    or connections, or its storage fails): not a table refusing them. Retried as a lost
    connection is, from the last committed position, so no table fails and no change is
    skipped; the error is the integration's last error meanwhile."""


# SQLSTATE class 53 (insufficient resources: disk full, out of memory, too many connections)
# and 58030 (I/O error): conditions of the server, which heal when space or memory is back.
_EXHAUSTED_CLASS, _IO_ERROR = "53", "58030"


def raise_if_exhausted(error: psycopg2.Error) -> None:
    """Raise ``WarehouseExhausted`` when ``error`` is the warehouse short of a resource."""
    code = error.pgcode or ""
    if code.startswith(_EXHAUSTED_CLASS) or code == _IO_ERROR:
        raise WarehouseExhausted(
            f"the warehouse cannot take changes now ({first_line(error)}, SQLSTATE {code});"
            " retrying from the last committed position"
        ) from error


class Destination(Protocol):
    """Where the apply loop's changes go: one open batch at a time.

    Changes accumulate in the open batch and become durable only with ``commit``, together with
    the LSN they cover; ``rollback`` forgets them. Within a batch, changes must take effect in
    the order given for the same row, and a table's changes before ``truncate``, ``execute``
    and ``savepoint`` come before them. Lost connections raise ``zetl.db.ConnectionLost``, and a
    warehouse out of disk or memory its subclass ``WarehouseExhausted``; a
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

    def rename_table(self, table: TableInfo, new_name: str) -> None:
        """RENAME TABLE in the open batch, after the changes buffered before it: the replica
        table and its state take ``new_name``."""
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
