"""The source schema on a real Postgres: migrations, the zero-ETL contract, and the constraints."""

from __future__ import annotations

import re
from collections.abc import Iterator

import psycopg2
import psycopg2.extensions
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from zetl.schema import LOAD_SCHEMA, Base
from zetl.schema.migrate import downgrade, engine_for, head_revision, upgrade

pytestmark = pytest.mark.docker

# Amazon Redshift's reserved words (docs.aws.amazon.com/redshift/latest/dg/r_pg_keywords.html).
REDSHIFT_RESERVED = frozenset(
    """
    aes128 aes256 all allowoverwrite analyse analyze and any array as asc authorization az64
    backup between binary blanksasnull both bytedict bzip2 case cast check collate column
    constraint create credentials cross current_date current_time current_timestamp current_user
    current_user_id default deferrable deflate defrag delta delta32k desc disable distinct do
    else emptyasnull enable encode encrypt encryption end except explicit false for foreign
    freeze from full globaldict256 globaldict64k grant group gzip having identity ignore ilike in
    initially inner intersect interval into is isnull join leading left like limit localtime
    localtimestamp lun luns lzo lzop minus mostly16 mostly32 mostly8 natural new not notnull null
    nulls off offline offset oid old on only open or order outer overlaps parallel partition
    percent permissions pivot placing primary raw readratio recover references rejectlog resort
    respect restore right select session_user similar snapshot some sysdate system table tag
    tdes text255 text32k then timestamp to top trailing true truncatecolumns union unique unnest
    unpivot user using verbose wallet when where with without
    """.split()  # noqa: SIM905 - the list as the docs print it
)
# Postgres types zero-ETL replicates to Redshift unchanged (no arrays, json, enums, uuid, ...).
# text is deliberately absent from the replicated schema: Redshift turns it into varchar(65535).
REPLICABLE_TYPES = {"bigint", "smallint", "integer", "numeric", "character varying", "date"}
REPLICABLE_TYPES |= {"timestamp with time zone", "boolean"}


@pytest.fixture
def migrated(source_url: str) -> Iterator[psycopg2.extensions.connection]:
    upgrade(source_url)
    conn = psycopg2.connect(source_url)
    conn.autocommit = True
    try:
        yield conn
    finally:
        conn.close()


def rows(
    conn: psycopg2.extensions.connection, query: str, *args: object
) -> list[tuple[object, ...]]:
    with conn.cursor() as cur:
        cur.execute(query, args)
        return list(cur.fetchall())


def tables(conn: psycopg2.extensions.connection, schema: str) -> list[str]:
    return [
        str(name)
        for (name,) in rows(
            conn,
            "SELECT table_name FROM information_schema.tables"
            " WHERE table_schema = %s AND table_type = 'BASE TABLE' ORDER BY 1",
            schema,
        )
    ]


def test_upgrade_reaches_head_and_is_idempotent(source_url: str) -> None:
    assert upgrade(source_url) == (None, head_revision())
    assert upgrade(source_url) == (head_revision(), head_revision())


def test_downgrade_to_base_and_back(source_url: str) -> None:
    upgrade(source_url)
    downgrade(source_url, "base")
    conn = psycopg2.connect(source_url)
    try:
        assert tables(conn, "public") == []
    finally:
        conn.close()
    assert upgrade(source_url)[1] == head_revision()


def test_models_and_migrations_agree(source_url: str) -> None:
    upgrade(source_url)
    with engine_for(source_url).connect() as connection:
        context = MigrationContext.configure(
            connection,
            opts={"include_schemas": True, "version_table_schema": LOAD_SCHEMA},
        )
        diff = compare_metadata(context, Base.metadata)
    assert diff == []


def test_every_table_has_the_zero_etl_contract(migrated: psycopg2.extensions.connection) -> None:
    public = tables(migrated, "public")
    assert {"publisher", "game", "customer", "store_transaction", "wallet_transaction"} <= set(
        public
    )
    for schema in ("public", LOAD_SCHEMA):
        for table in tables(migrated, schema):
            if table == "alembic_version":
                continue
            columns: dict[object, object] = dict(
                rows(  # type: ignore[arg-type]
                    migrated,
                    "SELECT column_name, data_type FROM information_schema.columns"
                    " WHERE table_schema = %s AND table_name = %s",
                    schema,
                    table,
                )
            )
            where = f"{schema}.{table}"
            assert re.fullmatch(r"[a-z_][a-z0-9_]*", table), where
            assert table not in REDSHIFT_RESERVED, where
            for column in columns:
                assert re.fullmatch(r"[a-z_][a-z0-9_]*", str(column)), (where, column)
                assert column not in REDSHIFT_RESERVED, (where, column)
            assert columns["created_at"] == columns["updated_at"] == "timestamp with time zone"
            assert _primary_key(migrated, schema, table) == ["id"], where
            assert rows(
                migrated,
                "SELECT is_identity, data_type FROM information_schema.columns"
                " WHERE table_schema = %s AND table_name = %s AND column_name = 'id'",
                schema,
                table,
            ) == [("YES", "bigint")], where
            assert _has_updated_at_trigger(migrated, schema, table), where
            if schema == "public":
                assert set(columns.values()) <= REPLICABLE_TYPES, (where, columns)
                assert _unique_keys(migrated, table), f"{where} has no natural key"


def test_money_is_numeric_12_2_beside_a_currency(migrated: psycopg2.extensions.connection) -> None:
    money = rows(
        migrated,
        "SELECT table_name, column_name, numeric_precision, numeric_scale"
        " FROM information_schema.columns WHERE table_schema = 'public'"
        " AND data_type = 'numeric'",
    )
    assert money
    for table, column, precision, scale in money:
        assert (precision, scale) == (12, 2), (table, column)
        assert rows(
            migrated,
            "SELECT 1 FROM information_schema.columns WHERE table_schema = 'public'"
            " AND table_name = %s AND column_name = 'currency'",
            table,
        ), f"{table}.{column} has no currency beside it"


def _primary_key(conn: psycopg2.extensions.connection, schema: str, table: str) -> list[str]:
    return [
        str(name)
        for (name,) in rows(
            conn,
            "SELECT a.attname FROM pg_index i JOIN pg_attribute a"
            " ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)"
            " WHERE i.indrelid = %s::regclass AND i.indisprimary",
            f"{schema}.{table}",
        )
    ]


def _unique_keys(conn: psycopg2.extensions.connection, table: str) -> list[tuple[object, ...]]:
    return rows(
        conn,
        "SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'u'",
        f"public.{table}",
    )


def _has_updated_at_trigger(conn: psycopg2.extensions.connection, schema: str, table: str) -> bool:
    return bool(
        rows(
            conn,
            "SELECT 1 FROM pg_trigger WHERE tgrelid = %s::regclass AND tgname = 'set_updated_at'",
            f"{schema}.{table}",
        )
    )
