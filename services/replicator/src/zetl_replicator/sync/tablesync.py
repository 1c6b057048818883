"""Table sync: the initial copy, a table's re-copy (resync), and discovery between
transactions (new tables, resync requests, tables that became ineligible or went away).

A copy is taken at a slot's exported snapshot and marked Synced at the slot's consistent
point in the same warehouse transaction as its rows: the stream then skips the table's changes
that committed before that point (they are in the copy).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import psycopg2
import psycopg2.errors
import psycopg2.extensions
import psycopg2.extras
import psycopg2.sql

from zetl.errors import DataError
from zetl.integration import TableState
from zetl_replicator.apply.captured_ddl import EVENT_TRIGGERS
from zetl_replicator.apply.registry import NOT_APPLIED, TableRegistry
from zetl_replicator.config import ReplicatorConfig
from zetl_replicator.destination.ddl import ensure_schema, refusal_reason
from zetl_replicator.destination.history import is_history_table
from zetl_replicator.destination.interface import raise_if_exhausted
from zetl_replicator.destination.replica import connect_replica
from zetl_replicator.source import catalog, pgoutput, server
from zetl_replicator.source.tables import TableInfo
from zetl_replicator.state.options import read_options
from zetl_replicator.state.store import PostgresStateStore, TableStatus
from zetl_replicator.sync.copy import copy_table

log = logging.getLogger(__name__)

RESYNC_RETRY_SECONDS = 60.0


class CopyRefusedError(Exception):
    """The replica refused a table's rows during its copy (a value zero-ETL does not take)."""


class SourceRefusedError(Exception):
    """The source would not publish a table (its reason is the message)."""


class TableSync:
    """Copies tables into the replica and keeps the set of replicated tables current.

    ``store`` is on the replica connection the apply loop's destination also uses: copies
    and discovery run between its batches, never inside one.
    """

    def __init__(
        self,
        config: ReplicatorConfig,
        registry: TableRegistry,
        store: PostgresStateStore,
        src: psycopg2.extensions.connection,
        state_changed: Callable[[], None],
    ) -> None:
        self.config = config
        self.registry = registry
        self.store = store
        self.src = src
        self.warehouse = store.conn
        self.state_changed = state_changed
        self.resync_failed_at: dict[str, float] = {}  # table -> when its last resync failed
        # Source table oid -> the (schema, name) the replica has it under: a captured RENAME
        # TABLE names the table by oid and its new name only.
        self.replica_names: dict[int, tuple[str, str]] = {}
        self.ddl_capture = False  # whether the source captures DDL into the stream

    def replica_name(self, oid: int) -> tuple[str, str] | None:
        """The (schema, name) the replica has the source table ``oid`` under (None: unknown)."""
        return self.replica_names.get(oid)

    def renamed(self, oid: int, name: tuple[str, str]) -> None:
        """The source table ``oid`` was renamed in place in the replica."""
        self.replica_names[oid] = name

    def reload(self, *, in_open_transaction: bool = False) -> None:
        """Load the replicated tables as the replica has them (``in_open_transaction``: inside
        the destination's open batch, e.g. after a rollback to a savepoint undid a schema
        change)."""
        store = self.store
        with store.in_open_transaction() if in_open_transaction else store.transaction():
            self.registry.load(store, self.warehouse, self.config.scope)

    def read_options(self) -> None:
        self.registry.options = read_options(self.warehouse)

    def _failed(self, table: TableInfo, reason: str, **how: bool) -> None:
        self.store.set_table_state(table.schema, table.name, TableState.FAILED, reason, **how)
        self.state_changed()

    # --- initial copy ------------------------------------------------------------------------

    def initial_sync(self, replication: psycopg2.extras.LogicalReplicationConnection) -> int:
        """Create the slot, copy every eligible table at its snapshot; return where to stream."""
        config, store = self.config, self.store
        # No progress stored: any slot of ours is left from a copy that never finished.
        server.drop_slot(self.src, config.slot)
        eligible = self._classify()
        published = server.published_tables(self.src, config.publication)
        refused = server.publish(
            self.src, config.publication, [t for t in eligible if t.qualified not in published]
        )
        if refused:
            with store.transaction():
                for table in eligible:
                    if table.qualified in refused:
                        reason = f"the source refused to publish it: {refused[table.qualified]}"
                        store.set_table_state(table.schema, table.name, TableState.FAILED, reason)
                        log.warning(
                            "table not replicated",
                            extra={"table": table.qualified, "reason": reason},
                        )
            eligible = [t for t in eligible if t.qualified not in refused]
        point = server.create_slot(replication, config.slot, temporary=False)
        log.info(
            "initial copy started",
            extra={
                "tables": len(eligible),
                "consistent_point": pgoutput.lsn_to_str(point.consistent_point),
            },
        )

        copy_refused: dict[str, str] = {}

        def copy_one(table: TableInfo) -> None:
            conn = connect_replica(
                config.warehouse_url, config.replica_database, config.stall_seconds
            )
            try:
                started = time.monotonic()
                try:
                    rows = copy_synced(config.source_url, point, table, PostgresStateStore(conn))
                except CopyRefusedError as exc:
                    copy_refused[table.qualified] = str(exc)
                    return
                log.info(
                    "table copied",
                    extra={
                        "table": table.qualified,
                        "rows": rows,
                        "seconds": round(time.monotonic() - started, 3),
                    },
                )
            finally:
                conn.close()

        with store.transaction(), self.warehouse.cursor() as cur:
            for schema in sorted({t.schema for t in eligible}):
                ensure_schema(cur, schema)
        with ThreadPoolExecutor(max_workers=config.copy_workers) as pool:
            list(pool.map(copy_one, eligible))
        if copy_refused:
            with store.transaction():
                for table in eligible:
                    if table.qualified in copy_refused:
                        reason = copy_refused[table.qualified]
                        store.set_table_state(
                            table.schema, table.name, TableState.FAILED, reason, apply_failed=True
                        )
                        log.warning(
                            "table failed", extra={"table": table.qualified, "reason": reason}
                        )
            eligible = [t for t in eligible if t.qualified not in copy_refused]
        store.set_progress(config.slot, point.consistent_point, None)
        self.registry.start(
            eligible, point.consistent_point, history=read_options(self.warehouse).history_mode
        )
        return point.consistent_point

    def _classify(self) -> list[TableInfo]:
        """Record every source table's state: Failed with the reason, or Initializing."""
        eligible = []
        with self.store.transaction():
            for table in catalog.list_tables(
                self.src, self.config.scope, self.config.table_filter()
            ):
                problem = table.problem()
                if problem:
                    self.store.set_table_state(table.schema, table.name, TableState.FAILED, problem)
                    log.warning(
                        "table not replicated", extra={"table": table.qualified, "reason": problem}
                    )
                else:
                    self.store.set_table_state(table.schema, table.name, TableState.INITIALIZING)
                    eligible.append(table)
        return eligible

    # --- re-copy -----------------------------------------------------------------------------

    def resync(self, table: TableInfo) -> None:
        """Copy one table again (or for the first time) while the slot keeps its place.

        A temporary slot exports a snapshot at LSN Y, later than anything applied so far; the
        table is replaced by its content at Y, and the stream then skips this table's changes
        from transactions that committed before Y: they are in the copy.
        """
        config, warehouse = self.config, self.warehouse
        if table.qualified not in server.published_tables(self.src, config.publication):
            refused = server.publish(self.src, config.publication, [table])
            if refused:
                raise SourceRefusedError(
                    f"the source refused to publish it: {refused[table.qualified]}"
                )
        with self.store.transaction():
            self.store.set_table_state(table.schema, table.name, TableState.INITIALIZING, "copying")
            with warehouse.cursor() as cur:
                ensure_schema(cur, table.schema)
        temporary = server.connect_replication(config.source_url)
        try:
            with self.store.transaction():  # the copy and its Synced state, or neither
                point = server.create_slot(
                    temporary, f"{config.slot}_sync_{uuid.uuid4().hex[:8]}", temporary=True
                )
                rows = copy_synced(config.source_url, point, table, self.store)
                history = is_history_table(warehouse, table.schema, table.name)
        finally:
            temporary.close()
        self.registry.copied(table, point.consistent_point, history=history)
        self.state_changed()
        log.info("table re-copied", extra={"table": table.qualified, "rows": rows})

    # --- discovery ---------------------------------------------------------------------------

    def maintain(self) -> None:
        """Between transactions: pick up new tables, resync requests and eligibility changes."""
        registry, store = self.registry, self.store
        states = store.table_states()
        self.read_options()
        listed = catalog.list_tables(self.src, self.config.scope, self.config.table_filter())
        present = {t.qualified for t in listed}
        in_flight = self._renames_in_flight(states)
        dropped_schemas = set()
        for name, gone in states.items():
            if (
                name not in present
                and name not in in_flight
                and gone.state != TableState.DROPPED_SOURCE
            ):
                self._drop_gone(gone)
                dropped_schemas.add(gone.schema)
        self._drop_schemas_gone(dropped_schemas - {t.schema for t in listed})
        for table in listed:
            if table.qualified in in_flight:
                continue  # renamed on the source: the stream renames it in place
            status = states.get(table.qualified)
            if status is not None and status.apply_failed:
                if not registry.auto_remediate(self.store, status):
                    continue  # the warehouse refused its changes: re-copied on request only
                self.state_changed()
                log.info("AUTO_REMEDIATION: copying again", extra={"table": table.qualified})
            problem = table.problem()
            # DroppedSource: a new table of the old name is copied afresh.
            replicated = status is not None and status.state not in NOT_APPLIED
            if problem:
                if replicated:
                    # It was replicated and no longer can be (its primary key dropped, its
                    # replica identity changed): stop applying it and take it out of the
                    # publication, or the source itself refuses its UPDATEs and DELETEs.
                    server.drop_from_publication(self.src, self.config.publication, table)
                    registry.stop(table.qualified)
                if status is None or status.reason != problem or replicated:
                    self._failed(table, problem)
                    log.warning(
                        "table not replicated", extra={"table": table.qualified, "reason": problem}
                    )
                continue
            # ResyncRequired resyncs by itself, as zero-ETL does (a resync that failed, on a
            # dependent view say, is tried again after RESYNC_RETRY_SECONDS).
            retry_at = self.resync_failed_at.get(table.qualified, 0.0) + RESYNC_RETRY_SECONDS
            needs_copy = (
                not replicated
                or (status is not None and status.resync_requested)
                or (status is not None and status.state == TableState.INITIALIZING)
                or (
                    status is not None
                    and status.state == TableState.RESYNC_REQUIRED
                    and time.monotonic() >= retry_at
                )
            )
            if needs_copy:
                self._copy_again(table)

    def _renames_in_flight(self, states: dict[str, TableStatus]) -> set[str]:
        """The old and new names of the tables renamed on the source whose captured RENAME
        has not reached the replica yet (discovery leaves them alone), and the oid of every
        replicated table (as its current name on the source gives it)."""
        self.ddl_capture = catalog.ddl_capture_installed(self.src, EVENT_TRIGGERS)
        oids = catalog.table_oids(self.src)
        self.replica_names = {
            oid: name for oid, name in self.replica_names.items() if ".".join(name) in states
        }
        known = set(self.replica_names.values())
        for status in states.values():
            key = (status.schema, status.name)
            if key in oids and key not in known:
                self.replica_names.setdefault(oids[key], key)
        if not self.ddl_capture:
            return set()  # renames reach the replica as a new table and a dropped one
        in_flight: set[str] = set()
        for (schema, name), oid in oids.items():
            old = self.replica_names.get(oid)
            if old is not None and old[0] == schema and old[1] != name:
                in_flight |= {".".join(old), f"{schema}.{name}"}
        return in_flight

    def _drop_schemas_gone(self, schemas: set[str]) -> None:
        """DROP SCHEMA (or its RENAME) on the source: the schema goes from the replica too,
        once its tables are gone."""
        for schema in sorted(schemas):
            if catalog.schema_exists(self.src, schema):
                continue
            try:
                with self.store.transaction(), self.warehouse.cursor() as cur:
                    cur.execute(
                        psycopg2.sql.SQL("DROP SCHEMA IF EXISTS {}").format(
                            psycopg2.sql.Identifier(schema)
                        )
                    )
            except psycopg2.errors.DependentObjectsStillExist:
                log.warning("schema kept: objects in the replica remain", extra={"schema": schema})
                continue
            log.info("schema dropped: no longer on the source", extra={"schema": schema})

    def _copy_again(self, table: TableInfo) -> None:
        try:
            self.resync(table)
        except CopyRefusedError as exc:
            self._failed(table, str(exc), apply_failed=True)
            log.warning("table failed", extra={"table": table.qualified, "reason": str(exc)})
        except SourceRefusedError as exc:
            self.warehouse.rollback()
            self._failed(table, str(exc))
            log.warning(
                "table not replicated", extra={"table": table.qualified, "reason": str(exc)}
            )
        except DataError as exc:  # a dependent view on a table whose shape changed
            self.warehouse.rollback()
            self.resync_failed_at[table.qualified] = time.monotonic()
            self.registry.pause(table.qualified)
            self.store.set_table_state(
                table.schema, table.name, TableState.RESYNC_REQUIRED, str(exc)
            )
            self.state_changed()
            log.warning("resync failed", extra={"table": table.qualified, "reason": str(exc)})

    def _drop_gone(self, status: TableStatus) -> None:
        """A table dropped on the source, renamed or moved to another schema (its new name is
        copied as a new table), or left out of the data filter: as zero-ETL does, it goes from
        the replica too. Its changes still on their way need not be applied: it is going."""
        name = status.qualified
        if name in self.registry.history and (
            catalog.find_table(self.src, status.schema, status.name) is None
        ):
            self.registry.dropped_source(self.store, status.schema, status.name)
            self.state_changed()
            log.info("table dropped on the source: its history is kept", extra={"table": name})
            return
        self.registry.drop(name)
        gone = TableInfo(status.schema, status.name, (), ())
        if status.state != TableState.FAILED:
            # Still published when only the data filter left it out (a dropped one is not).
            server.drop_from_publication(self.src, self.config.publication, gone)
        try:
            with self.store.transaction():
                with self.warehouse.cursor() as cur:
                    cur.execute(
                        psycopg2.sql.SQL("DROP TABLE IF EXISTS {}").format(
                            psycopg2.sql.Identifier(status.schema, status.name)
                        )
                    )
                self.registry.deleted(self.store, status.schema, status.name)
        except psycopg2.errors.DependentObjectsStillExist as exc:
            reason = (
                "dropped, renamed or filtered out on the source, but objects in the replica"
                f" database depend on it: {(exc.diag.message_detail or '').replace(chr(10), '; ')}"
            )
            if status.reason != reason:
                self._failed(gone, reason)
            return
        self.state_changed()
        log.info("table dropped: no longer on the source", extra={"table": name})


def copy_synced(
    source_url: str,
    point: server.SnapshotPoint,
    table: TableInfo,
    store: PostgresStateStore,
) -> int:
    """Copy ``table`` as of the slot's snapshot and mark it Synced at the slot's consistent
    point, in one transaction of the store's connection (committed here unless inside the
    store's ``transaction()``): changes before that point are in the copy."""
    warehouse = store.conn
    try:
        options = read_options(warehouse, commit=False)
        rows = copy_table(source_url, point.snapshot, table, warehouse, options)
    except psycopg2.Error as exc:
        warehouse.rollback()
        raise_if_exhausted(exc)
        raise CopyRefusedError(f"copy refused: {refusal_reason(exc)}") from exc
    store.set_table_state(
        table.schema,
        table.name,
        TableState.SYNCED,
        sync_lsn=point.consistent_point,
        reset_rows=True,
    )
    return rows
