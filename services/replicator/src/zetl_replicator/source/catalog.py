"""The source's catalog queries: its tables (with columns, keys, identity and kind) and the
types a Relation message names by oid."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg2.extensions

from zetl_replicator.source.tables import ColumnInfo, TableInfo
from zetl_replicator.sync.datafilter import DataFilter

# Ordinary and partitioned tables and their partitions (each is reported: zero-ETL fails every
# table declarative partitioning affects), unlogged ones too (so they are reported, never
# published). Foreign tables, views and materialized views are not tables zero-ETL looks at. A
# table with no columns still has a row (the LEFT JOINs), so that it is reported rather than
# skipped.
_TABLES_SQL = r"""
SELECT n.nspname, c.relname, c.relreplident, a.attname,
       format_type(a.atttypid, a.atttypmod),
       CASE WHEN t.typnamespace = 'pg_catalog'::regnamespace THEN t.typname
            ELSE t.typname || ' (user-defined)' END,
       a.attnotnull,
       coalesce(a.attnum = ANY (i.indkey), false),
       c.relkind = 'p',
       (SELECT ri.indisprimary FROM pg_index ri WHERE ri.indrelid = c.oid AND ri.indisreplident),
       c.relpersistence,
       (SELECT rn.nspname || '.' || r.relname FROM pg_class r
          JOIN pg_namespace rn ON rn.oid = r.relnamespace
         WHERE c.relispartition AND r.oid = pg_partition_root(c.oid))
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                         AND a.attgenerated = ''
LEFT JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_index i ON i.indrelid = c.oid AND i.indisprimary
WHERE c.relkind IN ('r', 'p')
  AND CASE WHEN %s::text[] IS NULL
           THEN n.nspname NOT IN ('pg_catalog', 'information_schema', 'zetl')
                AND n.nspname NOT LIKE 'pg\_%%'
           ELSE n.nspname = ANY (%s::text[]) END
  AND (%s::text IS NULL OR c.relname = %s)
ORDER BY n.nspname, c.relname, a.attnum
"""


def list_tables(
    conn: psycopg2.extensions.connection,
    schemas: Sequence[str] | None,
    data_filter: DataFilter | None = None,
) -> list[TableInfo]:
    """Every table of ``schemas`` (None: every schema but the system's and zetl's own) that
    the data filter (if any) replicates."""
    tables = _read_tables(conn, schemas, None)
    if data_filter is not None:
        database = conn.info.dbname
        tables = [t for t in tables if data_filter.replicates(database, t.schema, t.name)]
    return tables


def find_table(conn: psycopg2.extensions.connection, schema: str, name: str) -> TableInfo | None:
    """The table ``schema.name`` as ``conn``'s database has it, or None."""
    tables = _read_tables(conn, [schema], name)
    return tables[0] if tables else None


def _read_tables(
    conn: psycopg2.extensions.connection, schemas: Sequence[str] | None, name: str | None
) -> list[TableInfo]:
    with conn.cursor() as cur:
        listed = None if schemas is None else list(schemas)
        cur.execute(_TABLES_SQL, (listed, listed, name, name))
        rows = cur.fetchall()
    grouped: dict[tuple[str, str], list[tuple[Any, ...]]] = {}
    for row in rows:
        grouped.setdefault((row[0], row[1]), []).append(row)
    tables = []
    for (schema, table), cols in grouped.items():
        present = [c for c in cols if c[3] is not None]
        first = cols[0]
        tables.append(
            TableInfo(
                schema,
                table,
                columns=tuple(
                    ColumnInfo(str(c[3]), str(c[4]), str(c[5]), bool(c[6])) for c in present
                ),
                primary_key=tuple(str(c[3]) for c in present if c[7]),
                replica_identity=str(first[2]),
                identity_index_is_primary=first[9],
                partitioned=bool(first[8]),
                persistence=str(first[10]),
                partition_of=first[11],
            )
        )
    return tables


def type_of(conn: psycopg2.extensions.connection, type_oid: int, modifier: int) -> tuple[str, str]:
    """(format_type, typname) of a column type a Relation message names by oid and modifier."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT format_type(%s, %s), CASE WHEN typnamespace = 'pg_catalog'::regnamespace"
            " THEN typname ELSE typname || ' (user-defined)' END FROM pg_type WHERE oid = %s",
            (type_oid, modifier, type_oid),
        )
        row = cur.fetchone()
    if row is None:
        return f"unknown type {type_oid}", f"unknown type {type_oid}"
    return str(row[0]), str(row[1])


def table_oids(conn: psycopg2.extensions.connection) -> dict[tuple[str, str], int]:
    """Every ordinary and partitioned table's oid, by (schema, name)."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT n.nspname, c.relname, c.oid FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p')"
        )
        return {(str(s), str(t)): int(oid) for s, t, oid in cur.fetchall()}


def schema_exists(conn: psycopg2.extensions.connection, schema: str) -> bool:
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,))
        return cur.fetchone() is not None


def ddl_capture_installed(conn: psycopg2.extensions.connection, triggers: Sequence[str]) -> bool:
    """Whether the source database has every one of ``triggers`` (event triggers), enabled."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM pg_event_trigger WHERE evtname = ANY (%s) AND evtenabled <> 'D'",
            (list(triggers),),
        )
        row = cur.fetchone()
    return row is not None and int(row[0]) == len(triggers)
