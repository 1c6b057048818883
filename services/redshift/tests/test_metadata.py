"""Amazon's driver through the front: its metadata calls answer from Redshift's catalog views
(the queries they send were found by running them: redshift_connector's own SQL relies on
Redshift resolving select-list aliases in WHERE, and on pg_proc_info)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from services.redshift.tests.conftest import RunningFront

pytestmark = pytest.mark.docker


@pytest.fixture
def cursor(front: RunningFront, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    import redshift_connector

    user, password = front.create_role(privileges="GRANT CREATE ON SCHEMA public TO {role}")
    monkeypatch.setenv("SSL_CERT_FILE", str(front.ca_file))
    conn = redshift_connector.connect(
        host=front.host, port=front.port, database=front.database, user=user, password=password
    )
    conn.autocommit = True
    cur = conn.cursor()
    cur.execute(
        "create table public.probe (id int primary key, payload super, note varchar(max))"
        " diststyle key distkey (id) sortkey (id)"
    )
    yield cur
    cur.execute("drop table public.probe")
    conn.close()


def test_metadata_calls_answer(cursor: Any, front: RunningFront) -> None:
    assert ["public", front.database] in [list(row) for row in cursor.get_schemas()]
    tables = [list(row[:4]) for row in cursor.get_tables(None, "public", "probe", None)]
    assert tables == [[front.database, "public", "probe", "TABLE"]]
    columns = [(row[3], row[5]) for row in cursor.get_columns(None, "public", "probe", None)]
    assert [name for name, _ in columns] == ["id", "payload", "note"]
    keys = [list(row[:4]) for row in cursor.get_primary_keys(None, "public", "probe")]
    assert keys == [[front.database, "public", "probe", "id"]]
    assert cursor.get_procedures(None, "public", None) is not None


def test_catalog_views_show_what_create_table_declared(cursor: Any) -> None:
    cursor.execute("select diststyle, sortkey1 from svv_table_info where \"table\" = 'probe'")
    assert [list(row) for row in cursor.fetchall()] == [["KEY(id)", "id"]]
    cursor.execute(
        "select \"column\", type, distkey from pg_table_def where tablename = 'probe'"
        ' order by "column"'
    )
    assert [list(row) for row in cursor.fetchall()] == [
        ["id", "integer", True],
        ["note", "character varying(65535)", False],
        ["payload", "super", False],
    ]
    cursor.execute("select version()")
    assert "Redshift" in cursor.fetchone()[0]
