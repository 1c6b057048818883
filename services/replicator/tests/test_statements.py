"""The SQL the Postgres destination sends, as strings: each statement kind's parts, and the
text forms rows travel in (COPY lines, literals). Rendering quotes identifiers, which takes a
connection: any database will do."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg2
import psycopg2.extensions
import pytest

from services.replicator.tests.support import T
from zetl_replicator.destination.statements import (
    Statement,
    copy_line,
    literals,
    statement_parts,
)
from zetl_replicator.source.tables import TableInfo


@pytest.fixture
def conn(warehouse_url: str) -> Iterator[psycopg2.extensions.connection]:
    connection = psycopg2.connect(warehouse_url)
    try:
        yield connection
    finally:
        connection.close()


def rendered(
    conn: psycopg2.extensions.connection,
    table: TableInfo,
    kind: Statement,
    changed: tuple[int, ...] = (),
) -> str:
    """The statement over one row: head, the row's placeholders, tail."""
    return "".join(part.as_string(conn) for part in statement_parts(table, kind, changed))


def test_emitted_sql(conn: psycopg2.extensions.connection) -> None:
    def text(kind: str, changed: tuple[int, ...] = ()) -> str:
        return rendered(conn, T, Statement(kind), changed)

    assert text("delete") == (
        'DELETE FROM "public"."t" AS t USING (VALUES (%s::integer)) AS v ("id")'
        ' WHERE t."id" = v."id"'
    )
    assert text("update", (1,)) == (
        'UPDATE "public"."t" AS t SET "v" = v."v" FROM (VALUES (%s::integer, %s::text))'
        ' AS v ("id", "v") WHERE t."id" = v."id"'
    )
    assert text("upsert") == (
        'INSERT INTO "public"."t" ("id", "v", "n") VALUES (%s, %s, %s)'
        ' ON CONFLICT ("id") DO UPDATE SET "v" = excluded."v", "n" = excluded."n"'
    )
    assert text("insert") == 'INSERT INTO "public"."t" ("id", "v", "n") VALUES (%s, %s, %s)'


def test_history_statements_add_and_close_versions(conn: psycopg2.extensions.connection) -> None:
    assert rendered(conn, T, Statement.HISTORY_INSERT) == (
        'INSERT INTO "public"."t" ("id", "v", "n", _record_create_time) VALUES (%s, %s, %s, %s)'
    )
    assert rendered(conn, T, Statement.HISTORY_CLOSE) == (
        'UPDATE "public"."t" AS t SET _record_is_active = false,'
        " _record_delete_time = v.zetl_time FROM (VALUES (%s::integer, %s::timestamp))"
        ' AS v ("id", zetl_time) WHERE t."id" = v."id" AND t._record_is_active'
    )
    assert rendered(conn, T, Statement.HISTORY_UPDATE, (1,)) == (
        'WITH v ("zetl_key_0", "zetl_new_0", zetl_time) AS'
        " (VALUES (%s::integer, %s::text, %s::timestamp)),"
        ' closed AS (UPDATE "public"."t" AS t SET _record_is_active = false,'
        ' _record_delete_time = v.zetl_time FROM v WHERE t."id" = v."zetl_key_0"'
        ' AND t._record_is_active RETURNING t."id" AS "id", v."zetl_new_0" AS "zetl_new_0",'
        ' t."n" AS "n", v.zetl_time AS zetl_time)'
        ' INSERT INTO "public"."t" ("id", "v", "n", _record_create_time)'
        ' SELECT "id", "zetl_new_0", "n", zetl_time FROM closed'
    )


def test_only_history_statements_are_history() -> None:
    assert {k for k in Statement if k.history} == {
        Statement.HISTORY_INSERT,
        Statement.HISTORY_CLOSE,
        Statement.HISTORY_UPDATE,
    }


def test_rows_travel_as_copy_lines_and_literals() -> None:
    assert copy_line(("1", None, "a")) == "1\t\\N\ta\n"
    assert copy_line(("tab\there", "back\\slash", "new\nline\r")) == (
        "tab\\there\tback\\\\slash\tnew\\nline\\r\n"
    )
    assert literals(("it's", None, "ü")) == (b"'it''s'", b"NULL", "'ü'".encode())
