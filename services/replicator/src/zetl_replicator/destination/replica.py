"""The warehouse side: the replica database, its durable state store, and table DDL.

Layout (docs/architecture.md): replicated tables keep their source schema, names and types in
the replica database; the replicator's own state lives beside them in schema ``zetl``:

- ``zetl.replication_progress`` and ``zetl.table_state``: progress and table states, written
  only through the state store (``state.py``);
- ``zetl.integration``: the target database's options (``read_options``/``set_options``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import psycopg2.extensions
from psycopg2 import sql

from zetl.db import connect, with_database
from zetl.errors import DataError
from zetl_replicator.source.catalog import TEXT_FORMAT_OPTIONS, ColumnInfo, TableInfo
from zetl_replicator.state.store import PostgresStateStore, TableStatus

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
-- Failed because the warehouse refused its changes (not for an eligibility rule): a re-copy
-- is asked for by hand, not taken whenever the table looks eligible.
ALTER TABLE zetl.table_state ADD COLUMN IF NOT EXISTS apply_failed boolean NOT NULL DEFAULT false;
-- The integration this database is the target of (CREATE DATABASE ... FROM INTEGRATION).
CREATE TABLE IF NOT EXISTS zetl.integration (
    integration_id uuid PRIMARY KEY,
    creation_time timestamptz NOT NULL DEFAULT now()
);
INSERT INTO zetl.integration (integration_id)
SELECT gen_random_uuid()
WHERE NOT EXISTS (SELECT FROM zetl.integration);
-- The target database's options (CREATE / ALTER DATABASE ... INTEGRATION SET ...).
ALTER TABLE zetl.integration
    ADD COLUMN IF NOT EXISTS query_all_states boolean NOT NULL DEFAULT false,
    ADD COLUMN IF NOT EXISTS truncatecolumns boolean NOT NULL DEFAULT false,
    ADD COLUMN IF NOT EXISTS acceptinvchars boolean NOT NULL DEFAULT false,
    ADD COLUMN IF NOT EXISTS refresh_interval integer CHECK (refresh_interval >= 0),
    ADD COLUMN IF NOT EXISTS history_mode boolean NOT NULL DEFAULT false;
-- Only Synced tables can be queried (unless QUERY_ALL_STATES): called with every state change
-- and for every table when the option changes. The replicator owns the tables and reads them
-- whatever their state.
CREATE OR REPLACE FUNCTION zetl.apply_visibility(s text, t text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    visible boolean;
BEGIN
    IF to_regclass(format('%I.%I', s, t)) IS NULL THEN
        RETURN;
    END IF;
    SELECT ts.state = 'Synced'
           OR coalesce((SELECT i.query_all_states FROM zetl.integration i LIMIT 1), false)
      INTO visible
      FROM zetl.table_state ts WHERE ts.schema_name = s AND ts.table_name = t;
    IF coalesce(visible, false) THEN
        EXECUTE format('GRANT SELECT ON %I.%I TO PUBLIC', s, t);
    ELSE
        EXECUTE format('REVOKE SELECT ON %I.%I FROM PUBLIC', s, t);
    END IF;
END
$$;
-- Monitoring moved to svv_integration_table_state / svv_integration in the warehouse database.
DROP VIEW IF EXISTS zetl.integration_table_state;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA zetl TO PUBLIC;
GRANT SELECT ON ALL TABLES IN SCHEMA zetl TO PUBLIC;
"""


def replica_url(warehouse_url: str, replica_database: str) -> str:
    return with_database(warehouse_url, replica_database)


def connect_replica(warehouse_url: str, replica_database: str) -> psycopg2.extensions.connection:
    return connect(
        replica_url(warehouse_url, replica_database), raise_lost=True, options=TEXT_FORMAT_OPTIONS
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


def ensure_replica_database(warehouse_url: str, replica_database: str) -> None:
    """Create the replica database (from the maintenance database) and the state store."""
    admin = connect(warehouse_url, raise_lost=True)
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


def read_table_states(conn: psycopg2.extensions.connection) -> dict[str, TableStatus]:
    """Every table's state (for readers outside the replicator: the state store's own read)."""
    return PostgresStateStore(conn).table_states()


OPTIONS = {  # the target database's options: name -> (column, kind)
    "QUERY_ALL_STATES": "query_all_states",
    "TRUNCATECOLUMNS": "truncatecolumns",
    "ACCEPTINVCHARS": "acceptinvchars",
    "REFRESH_INTERVAL": "refresh_interval",
    "HISTORY_MODE": "history_mode",
}


@dataclass(frozen=True)
class DatabaseOptions:
    query_all_states: bool = False
    truncatecolumns: bool = False
    acceptinvchars: bool = False
    refresh_interval: int | None = None
    history_mode: bool = False


def read_options(conn: psycopg2.extensions.connection, *, commit: bool = True) -> DatabaseOptions:
    with conn.cursor() as cur:
        cur.execute(
            "SELECT query_all_states, truncatecolumns, acceptinvchars, refresh_interval,"
            " history_mode FROM zetl.integration LIMIT 1"
        )
        row = cur.fetchone()
    if commit:
        conn.commit()
    return DatabaseOptions(*row) if row else DatabaseOptions()


def set_options(conn: psycopg2.extensions.connection, values: dict[str, bool | int | None]) -> None:
    """Change options (``OPTIONS`` keys); visibility follows QUERY_ALL_STATES at once.

    Changing HISTORY_MODE re-copies every replicated table in the new form, as zero-ETL does
    when history mode is turned on or off for existing tables.
    """
    with conn, conn.cursor() as cur:
        if "HISTORY_MODE" in values:
            cur.execute("SELECT history_mode FROM zetl.integration LIMIT 1")
            row = cur.fetchone()
            if row is not None and row[0] != values["HISTORY_MODE"]:
                cur.execute(
                    "UPDATE zetl.table_state SET resync_requested = true,"
                    " state = 'ResyncRequired', reason = 'HISTORY_MODE changed',"
                    " updated_at = now() WHERE state <> 'Failed'"
                )
        for name, value in values.items():
            cur.execute(
                sql.SQL("UPDATE zetl.integration SET {} = %s").format(
                    sql.Identifier(OPTIONS[name])
                ),
                (value,),
            )
        cur.execute("SELECT zetl.apply_visibility(schema_name, table_name) FROM zetl.table_state")


def table_identifier(schema: str, name: str) -> sql.Identifier:
    return sql.Identifier(schema, name)


# HISTORY_MODE: every version of a row is kept; these columns tell them apart (Redshift's
# names). The key is unique among the active versions only (a partial unique index).
IS_ACTIVE, CREATE_TIME, DELETE_TIME = (
    "_record_is_active",
    "_record_create_time",
    "_record_delete_time",
)
HISTORY_COLUMNS = (IS_ACTIVE, CREATE_TIME, DELETE_TIME)
_HISTORY_COLUMNS_SQL = sql.SQL(
    "_record_is_active boolean NOT NULL DEFAULT true,"
    " _record_create_time timestamp NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'),"
    " _record_delete_time timestamp"
)


def create_table_sql(table: TableInfo, *, with_key: bool, history: bool = False) -> sql.Composed:
    columns: list[sql.Composable] = [_column_sql(c) for c in table.columns]
    if history:
        columns.append(_HISTORY_COLUMNS_SQL)
    if with_key:
        columns.append(primary_key_sql(table))
    return sql.SQL("CREATE TABLE {} ({})").format(
        table_identifier(table.schema, table.name), sql.SQL(", ").join(columns)
    )


def history_key_sql(table: TableInfo) -> sql.Composed:
    """A history table's key: unique among its active versions."""
    return sql.SQL("CREATE UNIQUE INDEX ON {} ({}) WHERE _record_is_active").format(
        table_identifier(table.schema, table.name),
        sql.SQL(", ").join(sql.Identifier(k) for k in table.primary_key),
    )


def history_tables(conn: psycopg2.extensions.connection) -> dict[str, tuple[str, ...]]:
    """The replica's history tables ("schema.table") and their keys."""
    with conn.cursor() as cur:
        cur.execute(
            """
            SELECT n.nspname, c.relname,
                   array_agg(a.attname::text ORDER BY k.ord)
              FROM pg_index i
              JOIN pg_class c ON c.oid = i.indrelid
              JOIN pg_namespace n ON n.oid = c.relnamespace
             CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k (attnum, ord)
              JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
             WHERE i.indisunique AND i.indpred IS NOT NULL
               AND EXISTS (SELECT FROM pg_attribute h WHERE h.attrelid = c.oid
                           AND h.attname = '_record_is_active' AND NOT h.attisdropped)
             GROUP BY n.nspname, c.relname, i.indexrelid
            """
        )
        return {f"{schema}.{name}": tuple(key) for schema, name, key in cur.fetchall()}


def is_history_table(conn: psycopg2.extensions.connection, schema: str, name: str) -> bool:
    with conn.cursor() as cur:
        cur.execute(
            "SELECT EXISTS (SELECT FROM pg_attribute WHERE attrelid = %s::regclass"
            " AND attname = '_record_is_active' AND NOT attisdropped)",
            (sql.Identifier(schema, name).as_string(conn),),
        )
        row = cur.fetchone()
    return bool(row and row[0])


def without_history_columns(table: TableInfo, key: tuple[str, ...]) -> TableInfo:
    """A history table as replicated: the source's columns and key."""
    return replace(
        table,
        columns=tuple(c for c in table.columns if c.name not in HISTORY_COLUMNS),
        primary_key=key,
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
    "date": ("range", "isfinite({c}) AND {c} >= '0001-01-01'::date AND {c} < '10000-01-01'::date"),
}
VALUE_RULES = {
    "nan": "NaN or Infinity in a numeric column",
    "range": "a B.C. date, a year after 9999 or ±infinity",
}


def refusal_reason(error: BaseException) -> str:
    """Why the replica refused a value, in zero-ETL's terms where it is one of its rules."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    diag = getattr(error, "diag", None)
    name = getattr(diag, "constraint_name", None) or ""
    if name.startswith(VALUE_CHECK_PREFIX):
        rule, _, column = name[len(VALUE_CHECK_PREFIX) :].partition("_")
        return f"unsupported value in column {column}: {VALUE_RULES.get(rule, rule)}"
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
    check = _VALUE_CHECKS.get(column.type_name)
    if check is None:
        return definition
    rule, condition = check
    return sql.SQL("{} CONSTRAINT {} CHECK ({})").format(
        definition,
        sql.Identifier(value_check_name(column.name, rule)),
        sql.SQL(condition).format(c=sql.Identifier(column.name)),
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
