"""DDL applied when it happens: the source's DDL capture (event triggers writing logical
messages into the stream, compose/source/20-zetl-zero-etl-source.sql) against real Postgres.

The harness installs the capture in every source database, as compose's init does; the last
test takes it away and checks the fallback (a shape change arrives with the next row change).
"""

from __future__ import annotations

import dataclasses
import time

import psycopg2
import pytest

from services.replicator.tests.support import Query, columns, count, execute, table_state
from tests.support import running, wait_for
from zetl.errors import DataError
from zetl_replicator.apply import captured_ddl
from zetl_replicator.config import ReplicatorConfig
from zetl_replicator.ops.verify import verify
from zetl_replicator.source import pgoutput
from zetl_replicator.source.column_changes import Backfill


def seconds_until(predicate: object, what: str, timeout: float = 60.0) -> float:
    """Seconds until ``predicate`` holds (polled every 50 ms), failing after ``timeout``."""
    started = time.monotonic()
    wait_for(predicate, what, timeout, every=0.05)  # type: ignore[arg-type]
    return time.monotonic() - started


def test_ddl_without_dml_after_it_is_visible_within_one_discovery_interval(
    config: ReplicatorConfig, replica: Query
) -> None:
    """ADD, RENAME, DROP COLUMN and a widening reach the replica with no row change after them,
    sooner than the discovery interval (which would not bring a shape change anyway)."""
    config = dataclasses.replace(config, discovery_interval_seconds=5.0)
    src = config.source_url
    execute(src, "CREATE TABLE t (id int PRIMARY KEY, a text, b smallint)")
    execute(src, "INSERT INTO t VALUES (1, 'x', 1)")
    with running(config):
        wait_for(lambda: count(replica, "public.t") == 1, "t copied")
        steps = [
            ("ALTER TABLE t ADD COLUMN c int DEFAULT 7", ("c", "integer")),
            ("ALTER TABLE t RENAME COLUMN a TO a2", ("a2", "character varying(65535)")),
            ("ALTER TABLE t ALTER COLUMN b TYPE bigint", ("b", "bigint")),
        ]
        for statement, column in steps:
            execute(src, statement)
            took = seconds_until(lambda c=column: c in columns(replica, "public.t"), statement)
            assert took < config.discovery_interval_seconds, (statement, took)
        execute(src, "ALTER TABLE t DROP COLUMN a2")
        took = seconds_until(
            lambda: [c for c, _ in columns(replica, "public.t")] == ["id", "b", "c"], "DROP"
        )
        assert took < config.discovery_interval_seconds
        assert replica("SELECT id, b, c FROM public.t") == [(1, 1, 7)]
        assert verify(config).ok


def test_ddl_and_dml_in_one_transaction_apply_in_order(
    config: ReplicatorConfig, replica: Query
) -> None:
    src = config.source_url
    execute(src, "CREATE TABLE t (id int PRIMARY KEY, a text)")
    with running(config):
        wait_for(lambda: table_state(config, "public.t") == ("Synced", None), "t synced")
        execute(
            src,
            "BEGIN;"
            " INSERT INTO t VALUES (1, 'before');"
            " ALTER TABLE t ADD COLUMN n int;"
            " INSERT INTO t VALUES (2, 'after', 2);"
            " ALTER TABLE t DROP COLUMN a;"
            " INSERT INTO t VALUES (3, 3);"
            " COMMIT",
        )
        wait_for(lambda: count(replica, "public.t") == 3, "the transaction applied")
        assert columns(replica, "public.t") == [("id", "integer"), ("n", "integer")]
        assert replica("SELECT id, n FROM public.t ORDER BY id") == [(1, None), (2, 2), (3, 3)]
        assert verify(config).ok


def test_rolled_back_ddl_applies_nothing(config: ReplicatorConfig, replica: Query) -> None:
    src = config.source_url
    execute(src, "CREATE TABLE t (id int PRIMARY KEY)")
    with running(config):
        wait_for(lambda: table_state(config, "public.t") == ("Synced", None), "t synced")
        execute(src, "BEGIN; ALTER TABLE t ADD COLUMN gone int; INSERT INTO t VALUES (1); ROLLBACK")
        execute(src, "ALTER TABLE t ADD COLUMN kept int")  # the next DDL: after the rollback
        wait_for(lambda: ("kept", "integer") in columns(replica, "public.t"), "kept added")
        assert columns(replica, "public.t") == [("id", "integer"), ("kept", "integer")]
        assert count(replica, "public.t") == 0


def test_ddl_inside_a_streamed_transaction_applies_at_its_position(
    config: ReplicatorConfig, replica: Query
) -> None:
    """A transaction larger than logical_decoding_work_mem streams with its DDL inside; one that
    aborts takes its DDL with it."""
    src = config.source_url
    database = src.rsplit("/", 1)[1]
    execute(
        src,
        f"ALTER DATABASE {database} SET logical_decoding_work_mem = '64kB'",
        "CREATE TABLE big (id int PRIMARY KEY, payload text)",
    )
    with running(config) as replicator:
        wait_for(lambda: table_state(config, "public.big") == ("Synced", None), "big synced")
        conn = psycopg2.connect(src)
        with conn.cursor() as cur:
            cur.execute("INSERT INTO big SELECT g, repeat('p', 99) FROM generate_series(1, 2000) g")
            cur.execute("ALTER TABLE big ADD COLUMN n int")
            cur.execute("INSERT INTO big SELECT g, 'q', g FROM generate_series(2001, 4000) g")
            wait_for(lambda: replicator.metrics.streamed_applied_live >= 1, "a live stream")
        conn.commit()
        wait_for(lambda: count(replica, "public.big") == 4000, "the streamed transaction")
        assert ("n", "integer") in columns(replica, "public.big")
        assert replica("SELECT count(n) FROM public.big") == [(2000,)]

        with conn.cursor() as cur:
            cur.execute("ALTER TABLE big ADD COLUMN aborted int")
            cur.execute("INSERT INTO big SELECT g, 'r', g, g FROM generate_series(5001, 8000) g")
            wait_for(lambda: replicator.metrics.streamed_applied_live >= 2, "a second stream")
        conn.rollback()
        conn.close()
        execute(src, "ALTER TABLE big ADD COLUMN after_abort int")
        wait_for(lambda: ("after_abort", "integer") in columns(replica, "public.big"), "next DDL")
        names = [c for c, _ in columns(replica, "public.big")]
        assert names == ["id", "payload", "n", "after_abort"]
        assert count(replica, "public.big") == 4000
        assert verify(config).ok


def test_rename_table_renames_in_place(config: ReplicatorConfig, replica: Query) -> None:
    """No re-copy: the replica table keeps its identity (its oid) under the new name, and the
    rows applied so far stay counted."""
    src = config.source_url
    execute(src, "CREATE TABLE t (id int PRIMARY KEY, v text)")
    execute(src, "INSERT INTO t SELECT g, 'v' FROM generate_series(1, 10) g")
    with running(config):
        wait_for(lambda: count(replica, "public.t") == 10, "t copied")
        execute(src, "INSERT INTO t VALUES (11, 'w')")
        wait_for(lambda: count(replica, "public.t") == 11, "a row streamed")
        oid = replica("SELECT 'public.t'::regclass::oid")
        execute(
            src,
            "BEGIN; INSERT INTO t VALUES (12, 'x'); ALTER TABLE t RENAME TO renamed;"
            " INSERT INTO renamed VALUES (13, 'y'); COMMIT",
        )
        wait_for(lambda: count(replica, "public.renamed") == 13, "renamed")
        assert count(replica, "public.t") is None
        assert replica("SELECT 'public.renamed'::regclass::oid") == oid
        assert replica(
            "SELECT rows_applied FROM zetl.table_state WHERE table_name = 'renamed'"
        ) == [(3,)]
        wait_for(lambda: table_state(config, "public.renamed") == ("Synced", None), "its state")
        execute(src, "ALTER TABLE renamed RENAME TO again")  # no DML after it
        wait_for(lambda: count(replica, "public.again") == 13, "renamed again without DML")
        assert replica("SELECT 'public.again'::regclass::oid") == oid
        assert verify(config).ok


def test_rename_of_a_failed_table_renames_its_state(
    config: ReplicatorConfig, replica: Query
) -> None:
    """A Failed table renamed stays Failed under its new name; once eligible it replicates
    there."""
    src = config.source_url
    execute(src, "CREATE TABLE keyless (id int, v text)", "CREATE TABLE other (id int PRIMARY KEY)")
    with running(config):
        wait_for(lambda: (table_state(config, "public.keyless") or ("",))[0] == "Failed", "Failed")
        execute(src, "ALTER TABLE keyless RENAME TO keyless2", "INSERT INTO other VALUES (1)")
        wait_for(lambda: (table_state(config, "public.keyless2") or ("",))[0] == "Failed", "2")
        assert table_state(config, "public.keyless") is None
        wait_for(lambda: count(replica, "public.other") == 1, "others stream")
        execute(src, "ALTER TABLE keyless2 ADD PRIMARY KEY (id)", "INSERT INTO keyless2 VALUES (1)")
        wait_for(lambda: count(replica, "public.keyless2") == 1, "replicated once eligible")
        wait_for(lambda: table_state(config, "public.keyless2") == ("Synced", None), "Synced")


def test_drop_schema_drops_it_and_rename_schema_resyncs_under_the_new_name(
    config: ReplicatorConfig, replica: Query
) -> None:
    src = config.source_url
    execute(
        src,
        "CREATE SCHEMA a",
        "CREATE SCHEMA b",
        "CREATE TABLE a.t (id int PRIMARY KEY)",
        "CREATE TABLE b.t (id int PRIMARY KEY)",
        "INSERT INTO a.t SELECT generate_series(1, 3)",
        "INSERT INTO b.t SELECT generate_series(1, 4)",
    )
    scoped = dataclasses.replace(config, schemas=("a", "b", "c"))
    with running(scoped):
        wait_for(lambda: count(replica, "a.t") == 3 and count(replica, "b.t") == 4, "copied")
        execute(src, "DROP SCHEMA a CASCADE", "ALTER SCHEMA b RENAME TO c")
        wait_for(lambda: count(replica, "c.t") == 4, "b.t resynced as c.t")
        wait_for(lambda: count(replica, "a.t") is None and count(replica, "b.t") is None, "gone")
        schemas = {r[0] for r in replica("SELECT nspname FROM pg_namespace")}
        assert "c" in schemas and "a" not in schemas and "b" not in schemas
        wait_for(lambda: table_state(scoped, "c.t") == ("Synced", None), "c.t's state")
        wait_for(
            lambda: table_state(scoped, "a.t") is None and table_state(scoped, "b.t") is None,
            "the old names' states gone",
        )


def test_without_ddl_capture_shape_changes_arrive_with_the_next_row_change(
    config: ReplicatorConfig, replica: Query
) -> None:
    """The fallback where no event trigger is installed: the Relation message before the next
    row change brings the new shape."""
    src = config.source_url
    execute(
        src,
        "DROP EVENT TRIGGER zetl_capture_ddl",
        "DROP EVENT TRIGGER zetl_capture_drop",
        "CREATE TABLE t (id int PRIMARY KEY)",
        "CREATE TABLE other (id int PRIMARY KEY)",
    )
    with running(config):
        wait_for(lambda: count(replica, "public.t") == 0, "t copied")
        execute(src, "ALTER TABLE t ADD COLUMN n int", "INSERT INTO other VALUES (1)")
        wait_for(lambda: count(replica, "public.other") == 1, "a later transaction applied")
        assert ("n", "integer") not in columns(replica, "public.t")
        execute(src, "INSERT INTO t VALUES (1, 1)")
        wait_for(lambda: ("n", "integer") in columns(replica, "public.t"), "with the row change")
        assert replica("SELECT id, n FROM public.t") == [(1, 1)]


def test_captured_ddl_runs_discovery_only_for_what_it_concerns() -> None:
    def message(body: str) -> pgoutput.LogicalMessage:
        return pgoutput.LogicalMessage(None, True, 0, captured_ddl.PREFIX, body.encode())

    altered = captured_ddl.parse(
        message(
            '{"tag": "ALTER TABLE", "tables": [{"oid": "7", "schema": "sales", "name": "t",'
            ' "identity": "d", "newest": 2, "dropped": 1, "columns": [["id", "23", -1, true, 1,'
            ' false, null, false], ["n", "23", -1, false, 2, true, "5", true]]}]}'
        )
    )
    assert altered.tables[0].oid == 7 and altered.tables[0].qualified == "sales.t"
    assert altered.tables[0].backfill("n") == Backfill(known=True, value="5")
    assert altered.tables[0].can_be_renamed("id") and not altered.tables[0].can_be_renamed("n")
    assert altered.concerns(None) and altered.concerns(("sales",))
    assert not altered.concerns(("public",))
    created_schema = captured_ddl.parse(message('{"tag": "CREATE SCHEMA", "schemas": ["s"]}'))
    assert not created_schema.concerns(None)  # zero-ETL: a no-op
    renamed_schema = captured_ddl.parse(message('{"tag": "ALTER SCHEMA", "schemas": ["s2"]}'))
    assert renamed_schema.concerns(("public",))
    dropped = captured_ddl.parse(
        message(
            '{"tag": "DROP TABLE", "dropped": [{"type": "table", "schema": "public", "name": "t"}]}'
        )
    )
    assert dropped.concerns(("public",)) and not dropped.concerns(("sales",))
    with pytest.raises(DataError, match="not DDL capture's"):
        captured_ddl.parse(message('{"tables": []}'))
