"""Test doubles that keep the replicator's contracts, for unit tests without a database:
the state store and the destination in memory, a receiver's position, and a clock that moves
only when told."""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from psycopg2 import sql

from zetl.integration import TableState
from zetl_replicator.apply.netchange import Row
from zetl_replicator.source.tables import TableInfo
from zetl_replicator.state.store import Progress, TableStatus


class MemoryStateStore:
    """The state store in memory, with the Postgres store's behaviour: for unit tests."""

    def __init__(self) -> None:
        self.progresses: dict[str, Progress] = {}
        self.tables: dict[str, TableStatus] = {}
        self._depth = 0

    @contextmanager
    def transaction(self) -> Iterator[None]:
        saved = (copy.copy(self.progresses), copy.copy(self.tables))
        self._depth += 1
        try:
            yield
        except BaseException:
            if self._depth == 1:
                self.progresses, self.tables = saved
            raise
        finally:
            self._depth -= 1

    @contextmanager
    def in_open_transaction(self) -> Iterator[None]:
        yield

    def progress(self, slot: str) -> Progress | None:
        return self.progresses.get(slot)

    def set_progress(self, slot: str, lsn: int, commit_time: datetime | None) -> None:
        before = self.progresses.get(slot)
        if commit_time is None and before is not None:
            commit_time = before.source_commit_time
        self.progresses[slot] = Progress(lsn, commit_time, datetime.now(UTC))

    def forget_progress(self, slot: str) -> None:
        self.progresses.pop(slot, None)

    def table_states(self) -> dict[str, TableStatus]:
        return dict(self.tables)

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
        now = datetime.now(UTC)
        before = self.tables.get(f"{schema}.{name}")
        if before is None:
            self.tables[f"{schema}.{name}"] = TableStatus(
                schema, name, state, reason, sync_lsn, 0, False, now, apply_failed
            )
            return
        self.tables[before.qualified] = replace(
            before,
            state=state,
            reason=reason,
            apply_failed=apply_failed,
            sync_lsn=sync_lsn or before.sync_lsn,
            rows_applied=0 if reset_rows else before.rows_applied,
            resync_requested=False if state == TableState.SYNCED else before.resync_requested,
            updated_at=now,
        )

    def forget_table(
        self,
        schema: str,
        name: str,
        state: TableState = TableState.DELETED,
        reason: str | None = None,
    ) -> None:
        self.tables.pop(f"{schema}.{name}", None)

    def rename_table(self, schema: str, name: str, new_name: str) -> None:
        before = self.tables.pop(f"{schema}.{name}", None)
        if before is not None:
            self.tables[f"{schema}.{new_name}"] = replace(before, name=new_name)

    def request_resync(self, schema: str, name: str, reason: str = "resync requested") -> bool:
        before = self.tables.get(f"{schema}.{name}")
        if before is None:
            return False
        self.tables[before.qualified] = replace(
            before,
            resync_requested=True,
            state=TableState.RESYNC_REQUIRED,
            reason=reason,
            apply_failed=False,
            updated_at=datetime.now(UTC),
        )
        return True

    def request_resync_of_all(self, reason: str) -> None:
        now = datetime.now(UTC)
        for name, before in self.tables.items():
            if before.state not in (TableState.FAILED, TableState.DROPPED_SOURCE):
                self.tables[name] = replace(
                    before,
                    resync_requested=True,
                    state=TableState.RESYNC_REQUIRED,
                    reason=reason,
                    updated_at=now,
                )


class MemoryDestination:
    """The destination contract over dicts: a batch, savepoints, commit with the LSN. Rows
    are kept by their first column's value (the tables of unit tests have a one-column key);
    schema changes are refused."""

    def __init__(self) -> None:
        self.change_time = ""
        self.isolate = False
        self.committed: dict[str, dict[str, Row]] = {}
        self.batch: dict[str, dict[str, Row]] = {}
        self.savepoints: dict[str, dict[str, dict[str, Row]]] = {}
        self.states: dict[str, tuple[TableState, str]] = {}
        self.lsn = 0
        self.changes = 0  # in the open batch
        self._counts: Counter[tuple[str, str]] = Counter()  # the same, per table
        self.durable: list[bool] = []  # each commit's durable flag

    @property
    def pending_bytes(self) -> int:
        return 0

    def _rows(self, table: TableInfo) -> dict[str, Row]:
        if table.qualified not in self.batch:
            self.batch[table.qualified] = dict(self.committed.get(table.qualified, {}))
        return self.batch[table.qualified]

    def insert(self, table: TableInfo, row: Row, size: int) -> None:
        self._rows(table)[str(row[0])] = row
        self._counted(table)

    def update(self, table: TableInfo, old: Row | None, row: Row, size: int) -> None:
        rows = self._rows(table)
        rows.pop(str((old or row)[0]), None)
        rows[str(row[0])] = row
        self._counted(table)

    def delete(self, table: TableInfo, old: Row, size: int) -> None:
        self._rows(table).pop(str(old[0]), None)
        self._counted(table)

    def _counted(self, table: TableInfo) -> None:
        self.changes += 1
        self._counts[(table.schema, table.name)] += 1

    def truncate(self, tables: Sequence[TableInfo]) -> None:
        for table in tables:
            self._rows(table).clear()

    def execute(self, statement: sql.Composable, table: TableInfo | None = None) -> None:
        raise AssertionError("no schema change here")

    def set_table_state(self, table: TableInfo, state: TableState, reason: str) -> None:
        self.states[table.qualified] = (state, reason)

    def rename_table(self, table: TableInfo, new_name: str) -> None:
        renamed = f"{table.schema}.{new_name}"
        if table.qualified in self.states:
            self.states[renamed] = self.states.pop(table.qualified)
        for tables in (self.batch, self.committed):
            if table.qualified in tables:
                tables[renamed] = tables.pop(table.qualified)

    def savepoint(self, name: str) -> None:
        self.savepoints[name] = {t: dict(rows) for t, rows in self.batch.items()}

    def rollback_to(self, name: str) -> None:
        self.batch = {t: dict(rows) for t, rows in self.savepoints[name].items()}

    def commit(
        self, lsn: int, commit_time: datetime | None, *, durable: bool = True
    ) -> dict[tuple[str, str], int]:
        self.committed.update(self.batch)
        self.batch, self.savepoints, self.lsn = {}, {}, lsn
        self.durable.append(durable)
        counts, self._counts, self.changes = dict(self._counts), Counter(), 0
        return counts

    def rollback(self) -> None:
        self.batch, self.savepoints, self.changes, self._counts = {}, {}, 0, Counter()

    def keys(self) -> list[int]:
        """The committed rows' keys, every table's (integers), sorted."""
        return sorted(int(k) for rows in self.committed.values() for k in rows)


@dataclass
class ReceivedPosition:
    """The receiver's side of the apply loop (``apply.loop.StreamPosition``), without a stream."""

    flush_lsn: int = 0
    received_lsn: int = 0


class ManualClock:
    """Monotonic seconds that move only with ``advance``: the apply loop's clock in tests."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start  # far from 0: "never" (0.0) is long ago, as with time.monotonic

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
