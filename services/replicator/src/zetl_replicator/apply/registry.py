"""The registry of replicated tables: which tables changes are applied to, and where.

It holds the replicated tables in the replica's shape, the LSN each table's copy was taken at
(changes committed before it are in the copy), the paused tables (ResyncRequired: their changes
are not applied), the tables kept in HISTORY_MODE's form, the Relation messages seen so far,
and the routing of a change's relation to its replica table. The apply loop, the table sync and
the session read and change it only through these methods.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

import psycopg2.extensions

from zetl.errors import DataError
from zetl.integration import TableState
from zetl_replicator.destination.history import history_tables, without_history_columns
from zetl_replicator.source import catalog, pgoutput
from zetl_replicator.source.tables import TableInfo
from zetl_replicator.state.options import DatabaseOptions
from zetl_replicator.state.store import StateStore, TableStatus

# States whose tables take no changes: not replicated, or with no source left.
NOT_APPLIED = frozenset({TableState.FAILED, TableState.DROPPED_SOURCE})
DROPPED_SOURCE_REASON = "dropped on the source: its history is kept (HISTORY_MODE)"
# AUTO_REMEDIATION re-copies a remediable Failed table once it has been Failed this long.
AUTO_REMEDIATION_SECONDS = 60.0
AUTO_REMEDIATION_REASON = "AUTO_REMEDIATION: copied again"


class TableRegistry:
    def __init__(self) -> None:
        self.tables: dict[str, TableInfo] = {}  # replicated, by "schema.table"
        self.sync_lsn: dict[str, int] = {}  # changes before this LSN are in the table's copy
        self.paused: set[str] = set()  # ResyncRequired: changes are not applied
        self.relations: dict[int, pgoutput.Relation] = {}
        # Replica tables in HISTORY_MODE's form (the destination shares this set)
        self.history: set[str] = set()
        # The target database's options that shape how changes are applied
        self.options = DatabaseOptions()
        # relation id -> replica table (None: not applied), within the current transaction
        self._routes: dict[int, TableInfo | None] = {}
        self.auto_remediations = 0  # re-copies AUTO_REMEDIATION started

    # --- loading -----------------------------------------------------------------------------

    def load(
        self,
        store: StateStore,
        warehouse: psycopg2.extensions.connection,
        scope: tuple[str, ...] | None,
    ) -> None:
        """The replicated tables as the replica has them. Reads in ``store``'s current
        transaction mode (``in_open_transaction``: after a rollback to a savepoint undid a
        schema change, say)."""
        states = store.table_states()
        replica = {t.qualified: t for t in catalog.list_tables(warehouse, scope)}
        history = history_tables(warehouse)
        self.tables, self.sync_lsn, self.paused = {}, {}, set()
        self.history.clear()
        self._routes.clear()
        for name, status in states.items():
            if status.state in NOT_APPLIED or name not in replica:
                continue
            if name in history:  # replicated as the source has it: its columns and key
                self.tables[name] = without_history_columns(replica[name], history[name])
                self.history.add(name)
            else:
                self.tables[name] = replica[name]
            self.sync_lsn[name] = status.sync_lsn or 0
            if status.state == TableState.RESYNC_REQUIRED:
                self.paused.add(name)

    def start(self, tables: Iterable[TableInfo], lsn: int, *, history: bool) -> None:
        """After the initial copy: ``tables`` were copied at ``lsn``."""
        self.tables = {t.qualified: t.target() for t in tables}
        self.sync_lsn = dict.fromkeys(self.tables, lsn)
        self.paused = set()
        self.history.clear()
        if history:
            self.history.update(self.tables)
        self._routes.clear()

    # --- changes of membership -----------------------------------------------------------------

    def copied(self, table: TableInfo, lsn: int, *, history: bool) -> None:
        """``table`` was (re)copied at ``lsn``: replicated from there, no longer paused."""
        name = table.qualified
        self.tables[name] = table.target()
        if history:
            self.history.add(name)
        else:
            self.history.discard(name)
        self.sync_lsn[name] = lsn
        self.paused.discard(name)
        self._routes.clear()

    def pause(self, name: str) -> None:
        """Stop applying the table's changes until it is copied again."""
        self.paused.add(name)
        self._routes.clear()

    def stop(self, name: str) -> None:
        """The table no longer replicates (not eligible any more): nothing applied to it."""
        self.tables.pop(name, None)
        self._routes.clear()

    def drop(self, name: str) -> None:
        """The table is gone from the replication altogether."""
        self.tables.pop(name, None)
        self.paused.discard(name)
        self.sync_lsn.pop(name, None)
        self._routes.clear()

    def rename(self, name: str, table: TableInfo) -> None:
        """The table ``name`` was renamed in place: the same table, under ``table``'s name."""
        self.tables[table.qualified] = table
        self.tables.pop(name, None)
        self.sync_lsn[table.qualified] = self.sync_lsn.pop(name, 0)
        for names in (self.paused, self.history):
            if name in names:
                names.discard(name)
                names.add(table.qualified)
        self._routes.clear()

    def auto_remediate(self, store: StateStore, status: TableStatus) -> bool:
        """AUTO_REMEDIATION: a table the warehouse refused (its changes or its copy) is asked
        for a re-copy by itself once it has been Failed for AUTO_REMEDIATION_SECONDS (the
        wait keeps a value that is refused again from being copied in a loop). True: asked."""
        if not (self.options.auto_remediation and status.apply_failed):
            return False
        if (datetime.now(UTC) - status.updated_at).total_seconds() < AUTO_REMEDIATION_SECONDS:
            return False
        if not store.request_resync(status.schema, status.name, AUTO_REMEDIATION_REASON):
            return False
        self.auto_remediations += 1
        return True

    # --- transitions of a table that leaves the source ---------------------------------------

    def dropped_source(self, store: StateStore, schema: str, name: str) -> None:
        """A table in HISTORY_MODE's form was dropped on the source: as zero-ETL does, its
        history stays in the replica, queryable, in state DroppedSource; nothing more is
        applied to it."""
        self.drop(f"{schema}.{name}")
        store.set_table_state(schema, name, TableState.DROPPED_SOURCE, DROPPED_SOURCE_REASON)

    def deleted(
        self,
        store: StateStore,
        schema: str,
        name: str,
        *,
        resync: bool = False,
        reason: str | None = None,
    ) -> None:
        """The table is gone from the replica: Deleted (dropped on the source, left out of the
        data filter), or ResyncDeleted (deleted to be copied again, under a new name, say). Its
        last transition stays in the state change log."""
        self.drop(f"{schema}.{name}")
        state = TableState.RESYNC_DELETED if resync else TableState.DELETED
        store.forget_table(schema, name, state, reason)

    def reshape(self, name: str, table: TableInfo) -> None:
        """A schema change gave the replica table a new shape."""
        self.tables[name] = table
        self._routes.clear()

    # --- relations and routing ---------------------------------------------------------------

    def remember(self, relation: pgoutput.Relation) -> None:
        self.relations[relation.relation_id] = relation
        self._routes.clear()

    def relations_snapshot(self) -> dict[int, pgoutput.Relation]:
        return dict(self.relations)

    def restore_relations(self, relations: dict[int, pgoutput.Relation]) -> None:
        self.relations = relations
        self._routes.clear()

    def new_transaction(self) -> None:
        """Routes hold within one source transaction (they depend on its commit LSN)."""
        self._routes.clear()

    def route(self, relation_id: int, final_lsn: int) -> TableInfo | None:
        """The replica table a change of a transaction committing at ``final_lsn`` goes to,
        or None when it must not be applied (paused, or already in the table's copy)."""
        if relation_id in self._routes:
            return self._routes[relation_id]
        relation = self.relations.get(relation_id)
        if relation is None:
            raise DataError(f"change for relation {relation_id} before its Relation message")
        name = f"{relation.namespace}.{relation.name}"
        table = self.tables.get(name)
        if name in self.paused or final_lsn < self.sync_lsn.get(name, 0):
            table = None  # paused, or committed before this table's copy was taken: in it
        self._routes[relation_id] = table
        return table

    def target_table(self, name: str, final_lsn: int) -> TableInfo | None:
        """The replica table a change of ``name`` committing at ``final_lsn`` goes to, or None
        when it must not be applied (as ``route``, by the table's name)."""
        table = self.tables.get(name)
        if table is None or name in self.paused or final_lsn < self.sync_lsn.get(name, 0):
            return None
        return table

    def copies_newer_than(self, lsn: int) -> bool:
        """Whether some table's copy was taken after ``lsn``."""
        return any(copied > lsn for copied in self.sync_lsn.values())
