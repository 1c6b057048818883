"""What the source holds: its tables, their columns and keys, and which zero-ETL can replicate.

Zero-ETL replicates a table only if it has a primary key (that its replica identity carries) and
only types from its mapping table; anything else is reported ``Failed`` with the reason and left
out of the publication (a table without a key in a publication would make the source refuse
UPDATE and DELETE on it). ``TableInfo.problems`` is the one place these rules are written.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import psycopg2.extensions

from zetl_replicator.sync.datafilter import DataFilter

# Session settings for every connection that reads or writes column values as text, so both
# sides agree on the text form (timestamps in UTC, ISO dates, exact floats, hex bytea), and
# UTF-8 with standard strings, the two things the destination's own SQL literals rely on.
TEXT_FORMAT_OPTIONS = (
    "-c TimeZone=UTC -c DateStyle=ISO -c IntervalStyle=postgres "
    "-c extra_float_digits=3 -c bytea_output=hex "
    "-c client_encoding=UTF8 -c standard_conforming_strings=on"
)

VARCHAR_MAX = "character varying(65535)"

# AWS's mapping of PostgreSQL types to Redshift, for the pg_catalog types zero-ETL replicates
# (RDS User Guide, zero-ETL "data type differences"): typname -> the Redshift type as Postgres
# spells it, where Postgres has that type; None: the source's own type (Redshift's SUPER,
# VARBYTE, DECIMAL(20,3) for money have no Postgres type that takes the source's values
# unchanged). docs/replication.md has the whole table.
TARGET_TYPES: dict[str, str | None] = {
    "int2": None,
    "int4": None,
    "int8": None,
    "numeric": None,  # DECIMAL(p,s): Postgres' numeric(p,s)
    "float4": None,
    "float8": None,
    "bool": None,
    "bpchar": None,  # CHAR(n)
    "varchar": VARCHAR_MAX,
    "text": VARCHAR_MAX,
    "date": None,
    "time": "character varying(19)",
    "timetz": "character varying(22)",
    "timestamp": "timestamp without time zone",
    "timestamptz": "timestamp with time zone",
    "interval": None,
    "uuid": "character varying(36)",
    "json": None,  # SUPER
    "jsonb": None,  # SUPER
    "bytea": None,  # VARBYTE
    "bit": None,  # VARBYTE
    "varbit": None,  # VARBYTE
    "inet": "character varying(19)",
    "cidr": "character varying(19)",
    "macaddr": "character varying(17)",
    "money": None,  # DECIMAL(20,3); its text form ("$1,234.56") is no numeric literal
    "xml": VARCHAR_MAX,
    "tsvector": VARCHAR_MAX,
    "tsquery": VARCHAR_MAX,
    "oid": "bigint",
    "xid": "bigint",
    "cid": "bigint",
}
MAX_PRECISION, MAX_SCALE = 38, 37  # Redshift DECIMAL
_NUMERIC = re.compile(r"^numeric(?:\((\d+),(-?\d+)\))?$")


# Source types whose values can outgrow the replica's VARCHAR(n) (TRUNCATECOLUMNS applies to
# them); the others map to a varchar that always holds their text form.
_TRUNCATABLE = frozenset({"varchar", "text", "xml", "tsvector", "tsquery"})
_VARCHAR_SIZE = re.compile(r"^character varying\((\d+)\)$")


def varchar_sizes(table: TableInfo) -> tuple[tuple[int, int], ...]:
    """(position, size) of the columns of a replica-typed ``table`` whose values TRUNCATECOLUMNS
    cuts to the column's size."""
    sizes = []
    for position, column in enumerate(table.columns):
        match = _VARCHAR_SIZE.match(column.type_sql)
        if match and column.type_name in _TRUNCATABLE:
            sizes.append((position, int(match.group(1))))
    return tuple(sizes)


def is_supported(type_name: str) -> bool:
    """A type zero-ETL replicates: one of the mapping, or an array of one (SUPER)."""
    element = type_name[1:] if type_name.startswith("_") else type_name
    return element in TARGET_TYPES


def target_type(type_sql: str, type_name: str) -> str:
    """The replica's type for a source column type (``format_type`` spelling)."""
    if type_name.startswith("_"):
        return type_sql  # arrays: SUPER on Redshift, the array itself here
    return TARGET_TYPES.get(type_name) or type_sql


def type_problem(type_sql: str, type_name: str) -> str | None:
    """Why zero-ETL would fail a column of this type, or None."""
    if not is_supported(type_name):
        return "unsupported data type"
    if type_name == "numeric":
        match = _NUMERIC.match(type_sql)
        if match is None or match.group(1) is None:
            return "numeric without precision and scale (Redshift needs DECIMAL(p,s))"
        precision, scale = int(match.group(1)), int(match.group(2))
        if precision > MAX_PRECISION or scale > MAX_SCALE or scale < 0:
            return f"{type_sql}: Redshift DECIMAL allows precision <= 38, scale 0..37"
    return None


@dataclass(frozen=True)
class ColumnInfo:
    name: str
    type_sql: str  # format_type(): "numeric(12,2)", "character varying(40)"
    type_name: str  # pg_type.typname: "numeric", "varchar"
    not_null: bool

    def target(self) -> ColumnInfo:
        """This column as the replica has it: AWS's Redshift type where Postgres has it."""
        mapped = target_type(self.type_sql, self.type_name)
        return self if mapped == self.type_sql else replace(self, type_sql=mapped)


@dataclass(frozen=True)
class Ineligibility:
    """One reason zero-ETL would not replicate a table, and how to fix it."""

    subject: str  # "schema.table" or "schema.table.column"
    reason: str
    fix: str


@dataclass(frozen=True)
class TableInfo:
    schema: str
    name: str
    columns: tuple[ColumnInfo, ...]
    primary_key: tuple[str, ...]
    replica_identity: str = "d"  # pg_class.relreplident: d(efault), f(ull), i(ndex), n(othing)
    # With replica identity 'i': whether that index is the primary key's (None: it was dropped).
    identity_index_is_primary: bool | None = None
    partitioned: bool = False
    persistence: str = "p"  # pg_class.relpersistence: p(ermanent), u(nlogged), t(emporary)

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def sql_name(self) -> str:
        """The table's name as SQL, quoted where needed (for the fixes people copy and run)."""
        return f"{quote_identifier(self.schema)}.{quote_identifier(self.name)}"

    def column(self, name: str) -> ColumnInfo | None:
        return next((c for c in self.columns if c.name == name), None)

    def problem(self) -> str | None:
        """Why zero-ETL would not replicate this table (the ``Failed`` reason), or None."""
        reasons = [p.reason for p in self.problems()]
        return "; ".join(reasons) if reasons else None

    def problems(self) -> list[Ineligibility]:
        """Every zero-ETL eligibility rule this table breaks: the one place they are written."""
        if self.partitioned:
            # Changes arrive per partition and ATTACH/DETACH moves rows without any change
            # message: not replicated rather than replicated wrong.
            return [
                Ineligibility(
                    self.qualified,
                    "partitioned table: zetl replicates ordinary tables only (its partitions"
                    " are not replicated either)",
                    f"leave {self.qualified} out (the data filter) or replicate a"
                    " non-partitioned table",
                )
            ]
        if self.persistence != "p":
            # Unlogged and temporary tables write no WAL: logical decoding never sees their
            # changes, and the source refuses them in a publication.
            kind = "unlogged" if self.persistence == "u" else "temporary"
            return [
                Ineligibility(
                    self.qualified,
                    f"{kind} table: zero-ETL replicates only permanent (logged) tables",
                    f"ALTER TABLE {self.sql_name} SET LOGGED;"
                    if kind == "unlogged"
                    else f"leave {self.qualified} out of the data filter",
                )
            ]
        found = []
        if not self.primary_key:
            found.append(
                Ineligibility(
                    self.qualified,
                    "table has no primary key",
                    f"ALTER TABLE {self.sql_name} ADD PRIMARY KEY (...);",
                )
            )
        identity = self._identity_problem()
        if identity:
            found.append(
                Ineligibility(
                    self.qualified,
                    identity,
                    f"ALTER TABLE {self.sql_name} REPLICA IDENTITY DEFAULT;",
                )
            )
        for c in self.columns:
            problem = type_problem(c.type_sql, c.type_name)
            if problem == "unsupported data type":
                found.append(
                    Ineligibility(
                        f"{self.qualified}.{c.name}",
                        f"unsupported data type: {c.name} ({c.type_sql})",
                        "change the column to a supported type (text, numeric, timestamptz...)",
                    )
                )
            elif problem:
                found.append(
                    Ineligibility(
                        f"{self.qualified}.{c.name}",
                        f"unsupported numeric: {c.name} ({problem})",
                        f"ALTER TABLE {self.sql_name} ALTER COLUMN {quote_identifier(c.name)}"
                        " TYPE numeric(p,s);  -- p <= 38",
                    )
                )
        return found

    def target(self) -> TableInfo:
        """This table as the replica has it (column types as AWS maps them)."""
        return replace(self, columns=tuple(c.target() for c in self.columns))

    def _identity_problem(self) -> str | None:
        # Updates and deletes are applied by primary key: the old-key tuple pgoutput sends must
        # carry it. DEFAULT (the primary key) and FULL (every column) do; NOTHING carries no
        # key, and USING INDEX carries only that index's columns.
        if self.replica_identity == "n":
            return "replica identity is NOTHING: set REPLICA IDENTITY DEFAULT or FULL"
        if self.replica_identity == "i" and not self.identity_index_is_primary:
            if self.identity_index_is_primary is None:
                return (
                    "replica identity USING INDEX whose index was dropped (acts as NOTHING):"
                    " set REPLICA IDENTITY DEFAULT or FULL"
                )
            return (
                "replica identity USING INDEX other than the primary key:"
                " set REPLICA IDENTITY DEFAULT or FULL"
            )
        return None


def quote_identifier(name: str) -> str:
    """``name`` as a SQL identifier: as is when Postgres would read it back unchanged."""
    if re.fullmatch(r"[a-z_][a-z0-9_$]*", name):
        return name
    return '"' + name.replace('"', '""') + '"'


# Ordinary and partitioned tables (partitions are part of their parent), unlogged ones too (so
# they are reported, never published). Foreign tables, views and materialized views are not
# tables zero-ETL looks at. A table with no columns still has a row (the LEFT JOINs), so that
# it is reported rather than skipped.
_TABLES_SQL = r"""
SELECT n.nspname, c.relname, c.relreplident, a.attname,
       format_type(a.atttypid, a.atttypmod),
       CASE WHEN t.typnamespace = 'pg_catalog'::regnamespace THEN t.typname
            ELSE t.typname || ' (user-defined)' END,
       a.attnotnull,
       coalesce(a.attnum = ANY (i.indkey), false),
       c.relkind = 'p',
       (SELECT ri.indisprimary FROM pg_index ri WHERE ri.indrelid = c.oid AND ri.indisreplident),
       c.relpersistence
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                         AND a.attgenerated = ''
LEFT JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_index i ON i.indrelid = c.oid AND i.indisprimary
WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
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


@dataclass(frozen=True)
class Backfill:
    """What rows that existed before a column was added hold in it, as the source sees it."""

    known: bool  # False: not knowable from the catalog (the table must be copied again)
    value: str | None = None  # its text form; None: NULL


def added_column_backfill(
    conn: psycopg2.extensions.connection, schema: str, table: str, column: str
) -> Backfill:
    """ADD COLUMN ... DEFAULT v writes no WAL for the rows already there (Postgres keeps v in
    the catalog, ``attmissingval``), so no change message ever carries it: read it from there.
    A volatile default rewrote the table instead (no change messages either, and a value per
    row): that, or a default set after the column came, cannot be read back."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT a.atthasmissing, (a.attmissingval::text::text[])[1], d.adnum IS NOT NULL"
            " FROM pg_attribute a"
            " LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum"
            " WHERE a.attrelid = to_regclass(format('%%I.%%I', %s::text, %s::text))"
            " AND a.attname = %s AND NOT a.attisdropped",
            (schema, table, column),
        )
        row = cur.fetchone()
    if row is None:
        return Backfill(known=False)
    has_missing, missing, has_default = row
    if has_missing:
        return Backfill(known=True, value=missing)
    return Backfill(known=not has_default)


def is_renamed_in_place(
    conn: psycopg2.extensions.connection, schema: str, table: str, column: str
) -> bool:
    """Whether ``column`` can be a column renamed in place rather than one dropped and one
    added at the end: it is not the table's newest attribute, or no attribute was ever dropped.
    (A rename keeps the attribute number; a drop + add leaves a dropped attribute before the
    new one.) When unsure, False: the table is copied again, which is always right."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT a.attnum, (SELECT max(attnum) FROM pg_attribute WHERE attrelid = a.attrelid),"
            " (SELECT count(*) FROM pg_attribute WHERE attrelid = a.attrelid AND attisdropped)"
            " FROM pg_attribute a"
            " WHERE a.attrelid = to_regclass(format('%%I.%%I', %s::text, %s::text))"
            " AND a.attname = %s AND NOT a.attisdropped",
            (schema, table, column),
        )
        row = cur.fetchone()
    if row is None:
        return False
    attnum, newest, dropped = row
    return bool(attnum < newest or dropped == 0)
