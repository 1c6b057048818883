"""The warehouse side: the replica database, its durable state store, and table DDL.

Layout (DESIGN.md): replicated tables keep their source schema, names and types in the replica
database; the replicator's own state lives beside them in schema ``zetl``:

- ``zetl.replication_progress``: per slot, the end LSN of the last source transaction applied
  (written in the same warehouse transaction as the data it covers: exactly-once);
- ``zetl.table_state``: per table, its state, the reason, the LSN its copy was taken at and the
  rows applied; ``zetl.integration_table_state`` is the view people query (modelled on
  Redshift's SVV_INTEGRATION_TABLE_STATE).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import psycopg2.extensions
from psycopg2 import sql

from zetl.db import connect, with_database
from zetl.errors import DataError
from zetl_replicator.catalog import TEXT_FORMAT_OPTIONS, ColumnInfo, TableInfo
from zetl_replicator.pgoutput import lsn_to_str, str_to_lsn

STATE_SCHEMA = "zetl"


class TableState(StrEnum):
    SYNCED = "Synced"
    INITIALIZING = "Initializing"
    RESYNC_REQUIRED = "ResyncRequired"
    FAILED = "Failed"


_STATE_DDL = """
CREATE SCHEMA IF NOT EXISTS zetl;
CREATE TABLE IF NOT EXISTS zetl.replication_progress (
    slot_name text PRIMARY KEY,
    applied_lsn pg_lsn NOT NULL,
    source_commit_time timestamptz,
    applied_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS zetl.table_state (
    schema_name text NOT NULL,
    table_name text NOT NULL,
    state text NOT NULL
        CHECK (state IN ('Synced', 'Initializing', 'ResyncRequired', 'Failed')),
    reason text,
    sync_lsn pg_lsn,
    rows_applied bigint NOT NULL DEFAULT 0,
    resync_requested boolean NOT NULL DEFAULT false,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (schema_name, table_name)
);
CREATE OR REPLACE VIEW zetl.integration_table_state AS
SELECT s.schema_name, s.table_name, s.state, s.reason,
       CASE WHEN s.state = 'Synced' THEN greatest(s.sync_lsn, p.applied_lsn)
            ELSE s.sync_lsn END AS last_applied_lsn,
       s.rows_applied, s.updated_at
FROM zetl.table_state s
LEFT JOIN (SELECT max(applied_lsn) AS applied_lsn FROM zetl.replication_progress) p ON true;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA zetl TO PUBLIC;
GRANT SELECT ON ALL TABLES IN SCHEMA zetl TO PUBLIC;
"""


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

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"


def replica_url(warehouse_url: str, replica_database: str) -> str:
    return with_database(warehouse_url, replica_database)


def connect_replica(warehouse_url: str, replica_database: str) -> psycopg2.extensions.connection:
    return connect(replica_url(warehouse_url, replica_database), options=TEXT_FORMAT_OPTIONS)


def connect_replica_read_only(
    warehouse_url: str, replica_database: str
) -> psycopg2.extensions.connection:
    """A read-only connection to the replica database; DataError when ``zetl replicate`` has
    not created it (or its state store) yet. Never creates anything."""
    admin = connect(warehouse_url)
    try:
        with admin.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (replica_database,))
            exists = cur.fetchone() is not None
    finally:
        admin.close()
    not_initialised = DataError(
        f"replica database {replica_database} is not initialised: run zetl replicate"
    )
    if not exists:
        raise not_initialised
    replica = connect_replica(warehouse_url, replica_database)
    replica.set_session(readonly=True)
    with replica.cursor() as cur:
        cur.execute(
            "SELECT to_regclass('zetl.table_state') IS NOT NULL"
            " AND to_regclass('zetl.replication_progress') IS NOT NULL"
        )
        row = cur.fetchone()
    replica.rollback()
    if not (row and row[0]):
        replica.close()
        raise not_initialised
    return replica


def ensure_replica_database(warehouse_url: str, replica_database: str) -> None:
    """Create the replica database (from the maintenance database) and the state store."""
    admin = connect(warehouse_url)
    admin.autocommit = True
    try:
        with admin.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (replica_database,))
            if cur.fetchone() is None:
                cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(replica_database)))
    finally:
        admin.close()
    conn = connect_replica(warehouse_url, replica_database)
    try:
        with conn, conn.cursor() as cur:
            # One replicator at a time creates the store (CREATE ... IF NOT EXISTS can race).
            cur.execute("SELECT pg_advisory_xact_lock(hashtext('zetl.state_store'))")
            cur.execute(_STATE_DDL)
    finally:
        conn.close()


def read_progress(conn: psycopg2.extensions.connection, slot: str) -> Progress | None:
    with conn.cursor() as cur:
        cur.execute(
            "SELECT applied_lsn::text, source_commit_time, applied_at"
            " FROM zetl.replication_progress WHERE slot_name = %s",
            (slot,),
        )
        row = cur.fetchone()
    conn.commit()
    if row is None:
        return None
    return Progress(str_to_lsn(row[0]), row[1], row[2])


_PROGRESS_SQL = (
    "INSERT INTO zetl.replication_progress AS p (slot_name, applied_lsn, source_commit_time)"
    " VALUES (%s, %s::pg_lsn, %s) ON CONFLICT (slot_name) DO UPDATE SET"
    " applied_lsn = excluded.applied_lsn,"
    " source_commit_time = coalesce(excluded.source_commit_time, p.source_commit_time),"
    " applied_at = now()"
)


def write_progress(
    cur: psycopg2.extensions.cursor, slot: str, lsn: int, commit_time: datetime | None
) -> None:
    cur.execute(progress_statement(cur, slot, lsn, commit_time))


def progress_statement(
    cur: psycopg2.extensions.cursor, slot: str, lsn: int, commit_time: datetime | None
) -> bytes:
    """The statement ``write_progress`` runs, to send along with others in one round trip."""
    return cur.mogrify(_PROGRESS_SQL, (slot, lsn_to_str(lsn), commit_time))


def read_table_states(
    conn: psycopg2.extensions.connection, *, commit: bool = True
) -> dict[str, TableStatus]:
    """Every table's state; ``commit=False`` reads inside the caller's open transaction."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT schema_name, table_name, state, reason, sync_lsn::text, rows_applied,"
            " resync_requested, updated_at FROM zetl.table_state"
        )
        rows = cur.fetchall()
    if commit:
        conn.commit()
    states = {}
    for r in rows:
        status = TableStatus(
            r[0], r[1], TableState(r[2]), r[3], str_to_lsn(r[4]) if r[4] else None, r[5], r[6], r[7]
        )
        states[status.qualified] = status
    return states


def set_table_state(
    cur: psycopg2.extensions.cursor,
    schema: str,
    name: str,
    state: TableState,
    reason: str | None = None,
    sync_lsn: int | None = None,
    *,
    reset_rows: bool = False,
) -> None:
    """Record a table's state (in the caller's transaction)."""
    cur.execute(
        "INSERT INTO zetl.table_state AS t (schema_name, table_name, state, reason, sync_lsn)"
        " VALUES (%s, %s, %s, %s, %s::pg_lsn) ON CONFLICT (schema_name, table_name) DO UPDATE SET"
        " state = excluded.state, reason = excluded.reason,"
        " sync_lsn = coalesce(excluded.sync_lsn, t.sync_lsn),"
        " rows_applied = CASE WHEN %s THEN 0 ELSE t.rows_applied END,"
        " resync_requested = CASE WHEN excluded.state = 'Synced' THEN false"
        "                         ELSE t.resync_requested END,"
        " updated_at = now()",
        (schema, name, str(state), reason, lsn_to_str(sync_lsn) if sync_lsn else None, reset_rows),
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


def request_resync(conn: psycopg2.extensions.connection, schema: str, name: str) -> bool:
    """Ask the replicator to re-copy a table; False when the table is not known."""
    with conn, conn.cursor() as cur:
        cur.execute(
            "UPDATE zetl.table_state SET resync_requested = true, state = 'ResyncRequired',"
            " reason = 'resync requested', updated_at = now()"
            " WHERE schema_name = %s AND table_name = %s",
            (schema, name),
        )
        return cur.rowcount == 1


def table_identifier(schema: str, name: str) -> sql.Identifier:
    return sql.Identifier(schema, name)


def create_table_sql(table: TableInfo, *, with_key: bool) -> sql.Composed:
    columns = [_column_sql(c) for c in table.columns]
    if with_key:
        columns.append(primary_key_sql(table))
    return sql.SQL("CREATE TABLE {} ({})").format(
        table_identifier(table.schema, table.name), sql.SQL(", ").join(columns)
    )


def primary_key_sql(table: TableInfo) -> sql.Composed:
    return sql.SQL("PRIMARY KEY ({})").format(
        sql.SQL(", ").join(sql.Identifier(k) for k in table.primary_key)
    )


def _column_sql(column: ColumnInfo) -> sql.Composed:
    # format_type() output is Postgres' own spelling of a built-in type: safe as SQL text.
    return sql.SQL("{} {}{}").format(
        sql.Identifier(column.name),
        sql.SQL(column.type_sql),
        sql.SQL(" NOT NULL" if column.not_null else ""),
    )


def ensure_schema(cur: psycopg2.extensions.cursor, schema: str) -> None:
    cur.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
    cur.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO PUBLIC").format(sql.Identifier(schema)))


def read_only_grants(cur: psycopg2.extensions.cursor, table: TableInfo) -> None:
    """Everyone may read a replicated table; only its owner, the replicator, may change it."""
    cur.execute(
        sql.SQL("REVOKE ALL ON {} FROM PUBLIC").format(table_identifier(table.schema, table.name))
    )
    cur.execute(
        sql.SQL("GRANT SELECT ON {} TO PUBLIC").format(table_identifier(table.schema, table.name))
    )
