"""The replica database: connecting to it, and creating it with its state store.

Layout (docs/architecture.md): replicated tables keep their source schema, names and types in
the replica database; the replicator's own state lives beside them in schema ``zetl``:

- ``zetl.replication_progress`` and ``zetl.table_state``: progress and table states, written
  only through the state store (``state/store.py``);
- ``zetl.integration``: the target database's options (``state/options.py``).
"""

from __future__ import annotations

import psycopg2.extensions
from psycopg2 import sql

from zetl.db import connect, with_database
from zetl.errors import DataError
from zetl_replicator.source.types import TEXT_FORMAT_OPTIONS
from zetl_replicator.state.migrations import migrate


def replica_url(warehouse_url: str, replica_database: str) -> str:
    return with_database(warehouse_url, replica_database)


def connect_replica(
    warehouse_url: str, replica_database: str, stall_seconds: float | None = None
) -> psycopg2.extensions.connection:
    """A connection to the replica database; ``stall_seconds``: see ``zetl.db.connect``."""
    return connect(
        replica_url(warehouse_url, replica_database),
        raise_lost=True,
        stall_seconds=stall_seconds,
        options=TEXT_FORMAT_OPTIONS,
    )


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


def redshift_collation(server_version: int) -> sql.Composable:
    """The replica database's encoding and collation, as Redshift behaves: UTF-8 only, and
    strings compare by their bytes (code point order), whatever the source's collation. From
    Postgres 17 the builtin C.UTF-8 locale (code point order, Unicode case mapping), before it
    the C locale."""
    if server_version >= 170000:
        return sql.SQL(
            "TEMPLATE template0 ENCODING 'UTF8' LOCALE_PROVIDER builtin BUILTIN_LOCALE 'C.UTF-8'"
            " LC_COLLATE 'C' LC_CTYPE 'C'"
        )
    return sql.SQL("TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'")


def ensure_replica_database(warehouse_url: str, replica_database: str) -> None:
    """Create the replica database (from the maintenance database) and bring its state store
    to the current version (``state.migrations``)."""
    admin = connect(warehouse_url, raise_lost=True)
    admin.autocommit = True
    try:
        with admin.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (replica_database,))
            if cur.fetchone() is None:
                cur.execute(
                    sql.SQL("CREATE DATABASE {} ").format(sql.Identifier(replica_database))
                    + redshift_collation(admin.server_version)
                )
    finally:
        admin.close()
    conn = connect_replica(warehouse_url, replica_database)
    try:
        migrate(conn)
    finally:
        conn.close()
