"""Zero-ETL's eligibility rules: which tables and column types it replicates, and why not.

Zero-ETL replicates a table only if it has a primary key (that its replica identity carries) and
only types from its mapping table; anything else is reported ``Failed`` with the reason and left
out of the publication (a table without a key in a publication would make the source refuse
UPDATE and DELETE on it). ``problems`` is the one place these rules are written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from zetl_replicator.source.types import is_supported

if TYPE_CHECKING:
    from zetl_replicator.source.tables import TableInfo

MAX_PRECISION, MAX_SCALE = 38, 37  # Redshift DECIMAL


_NUMERIC = re.compile(r"^numeric(?:\((\d+),(-?\d+)\))?$")


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
class Ineligibility:
    """One reason zero-ETL would not replicate a table, and how to fix it."""

    subject: str  # "schema.table" or "schema.table.column"
    reason: str
    fix: str


def problems(table: TableInfo) -> list[Ineligibility]:
    """Every zero-ETL eligibility rule this table breaks: the one place they are written."""
    if table.partitioned or table.partition_of:
        # Zero-ETL fails every table declarative partitioning affects: the partitioned table
        # and each of its partitions.
        root = table.partition_of or table.qualified
        kind = f"partition of {root}" if table.partition_of else "partitioned table"
        return [
            Ineligibility(
                table.qualified,
                f"{kind}: zero-ETL does not replicate tables affected by declarative"
                " partitioning (the partitioned table and all its partitions fail)",
                f"leave {root} and its partitions out (the data filter) or replicate a"
                " non-partitioned table",
            )
        ]
    if table.persistence != "p":
        # Unlogged and temporary tables write no WAL: logical decoding never sees their
        # changes, and the source refuses them in a publication.
        kind = "unlogged" if table.persistence == "u" else "temporary"
        return [
            Ineligibility(
                table.qualified,
                f"{kind} table: zero-ETL replicates only permanent (logged) tables",
                f"ALTER TABLE {_sql_name(table)} SET LOGGED;"
                if kind == "unlogged"
                else f"leave {table.qualified} out of the data filter",
            )
        ]
    found = []
    if not table.primary_key:
        found.append(
            Ineligibility(
                table.qualified,
                "table has no primary key",
                f"ALTER TABLE {_sql_name(table)} ADD PRIMARY KEY (...);",
            )
        )
    identity = _identity_problem(table)
    if identity:
        found.append(
            Ineligibility(
                table.qualified,
                identity,
                f"ALTER TABLE {_sql_name(table)} REPLICA IDENTITY DEFAULT;",
            )
        )
    for c in table.columns:
        problem = type_problem(c.type_sql, c.type_name)
        if problem == "unsupported data type":
            found.append(
                Ineligibility(
                    f"{table.qualified}.{c.name}",
                    f"unsupported data type: {c.name} ({c.type_sql})",
                    "change the column to a supported type (text, numeric, timestamptz...)",
                )
            )
        elif problem:
            found.append(
                Ineligibility(
                    f"{table.qualified}.{c.name}",
                    f"unsupported numeric: {c.name} ({problem})",
                    f"ALTER TABLE {_sql_name(table)} ALTER COLUMN {quote_identifier(c.name)}"
                    " TYPE numeric(p,s);  -- p <= 38",
                )
            )
    return found


def _identity_problem(table: TableInfo) -> str | None:
    # Updates and deletes are applied by primary key: the old-key tuple pgoutput sends must
    # carry it. DEFAULT (the primary key) and FULL (every column) do; NOTHING carries no
    # key, and USING INDEX carries only that index's columns.
    # With rds.replica_identity_full = 1 (zero-ETL's parameter group; emulated locally by an
    # event trigger) such tables are FULL and never get here.
    if table.replica_identity == "n":
        return "replica identity is NOTHING: set REPLICA IDENTITY DEFAULT or FULL"
    if table.replica_identity == "i" and not table.identity_index_is_primary:
        if table.identity_index_is_primary is None:
            return (
                "replica identity USING INDEX whose index was dropped (acts as NOTHING):"
                " set REPLICA IDENTITY DEFAULT or FULL"
            )
        return (
            "replica identity USING INDEX other than the primary key:"
            " set REPLICA IDENTITY DEFAULT or FULL"
        )
    return None


def _sql_name(table: TableInfo) -> str:
    """The table's name as SQL, quoted where needed (for the fixes people copy and run)."""
    return f"{quote_identifier(table.schema)}.{quote_identifier(table.name)}"


def quote_identifier(name: str) -> str:
    """``name`` as a SQL identifier: as is when Postgres would read it back unchanged."""
    if re.fullmatch(r"[a-z_][a-z0-9_$]*", name):
        return name
    return '"' + name.replace('"', '""') + '"'
