"""What the source holds: its tables, their columns and keys, and which zero-ETL can replicate.

Zero-ETL replicates a table only if it has a primary key and only types from its mapping table;
anything else is reported ``Failed`` with the reason and left out of the publication (a table
without a key in a publication would make the source refuse UPDATE and DELETE on it).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass

import psycopg2.extensions

# Session settings for every connection that reads or writes column values as text, so both
# sides agree on the text form (timestamps in UTC, ISO dates, exact floats, hex bytea).
TEXT_FORMAT_OPTIONS = (
    "-c TimeZone=UTC -c DateStyle=ISO -c IntervalStyle=postgres "
    "-c extra_float_digits=3 -c bytea_output=hex"
)

# The pg_catalog types a zero-ETL integration maps to Redshift (conservatively: arrays,
# enums, composites, ranges, geometric, network, bit strings, money, xml... are left out).
SUPPORTED_TYPES = frozenset(
    {
        "int2",
        "int4",
        "int8",
        "numeric",
        "float4",
        "float8",
        "bool",
        "bpchar",
        "varchar",
        "text",
        "date",
        "time",
        "timetz",
        "timestamp",
        "timestamptz",
        "uuid",
        "json",
        "jsonb",
        "bytea",
    }
)


@dataclass(frozen=True)
class ColumnInfo:
    name: str
    type_sql: str  # format_type(): "numeric(12,2)", "character varying(40)"
    type_name: str  # pg_type.typname: "numeric", "varchar"
    not_null: bool


@dataclass(frozen=True)
class TableInfo:
    schema: str
    name: str
    columns: tuple[ColumnInfo, ...]
    primary_key: tuple[str, ...]
    replica_identity: str = "d"

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"

    def column(self, name: str) -> ColumnInfo | None:
        return next((c for c in self.columns if c.name == name), None)

    def problem(self) -> str | None:
        """Why zero-ETL would not replicate this table, or None when it would."""
        if not self.primary_key:
            return "table has no primary key"
        if self.replica_identity == "n":
            return "replica identity is NOTHING"
        unsupported = [
            f"{c.name} ({c.type_sql})" for c in self.columns if c.type_name not in SUPPORTED_TYPES
        ]
        if unsupported:
            return "unsupported data type: " + ", ".join(unsupported)
        return None


_TABLES_SQL = """
SELECT n.nspname, c.relname, c.relreplident, a.attname,
       format_type(a.atttypid, a.atttypmod),
       CASE WHEN t.typnamespace = 'pg_catalog'::regnamespace THEN t.typname
            ELSE t.typname || ' (user-defined)' END,
       a.attnotnull,
       coalesce(a.attnum = ANY (i.indkey), false)
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                    AND a.attgenerated = ''
JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_index i ON i.indrelid = c.oid AND i.indisprimary
WHERE c.relkind = 'r' AND NOT c.relispartition AND n.nspname = ANY (%s)
ORDER BY n.nspname, c.relname, a.attnum
"""


def list_tables(
    conn: psycopg2.extensions.connection, schemas: Sequence[str], include: Sequence[str] = ()
) -> list[TableInfo]:
    """Every ordinary table of ``schemas`` that matches the ``include`` filter (if any)."""
    with conn.cursor() as cur:
        cur.execute(_TABLES_SQL, (list(schemas),))
        rows = cur.fetchall()
    grouped: dict[tuple[str, str], list[tuple[object, ...]]] = {}
    for row in rows:
        grouped.setdefault((row[0], row[1]), []).append(row)
    tables = []
    for (schema, name), cols in grouped.items():
        if include and not any(fnmatch.fnmatchcase(f"{schema}.{name}", p) for p in include):
            continue
        columns = tuple(
            ColumnInfo(name=str(c[3]), type_sql=str(c[4]), type_name=str(c[5]), not_null=bool(c[6]))
            for c in cols
        )
        keys = tuple(str(c[3]) for c in cols if c[7])
        tables.append(TableInfo(schema, name, columns, keys, replica_identity=str(cols[0][2])))
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
