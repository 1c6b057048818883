"""Redshift SQL in, PostgreSQL (or a refusal) out: the translator without a database."""

from __future__ import annotations

import time

import pytest

from zetl_redshift.translate import Forward, Refused, ZeroEtlCommand, translate


def forwarded(sql: str, database: str = "dev") -> str:
    answer = translate(sql, database=database)
    assert isinstance(answer, Forward)
    return answer.sql


@pytest.mark.parametrize(
    "sql",
    [
        # the catalog SQL of the drivers: PostgreSQL already, array subscripts and all
        "select a.attname from pg_catalog.pg_attribute a, pg_catalog.pg_index i"
        " where a.attnum = i.indkey[0] and i.indrelid = $1",
        "select regexp_substr(a.attname, '^x') from pg_attribute a",
        "begin",
        "select 1",
        "select * from analytics.daily_revenue where revenue_date = $1",
        "select date_part('epoch', now())",
    ],
)
def test_postgres_is_forwarded_as_written(sql: str) -> None:
    assert forwarded(sql) == sql


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("select top 3 a from t", "SELECT a FROM t LIMIT 3"),
        ("select nvl(a, 0) from t", "SELECT COALESCE(a, 0) FROM t"),
        ("select len(a) from t", "SELECT LENGTH(a) FROM t"),
        ("select approximate count(distinct a) from t", "SELECT COUNT(DISTINCT a) FROM t"),
        (
            "select listagg(a, ',') within group (order by b) from t",
            "SELECT STRING_AGG(CAST(a AS VARCHAR), ',' ORDER BY b) FROM t",
        ),
        ("select strtol(a, 16) from t", "SELECT zetl_redshift.strtol(a, 16) FROM t"),
        ("select json_parse(a) from t", "SELECT CAST(a AS JSONB) FROM t"),
        ("create table t (s super)", "CREATE TABLE t (s JSONB)"),
        ("create table t (v varchar(max))", "CREATE TABLE t (v VARCHAR(65535))"),
        (
            "create view v as select a from s.t with no schema binding",
            "CREATE VIEW v AS SELECT a FROM s.t",
        ),
        ("select * from svv_table_info", "select * from zetl_redshift.svv_table_info"),
        ("select * from pg_catalog.svv_tables", "select * from zetl_redshift.svv_tables"),
        (
            "select id from raw_transactions.public.customer where id = $1",
            "SELECT id FROM raw_transactions_public.customer WHERE id = $1",
        ),
        (
            "select e.payload.a[0] from events e",
            "SELECT JSONB_EXTRACT_PATH(e.payload, 'a', '0') FROM events AS e",
        ),
        (
            "select payload.a::varchar from events",
            "SELECT CAST(JSONB_EXTRACT_PATH_TEXT(payload, 'a') AS VARCHAR) FROM events",
        ),
    ],
)
def test_redshift_is_rewritten(sql: str, expected: str) -> None:
    assert forwarded(sql) == expected


def test_datediff_counts_boundaries() -> None:
    sql = forwarded("select datediff(day, a, b) from t")
    assert "DATE_TRUNC('DAY', CAST(b AS TIMESTAMP))" in sql
    assert "EXTRACT(EPOCH FROM" in sql


def test_a_three_part_name_into_the_session_database_stays() -> None:
    assert forwarded('select * from "dev"."analytics"."x"') == 'select * from "dev"."analytics"."x"'


def test_distribution_and_sort_keys_are_recorded_in_the_same_statement() -> None:
    sql = forwarded("create table t (id int distkey, v varchar(10) encode zstd) sortkey (id)")
    assert sql.startswith("DO $zetl$ BEGIN CREATE TABLE t (id INT, v VARCHAR(10));")
    assert "zetl_redshift.record_table_attributes('t'::regclass, 'KEY', 'id', ARRAY['id']" in sql


def test_version_is_redshifts_in_catalog_sql_too() -> None:
    assert "Redshift" in forwarded("select version()")


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("select distinct on (a) a from t", "DISTINCT ON is not supported by Redshift"),
        ("insert into t values (1) on conflict do nothing", "INSERT ... ON CONFLICT"),
        ("insert into t values (1) returning id", "RETURNING"),
        ("create table t (id uuid)", "uuid type"),
        ("create table t (id serial)", "serial type"),
        ("create table t (a jsonb)", "jsonb type"),
        ("create table t (a int[])", "array type"),
        ("select a->>'k' from t", "JSON operator"),
        ("select string_agg(a, ',') from t", "string_agg()"),
        ("delete from raw_transactions.public.customer", "zero-ETL integration's target"),
        ("unload ('select 1') to 's3://b/x' iam_role default", "UNLOAD .*r_UNLOAD.html"),
        ("copy t from 's3://b/x' iam_role default", "COPY from Amazon S3.*r_COPY.html"),
        ("create external schema s from data catalog database 'd'", "Spectrum"),
        ("create datashare s", "datashares.*r_CREATE_DATASHARE.html"),
        ("select dateadd(fortnight, 1, a) from t", "not a datepart"),
    ],
)
def test_refused_with_the_construct_named(sql: str, message: str) -> None:
    with pytest.raises(Refused, match=message):
        translate(sql, database="dev")


def test_the_catalog_may_use_postgres() -> None:
    """Leader-node SQL (only the catalog) is PostgreSQL on Redshift too: not refused."""
    sql = "select distinct on (relname) relname from pg_class"
    assert forwarded(sql) == sql


@pytest.mark.parametrize(
    "sql",
    [
        "CREATE DATABASE zetl FROM INTEGRATION 'id-1' DATABASE source",
        "alter database zetl integration refresh all tables",
        "/* dbt */ ALTER DATABASE zetl INTEGRATION SET REFRESH_INTERVAL 60",
    ],
)
def test_zero_etl_statements(sql: str) -> None:
    assert translate(sql) == ZeroEtlCommand(sql)


def test_without_a_session_database_the_replica_database_is_configured(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ZETL_REPLICA_DATABASE", "zeroetl")
    answer = translate("select * from zeroetl.public.t")
    assert answer == Forward("SELECT * FROM zeroetl_public.t")


MODEL = "\n".join(
    ["select"]
    + [f"    nvl(c{i}, 0) as c{i}," for i in range(45)]
    + ["    getdate() as loaded_at", "from analytics.wide", "where dateadd(day, -1, d) > x"]
)


def test_a_cached_translation_is_fast() -> None:
    translate(MODEL, database="dev")
    started = time.perf_counter()
    for _ in range(100):
        translate(MODEL, database="dev")
    assert (time.perf_counter() - started) / 100 < 0.0005


def test_lateral_aliases_in_catalog_sql_are_resolved() -> None:
    """redshift_connector's metadata SQL names select-list aliases in WHERE and later in the
    select list, which Redshift resolves."""
    sql = (
        "SELECT n.nspname AS TABLE_SCHEM, c.relname AS TABLE_NAME, TABLE_NAME AS NAME2"
        " FROM pg_catalog.pg_namespace n, pg_catalog.pg_class c"
        " WHERE c.relnamespace = n.oid AND TABLE_SCHEM LIKE $1 ORDER BY TABLE_SCHEM"
    )
    assert forwarded(sql) == (
        "SELECT n.nspname AS TABLE_SCHEM, c.relname AS TABLE_NAME, (c.relname) AS NAME2"
        " FROM pg_catalog.pg_namespace n, pg_catalog.pg_class c"
        " WHERE c.relnamespace = n.oid AND (n.nspname) LIKE $1 ORDER BY TABLE_SCHEM"
    )


def test_regexp_replace_replaces_every_match_as_on_redshift() -> None:
    assert forwarded("select regexp_replace(a, 'x') from t") == (
        "SELECT REGEXP_REPLACE(a, 'x', '', 'g') FROM t"
    )
