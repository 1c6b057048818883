"""Cases from Redshift's SQL reference, translated by the front's rules and run on PostgreSQL:
each gives the result its documentation page gives (the page is named beside each case)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from typing import Any

import psycopg2
import pytest

from tests.harness import PostgresServer
from zetl_redshift.catalog import install
from zetl_redshift.translate import Forward, Refused, translate

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def database(warehouse_server: PostgresServer) -> Iterator[str]:
    name = warehouse_server.create_database("redshift_sql")
    conn = psycopg2.connect(warehouse_server.url(name))
    try:
        install(conn)
        install(conn)  # idempotent
    finally:
        conn.close()
    yield warehouse_server.url(name)
    warehouse_server.drop_database(name)


@pytest.fixture
def run(database: str) -> Iterator[Any]:
    conn = psycopg2.connect(database)
    conn.autocommit = True

    def execute(sql: str) -> list[tuple[Any, ...]]:
        answer = translate(sql, database=conn.info.dbname)
        assert isinstance(answer, Forward)
        with conn.cursor() as cur:
            cur.execute(answer.sql)
            return cur.fetchall() if cur.description else []

    yield execute
    conn.close()


DOCUMENT = '{"f2":{"f3":1},"f4":{"f5":99,"f6":"star"}'
SCALARS = [
    # r_DATEDIFF_function.html: week boundaries between two dates of 2009
    ("select datediff(week, '2009-01-01', '2009-12-31')", 52),
    # DATEDIFF counts boundaries: two minutes apart, across midnight, is one day
    ("select datediff(day, '2023-01-01 23:59:00', '2023-01-02 00:01:00')", 1),
    ("select datediff(year, '2021-12-31', '2022-01-01')", 1),
    ("select datediff(qtr, '1998-07-01', '2002-10-01')", 17),
    ("select datediff(hour, '2023-01-01 10:59:59', '2023-01-01 11:00:00')", 1),
    # r_DATEADD_function.html
    ("select dateadd(month, 18, '2008-02-28')", datetime(2009, 8, 28)),
    ("select dateadd(month, 1, '2008-01-31')", datetime(2008, 2, 29)),
    ("select dateadd(day, 30, date '2008-02-28')", datetime(2008, 3, 29)),
    # r_ADD_MONTHS.html: the last day of March plus a month is the last day of April
    ("select add_months('2008-03-31', 1)", datetime(2008, 4, 30)),
    ("select add_months('2008-02-29', 12)", datetime(2009, 2, 28)),
    # r_MONTHS_BETWEEN_function.html
    ("select months_between('1969-01-18', '1969-03-18')", -2.0),
    ("select months_between('2014-08-31', '2014-09-30')", -1.0),
    # r_TRUNC_date.html
    ("select trunc(timestamp '2011-07-21 10:32:38.248109')", date(2011, 7, 21)),
    ("select trunc(111.86)", 111),
    # r_DATE_PART_function.html
    ("select date_part(year, timestamp '2008-01-05 14:00:00')", 2008.0),
    ("select datepart(dow, timestamp '2008-01-05 14:00:00')", 6.0),
    # CONVERT_TIMEZONE.html
    (
        "select convert_timezone('America/New_York', 'UTC', '2008-03-05 12:25:29')",
        datetime(2008, 3, 5, 17, 25, 29),
    ),
    # r_TO_CHAR.html
    (
        "select to_char(timestamp '2009-12-31 23:15:59', 'MONTH-DY-DD-YYYY HH12:MIPM')",
        "DECEMBER -THU-31-2009 11:15PM",
    ),
    # CONVERT_TIMEZONE without a source time zone: the timestamp is UTC
    (
        "select convert_timezone('Asia/Tokyo', '2008-03-05 12:25:29')",
        datetime(2008, 3, 5, 21, 25, 29),
    ),
    # r_NVL_function.html, r_NVL2.html, r_DECODE_expression.html
    ("select nvl(null, 'first')", "first"),
    ("select nvl2(null, 'a', 'b')", "b"),
    ("select decode(2, 1, 'one', 2, 'two', 'other')", "two"),
    # r_REGEXP_REPLACE.html: every match replaced; the replacement defaults to ''
    ("select regexp_replace('DonecFri@fermentum.com', '@.*\\.(org|gov|com|edu|ca)$')", "DonecFri"),
    ("select regexp_replace('aaa', 'a', 'b')", "bbb"),
    # r_LEN.html, r_CHARINDEX.html, r_STRTOL.html
    ("select len('français')", 8),
    ("select charindex('dog', 'fish')", 0),
    ("select charindex('fish', 'dogfish')", 4),
    ("select strtol('0xf', 16)", 15),
    ("select strtol('abcd1234', 16)", 2882343476),
    ("select strtol('110101', 2)", 53),
    # JSON_EXTRACT_PATH_TEXT.html (the second document lacks its last brace), IS_VALID_JSON.html
    (f"select json_extract_path_text('{DOCUMENT}}}', 'f4', 'f6')", "star"),
    (f"select json_extract_path_text('{DOCUMENT}', 'f4', 'f6', true)", None),
    ("""select is_valid_json('{"a":2}')""", True),
    ("select is_valid_json('{\"a\"')", False),
    ("select is_valid_json_array('[1,2]')", True),
]


@pytest.mark.parametrize(("sql", "expected"), SCALARS, ids=[s for s, _ in SCALARS])
def test_documented_results(run: Any, sql: str, expected: Any) -> None:
    assert run(sql) == [(expected,)]


def test_getdate_is_a_timestamp_without_fractional_seconds(run: Any) -> None:
    [(now, transaction)] = run("select getdate(), sysdate")
    assert isinstance(now, datetime) and now.tzinfo is None and now.microsecond == 0
    assert isinstance(transaction, datetime) and transaction.tzinfo is None


def test_version_is_redshifts(run: Any) -> None:
    [(version,)] = run("select version()")
    assert "Redshift" in version


def test_aggregates_and_top(run: Any) -> None:
    run("create table sales (sellerid int, qty int, region varchar(max))")
    run("insert into sales values (3, 10, 'w'), (1, 20, 'e'), (2, 30, 'e'), (1, 40, 'w')")
    # r_LISTAGG.html
    assert run("select listagg(sellerid, ', ') within group (order by sellerid) from sales") == [
        ("1, 1, 2, 3",)
    ]
    assert run(
        "select listagg(distinct sellerid, ',') within group (order by sellerid) from sales"
    ) == [("1,2,3",)]
    # r_MEDIAN.html, r_COUNT.html (APPROXIMATE), r_TOP (r_SELECT_list.html), r_QUALIFY_clause.html
    assert run("select median(qty) from sales") == [(25.0,)]
    assert run("select percentile_cont(0.6) within group (order by qty) from sales") == [(28.0,)]
    assert run("select approximate count(distinct sellerid) from sales") == [(3,)]
    assert run("select top 2 qty from sales order by qty desc") == [(40,), (30,)]
    assert run(
        "select region, qty from sales qualify row_number() over (partition by region"
        " order by qty desc) = 1 order by region"
    ) == [("e", 30), ("w", 40)]


def test_super_navigation(run: Any) -> None:
    run("create table events (id int, payload super)")
    run("""insert into events values (1, json_parse('{"a":{"b":[10,20]},"c":"x"}'))""")
    assert run("select e.payload.a.b[1] from events e") == [(20,)]
    assert run("select payload.c::varchar from events") == [("x",)]
    assert run("select id from events e where e.payload.c = 'x'") == [(1,)]


def test_identity_columns_and_table_attributes(run: Any) -> None:
    run(
        "create table orders (id bigint identity(1, 1), customer int distkey,"
        " note varchar(max) encode zstd) sortkey (id)"
    )
    run("insert into orders (customer, note) values (7, 'a'), (8, 'b')")
    assert run("select id from orders order by id") == [(1,), (2,)]
    assert run(
        "select diststyle, sortkey1, encoded from svv_table_info where \"table\" = 'orders'"
    ) == [("KEY(customer)", "id", "Y")]
    assert run(
        'select "column", type, encoding, distkey, sortkey from pg_table_def'
        " where tablename = 'orders' order by \"column\""
    ) == [
        ("customer", "integer", "none".ljust(32), True, 0),
        ("id", "bigint", "none".ljust(32), False, 1),
        ("note", "character varying(65535)", "zstd".ljust(32), False, 0),
    ]


def test_catalog_views_answer(run: Any) -> None:
    run("create table listed (a int)")
    assert ("listed", "TABLE") in run(
        "select table_name, table_type from svv_all_tables where schema_name = 'public'"
    )
    assert run(
        "select column_name, data_type from svv_all_columns where table_name = 'listed'"
    ) == [("a", "integer")]
    assert run("select count(*) from pg_catalog.svv_redshift_databases") >= [(1,)]
    assert run("select * from pg_get_late_binding_view_cols() cols(s name, t name, c name,"
               " ty varchar, p int)") == []  # fmt: skip


def test_late_binding_views_and_create_table_as(run: Any) -> None:
    run("create table base (a int)")
    run("insert into base values (1)")
    run("create view late as select a from public.base with no schema binding")
    run("create table copied diststyle all as select a from late")
    run("select a into selected from copied")
    assert run("select a from selected") == [(1,)]
    assert run("select diststyle from svv_table_info where \"table\" = 'copied'") == [("ALL",)]


def test_three_part_names_read_the_zero_etl_database(run: Any) -> None:
    # The link imports the zero-ETL database's public schema as <database>_public.
    run("create schema zeroetl_public")
    run("create table zeroetl_public.customer (id int)")
    run("insert into zeroetl_public.customer values (5)")
    assert run("select id from zeroetl.public.customer") == [(5,)]


@pytest.mark.parametrize(
    ("sql", "construct"),
    [
        ("select distinct on (sellerid) sellerid from sales", "DISTINCT ON"),
        ("insert into sales values (1, 1, 'x') on conflict do nothing", "ON CONFLICT"),
        ("create table refused (id uuid)", "uuid type"),
        ("insert into sales values (1, 1, 'x') returning sellerid", "RETURNING"),
        ("create table refused (id serial)", "serial type"),
        ("insert into zeroetl.public.customer values (1)", "zero-ETL"),
        ("unload ('select 1') to 's3://bucket/x'", "r_UNLOAD.html"),
        ("copy sales from 's3://bucket/x' iam_role default", "r_COPY.html"),
        ("create external schema spectrum from data catalog database 'x'", "Spectrum"),
    ],
)
def test_refused_and_nothing_runs(database: str, sql: str, construct: str) -> None:
    with pytest.raises(Refused, match=construct):
        translate(sql, database=database.rsplit("/", 1)[1])


def test_convert_timezone_of_an_instant_ignores_the_session_zone(run: Any) -> None:
    run("set timezone to 'America/New_York'")
    assert run("select convert_timezone('UTC', timestamptz '2008-03-05 12:00:00+00')") == [
        (datetime(2008, 3, 5, 12, 0),)
    ]
    assert run("select convert_timezone('Asia/Tokyo', timestamp '2008-03-05 12:00:00')") == [
        (datetime(2008, 3, 5, 21, 0),)
    ]
