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
    "macaddr8": "character varying(23)",
    "name": "character varying(64)",
    "pg_lsn": "character varying(17)",
    "tid": "character varying(23)",
    "xid8": "numeric(20,0)",
    "jsonpath": VARCHAR_MAX,
    "txid_snapshot": VARCHAR_MAX,
    "pg_snapshot": VARCHAR_MAX,
    "refcursor": VARCHAR_MAX,
    "int2vector": None,  # SUPER
    "oidvector": None,  # SUPER
}


# Source types whose values can outgrow the replica's VARCHAR(n) or CHAR(n), counted in bytes
# as Redshift counts them (the replica checks it: destination.ddl); TRUNCATECOLUMNS cuts them.
# The others map to a varchar that always holds their text form.
BYTE_SIZED = frozenset(
    {"varchar", "text", "xml", "tsvector", "tsquery", "jsonpath", "txid_snapshot"}
    | {"pg_snapshot", "refcursor", "bpchar"}
)


_SIZED = re.compile(r"^(?:character varying|character)\((\d+)\)$")


def byte_size(type_sql: str, type_name: str) -> int | None:
    """The size in bytes Redshift gives a replica column (``type_sql``, AWS's type) of source
    type ``type_name``, where its values can outgrow it; None: they cannot."""
    match = _SIZED.match(type_sql)
    return int(match.group(1)) if match and type_name in BYTE_SIZED else None


def varchar_sizes(table: TableInfo) -> tuple[tuple[int, int], ...]:
    """(position, size in bytes) of the columns of a replica-typed ``table`` whose values
    TRUNCATECOLUMNS cuts to the column's size."""
    sizes = []
    for position, column in enumerate(table.columns):
        size = byte_size(column.type_sql, column.type_name)
        if size is not None:
            sizes.append((position, size))
    return tuple(sizes)


def cut_to_bytes(value: str, size: int) -> str:
    """``value`` cut to at most ``size`` bytes of UTF-8, on a character boundary
    (TRUNCATECOLUMNS: Redshift's VARCHAR(n) and CHAR(n) hold n bytes)."""
    if len(value) * 4 <= size:
        return value  # no UTF-8 character takes more than 4 bytes
    encoded = value.encode()
    if len(encoded) <= size:
        return value
    return encoded[:size].decode(errors="ignore")  # a character cut in two is left out


def is_supported(type_name: str) -> bool:
    """A type zero-ETL replicates: one of the mapping, or an array of one (SUPER)."""
    element = type_name[1:] if type_name.startswith("_") else type_name
    return element in TARGET_TYPES


def target_type(type_sql: str, type_name: str) -> str:
    """The replica's type for a source column type (``format_type`` spelling)."""
    if type_name.startswith("_"):
        return type_sql  # arrays: SUPER on Redshift, the array itself here
    return TARGET_TYPES.get(type_name) or type_sql
