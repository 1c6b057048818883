"""Initial copy + streaming into the replica, exactly as the source has it, with table states."""

from __future__ import annotations

import psycopg2
import pytest

from services.replicator.tests.support import Query, execute, rows, states
from tests.harness import PostgresServer
from tests.support import running, wait_for
from zetl_replicator.config import ReplicatorConfig
from zetl_replicator.ops.verify import verify

BIG = "toast-" * 5000


def test_copy_then_stream_every_change_kind(config: ReplicatorConfig, replica: Query) -> None:
    src = config.source_url
    execute(
        src,
        "CREATE TABLE orders (id bigint PRIMARY KEY, customer text NOT NULL,"
        " amount numeric(12,2), placed_at timestamptz, notes text)",
        "CREATE TABLE lines (order_id bigint, line int, qty int, PRIMARY KEY (order_id, line))",
        "CREATE TABLE no_key (a int, b text)",
        "CREATE TABLE odd (id int PRIMARY KEY, at point)",
        "INSERT INTO orders SELECT g, 'c' || g, g * 1.5, '2024-01-01'::timestamptz + g *"
        " interval '1 hour', CASE WHEN g = 1 THEN repeat('toast-', 5000) END"
        " FROM generate_series(1, 500) g",
        "INSERT INTO lines SELECT g, l, l FROM generate_series(1, 100) g, generate_series(1, 3) l",
        "INSERT INTO no_key VALUES (1, 'x')",
    )
    with running(config):
        assert replica("SELECT count(*), sum(amount) FROM public.orders") == [(500, 187875)]
        assert states(replica)["public.orders"] == ("Synced", None)
        assert states(replica)["public.no_key"] == ("Failed", "table has no primary key")
        assert states(replica)["public.odd"][0] == "Failed"
        assert "at (point)" in str(states(replica)["public.odd"][1])
        assert replica("SELECT to_regclass('public.no_key')") == [(None,)]

        execute(
            src,
            "INSERT INTO orders VALUES (501, 'tab\there', 1.00, now(), E'multi\\nline')",
            "UPDATE orders SET customer = 'changed' WHERE id = 1",  # TOASTed notes unchanged
            "UPDATE orders SET id = 1000 WHERE id = 2",  # primary-key change
            "UPDATE lines SET line = 9 WHERE order_id = 5 AND line = 1",  # composite key change
            "DELETE FROM orders WHERE id BETWEEN 10 AND 19",
            "BEGIN; INSERT INTO orders VALUES (600, 'tx', 6, now(), NULL);"
            " UPDATE orders SET amount = 7 WHERE id = 600; DELETE FROM lines WHERE order_id = 7;"
            " COMMIT",
            "TRUNCATE lines",
            "INSERT INTO lines VALUES (1, 1, 1)",
        )
        wait_for(
            lambda: (
                replica("SELECT count(*) FROM public.lines") == [(1,)]
                and replica("SELECT count(*) FROM public.orders WHERE id = 600") == [(1,)]
            ),
            "the changes to reach the replica",
        )
        assert replica(
            "SELECT customer, notes = repeat('toast-', 5000) FROM public.orders WHERE id = 1"
        ) == [("changed", True)]
        assert replica("SELECT count(*) FROM public.orders WHERE id IN (2, 10, 19)") == [(0,)]
        assert replica("SELECT customer FROM public.orders WHERE id = 1000") == [("c2",)]
        assert replica("SELECT customer, notes FROM public.orders WHERE id = 501") == [
            ("tab\there", "multi\nline")
        ]
        assert replica("SELECT amount FROM public.orders WHERE id = 600")[0][0] == 7
        report = verify(config)
        assert report.ok, report
        assert {c.table for c in report.checks} == {"public.orders", "public.lines"}
    assert rows(
        src, f"SELECT count(*) FROM pg_replication_slots WHERE slot_name = '{config.slot}'"
    ) == [(1,)]


def test_restart_resumes_exactly_once(config: ReplicatorConfig, replica: Query) -> None:
    src = config.source_url
    execute(src, "CREATE TABLE t (id int PRIMARY KEY, v int)", "INSERT INTO t VALUES (1, 0)")
    with running(config):
        execute(
            src,
            *[
                f"UPDATE t SET v = v + 1 WHERE id = 1; INSERT INTO t VALUES ({i}, {i})"
                for i in range(2, 52)
            ],
        )
        wait_for(lambda: replica("SELECT count(*) FROM public.t") == [(51,)], "first run")
    # Changes made while the replicator is down arrive once, not twice, after the restart.
    execute(
        src,
        *[
            f"UPDATE t SET v = v + 1 WHERE id = 1; INSERT INTO t VALUES ({i}, {i})"
            for i in range(52, 102)
        ],
    )
    with running(config):
        wait_for(lambda: replica("SELECT count(*) FROM public.t") == [(101,)], "second run")
        assert replica("SELECT v FROM public.t WHERE id = 1") == [(100,)]
        assert replica("SELECT rows_applied FROM zetl.table_state") == [(200,)]
        assert verify(config).ok


def test_replica_is_read_only_to_other_roles(
    config: ReplicatorConfig, replica: Query, warehouse_server: PostgresServer
) -> None:
    execute(config.source_url, "CREATE TABLE t (id int PRIMARY KEY)", "INSERT INTO t VALUES (1)")
    with running(config):
        pass
    db = config.replica_database
    warehouse_server.execute("CREATE ROLE analyst LOGIN PASSWORD 'analyst'", db)
    try:
        url = warehouse_server.url(config.replica_database).replace(
            f"{warehouse_server.user}:{warehouse_server.password}", "analyst:analyst"
        )
        assert rows(url, "SELECT count(*) FROM public.t") == [(1,)]
        with pytest.raises(psycopg2.errors.InsufficientPrivilege):
            execute(url, "DELETE FROM public.t")
        with pytest.raises(psycopg2.errors.InsufficientPrivilege):
            execute(url, "CREATE TABLE public.mine (id int)")
    finally:
        warehouse_server.execute("DROP OWNED BY analyst", db)
        warehouse_server.execute("DROP ROLE analyst", db)
