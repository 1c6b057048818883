"""The replica's tables as DDL: their columns with AWS's types, the checks that refuse the
values zero-ETL fails a table on (and the reason given when one does), keys and grants."""

from __future__ import annotations

import psycopg2.extensions
from psycopg2 import sql

from zetl.errors import first_line
from zetl_replicator.destination.history import HISTORY_COLUMNS_SQL
from zetl_replicator.destination.statements import table_identifier
from zetl_replicator.source.tables import ColumnInfo, TableInfo
from zetl_replicator.source.types import byte_size


def create_table_sql(table: TableInfo, *, with_key: bool, history: bool = False) -> sql.Composed:
    columns: list[sql.Composable] = [_column_sql(c) for c in table.columns]
    if history:
        columns.append(HISTORY_COLUMNS_SQL)
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
    return column_sql(column, not_null=column.not_null)


VALUE_CHECK_PREFIX = "zetl_value_"


# Values zero-ETL does not replicate (its table goes Failed), per source type: a CHECK on the
# replica column refuses them, and a refused change fails its table with the reason.
_VALUE_CHECKS: dict[str, tuple[str, str]] = {
    "numeric": ("nan", "{c} NOT IN ('NaN'::numeric, 'Infinity'::numeric, '-Infinity'::numeric)"),
    "timestamp": (
        "range",
        "isfinite({c}) AND {c} >= '0001-01-01'::timestamp AND {c} < '10000-01-01'::timestamp",
    ),
    "timestamptz": (
        "range",
        "isfinite({c}) AND {c} >= '0001-01-01 00:00:00+00'::timestamptz"
        " AND {c} < '10000-01-01 00:00:00+00'::timestamptz",
    ),
    # Redshift's DATE reaches 294,276 AD (and back to 4713 BC, as far as Postgres' own date).
    "date": ("date", "isfinite({c}) AND {c} < '294277-01-01'::date"),
    # Redshift's INTERVAL is YEAR TO MONTH or DAY TO SECOND: a value has months or days and
    # time, never both.
    "interval": (
        "interval",
        "isfinite({c}) AND (extract(year FROM {c}) = 0 AND extract(month FROM {c}) = 0"
        " OR extract(day FROM {c}) = 0 AND extract(hour FROM {c}) = 0"
        " AND extract(minute FROM {c}) = 0 AND extract(second FROM {c}) = 0)",
    ),
}


VALUE_RULES = {
    "nan": "NaN or Infinity in a numeric column",
    "range": "a B.C. timestamp, a year after 9999 or ±infinity",
    "date": "a date after 294,276 AD or ±infinity",
    "interval": (
        "an interval mixing months with days or time (Redshift takes YEAR TO MONTH or"
        " DAY TO SECOND values only), or ±infinity"
    ),
}


def _rule_text(rule: str) -> str:
    if rule.startswith("bytes"):  # bytes<n>: the column holds n bytes
        return f"a value over {int(rule[5:]):,} bytes (set TRUNCATECOLUMNS to truncate it)"
    return VALUE_RULES.get(rule, rule)


def refusal_reason(error: BaseException) -> str:
    """Why the replica refused a value, in zero-ETL's terms where it is one of its rules."""
    text = first_line(error)
    diag = getattr(error, "diag", None)
    name = getattr(diag, "constraint_name", None) or ""
    if name.startswith(VALUE_CHECK_PREFIX):
        rule, _, column = name[len(VALUE_CHECK_PREFIX) :].partition("_")
        return f"unsupported value in column {column}: {_rule_text(rule)}"
    if "value too long for type character varying(65535)" in text:
        return "a value over 65,535 bytes (set TRUNCATECOLUMNS to truncate it): " + text
    return text


def value_check_name(column: str, rule: str) -> str:
    return f"{VALUE_CHECK_PREFIX}{rule}_{column}"[:63]


def column_sql(column: ColumnInfo, *, not_null: bool = False) -> sql.Composed:
    """A replica column's definition, with the CHECK that refuses values zero-ETL fails on."""
    # format_type() output is Postgres' own spelling of a built-in type: safe as SQL text.
    definition = sql.SQL("{} {}{}").format(
        sql.Identifier(column.name),
        sql.SQL(column.type_sql),
        sql.SQL(" NOT NULL" if not_null else ""),
    )
    check = _value_check(column)
    if check is None:
        return definition
    rule, condition = check
    return sql.SQL("{} CONSTRAINT {} CHECK ({})").format(
        definition,
        sql.Identifier(value_check_name(column.name, rule)),
        sql.SQL(condition).format(c=sql.Identifier(column.name)),
    )


def _value_check(column: ColumnInfo) -> tuple[str, str] | None:
    """The rule and condition of the CHECK a replica column gets (None: none)."""
    size = byte_size(column.type_sql, column.type_name)
    if size is not None:
        # Redshift counts a VARCHAR's or CHAR's size in bytes, Postgres in characters (and
        # pads a CHAR(n) to n characters: ::text leaves the padding out)
        return f"bytes{size}", f"octet_length({{c}}::text) <= {size}"
    return _VALUE_CHECKS.get(column.type_name)


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
