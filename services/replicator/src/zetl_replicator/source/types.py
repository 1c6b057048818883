"""AWS's mapping of PostgreSQL types to Redshift's, and the text form values travel in.

Which source types zero-ETL replicates, the replica's type for each, and which replica columns
TRUNCATECOLUMNS cuts; the session settings under which both sides read and write values as
the same text.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from zetl_replicator.source.tables import TableInfo

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
