"""Eligibility (replica identity, partitioned tables), shared by the replicator and
``zetl doctor``, and the commands' behaviour around Failed, dropped and uninitialised tables."""

from __future__ import annotations

import psycopg2
import pytest

from services.replicator.tests.support import Query, dev, execute, rows, states, zetl
from tests.harness import PostgresServer
from tests.support import running, wait_for
from zetl.errors import ConfigError, DataError
from zetl_replicator.config import ReplicatorConfig
from zetl_replicator.ops.doctor import check_tables
from zetl_replicator.source import catalog
from zetl_replicator.sync.copy import copy_table


def test_rds_replica_identity_full_makes_nothing_and_using_index_tables_replicate(
    config: ReplicatorConfig, replica: Query
) -> None:
    """rds.replica_identity_full = 1, emulated by the source's event trigger: tables set to
    NOTHING or USING INDEX (before the replicator starts, or while it streams) become FULL and
    replicate, updates and deletes included; zetl doctor says it is in force."""
    src = config.source_url
    execute(
        src,
        "CREATE TABLE by_code (id int PRIMARY KEY, code text NOT NULL UNIQUE, v int)",
        "ALTER TABLE by_code REPLICA IDENTITY USING INDEX by_code_code_key",
        "CREATE TABLE by_key (id int PRIMARY KEY, v int)",
        "ALTER TABLE by_key REPLICA IDENTITY USING INDEX by_key_pkey",
        "CREATE TABLE nothing (id int PRIMARY KEY, v int)",
        "ALTER TABLE nothing REPLICA IDENTITY NOTHING",
        "INSERT INTO by_code SELECT g, 'c' || g, g FROM generate_series(1, 10) g",
        "INSERT INTO nothing SELECT g, g FROM generate_series(1, 10) g",
    )
    assert rows(
        src,
        "SELECT relname, relreplident FROM pg_class WHERE relname IN"
        " ('by_code', 'by_key', 'nothing') ORDER BY 1",
    ) == [("by_code", "f"), ("by_key", "f"), ("nothing", "f")]
    with running(config):
        wait_for(lambda: states(replica).get("public.nothing") == ("Synced", None), "synced")
        execute(
            src,
            "UPDATE by_code SET v = 0 WHERE id <= 3",
            "DELETE FROM by_code WHERE id > 8",
            "UPDATE nothing SET v = -v WHERE id = 1",
            "DELETE FROM nothing WHERE id = 10",
            # A table that turns NOTHING while streaming: FULL at once, and it replicates.
            "ALTER TABLE by_key REPLICA IDENTITY NOTHING",
            "INSERT INTO by_key VALUES (1, 1)",
            "DELETE FROM by_key WHERE id = 1",
            "INSERT INTO by_key VALUES (2, 2)",
        )
        expected = {
            "SELECT count(*), sum(v) FROM public.by_code": [(8, 4 + 5 + 6 + 7 + 8)],
            "SELECT count(*), sum(v) FROM public.nothing": [(9, 55 - 2 - 10)],
            "SELECT id FROM public.by_key": [(2,)],
        }
        wait_for(
            lambda: all(replica(query) == result for query, result in expected.items()),
            "updates and deletes of the NOTHING / USING INDEX tables",
        )
        found = states(replica)
        assert {found[t] for t in ("public.by_code", "public.by_key", "public.nothing")} == {
            ("Synced", None)
        }
    result = zetl(config, "doctor")
    output = " ".join(result.stdout.split())
    assert "rds.replica_identity_full emulated" in output and "DDL capture on" in output


def test_without_replica_identity_full_nothing_and_using_index_tables_fail(
    config: ReplicatorConfig, replica: Query
) -> None:
    """A source without the parameter (and without its emulation), as a plain Postgres: the
    tables whose identity carries no primary key are Failed with the reason."""
    src = config.source_url
    execute(
        src,
        "DROP EVENT TRIGGER zetl_replica_identity_full",
        "CREATE TABLE by_code (id int PRIMARY KEY, code text NOT NULL UNIQUE, v int)",
        "ALTER TABLE by_code REPLICA IDENTITY USING INDEX by_code_code_key",
        "CREATE TABLE nothing (id int PRIMARY KEY)",
        "ALTER TABLE nothing REPLICA IDENTITY NOTHING",
    )
    with running(config):
        found = states(replica)
        assert found["public.by_code"][0] == "Failed"
        assert "USING INDEX other than the primary key" in str(found["public.by_code"][1])
        assert found["public.nothing"][0] == "Failed"
        # Resyncing a Failed table is refused with its reason, which stays as it was.
        reason = states(replica)["public.by_code"]
        result = zetl(config, "resync", "public.by_code", "--no-wait")
        assert result.returncode == 2, result.stdout
        assert "USING INDEX other than the primary key" in " ".join(result.stdout.split())
        assert states(replica)["public.by_code"] == reason
    result = zetl(config, "doctor")
    assert result.returncode == 1, result.stdout
    output = " ".join(result.stdout.split())
    assert "rds.replica_identity_full off" in output and "REPLICA IDENTITY DEFAULT" in output


def test_partitioned_table_and_every_partition_are_failed(
    config: ReplicatorConfig, replica: Query
) -> None:
    """AWS: all tables affected by declarative partitioning enter a failed state: the parent
    and each partition (sub-partitions too) are listed Failed with the reason, and counted."""
    src = config.source_url
    execute(
        src,
        "CREATE TABLE events (id int, day date, PRIMARY KEY (id, day)) PARTITION BY RANGE (day)",
        "CREATE TABLE events_2026 PARTITION OF events"
        " FOR VALUES FROM ('2026-01-01') TO ('2027-01-01')",
        "CREATE TABLE events_2027 PARTITION OF events"
        " FOR VALUES FROM ('2027-01-01') TO ('2028-01-01') PARTITION BY RANGE (day)",
        "CREATE TABLE events_2027_h1 PARTITION OF events_2027"
        " FOR VALUES FROM ('2027-01-01') TO ('2027-07-01')",
        "CREATE TABLE plain (id int PRIMARY KEY)",
        "INSERT INTO events VALUES (1, '2026-05-01'), (2, '2027-02-01')",
    )
    partitioned = {"public.events", "public.events_2026", "public.events_2027"}
    partitioned.add("public.events_2027_h1")
    with running(config):
        found = states(replica)
        assert {n for n, (state, _) in found.items() if state == "Failed"} == partitioned
        assert "partitioned table" in str(found["public.events"][1])
        for partition in partitioned - {"public.events"}:
            assert "partition of public.events" in str(found[partition][1]), partition
        assert found["public.plain"] == ("Synced", None)
        for name in partitioned:
            assert replica(f"SELECT to_regclass('{name}')") == [(None,)]  # not in the replica
        # A partition added while streaming: Failed too.
        execute(
            src,
            "CREATE TABLE events_2028 PARTITION OF events"
            " FOR VALUES FROM ('2028-01-01') TO ('2029-01-01')",
        )
        wait_for(
            lambda: states(replica).get("public.events_2028", ("",))[0] == "Failed",
            "the new partition Failed",
        )
        wait_for(
            lambda: (
                dev(
                    config,
                    "SELECT total_tables_failed, total_tables_replicated FROM svv_integration"
                    f" WHERE target_database = '{config.replica_database}'",
                )
                == [(5, 1)]
            ),
            "svv_integration counts every affected table",
        )
        listed = dev(
            config,
            "SELECT table_name FROM svv_integration_table_state WHERE table_state = 'Failed'"
            f" AND target_database = '{config.replica_database}' ORDER BY 1",
        )
        assert [r[0] for r in listed] == sorted(
            n.split(".")[1] for n in partitioned | {"public.events_2028"}
        )
    # doctor applies the very rules the replicator applied: errors exactly for Failed tables.
    conn = psycopg2.connect(src)
    try:
        tables = catalog.list_tables(conn, ["public"])
    finally:
        conn.close()
    errors = {f.subject for f in check_tables(tables) if f.severity == "error"}
    assert errors == partitioned | {"public.events_2028"}


def test_tables_dropped_or_renamed_on_the_source_leave_the_replica(
    config: ReplicatorConfig, replica: Query
) -> None:
    """As zero-ETL does: no stale "Synced" copy stays behind (verify once reported them)."""
    execute(
        config.source_url,
        "CREATE TABLE kept (id int PRIMARY KEY)",
        "CREATE TABLE dropped (id int PRIMARY KEY)",
        "CREATE TABLE renamed (id int PRIMARY KEY)",
        "INSERT INTO kept VALUES (1)",
    )
    with running(config):
        assert zetl(config, "verify").returncode == 0
        execute(config.source_url, "DROP TABLE dropped", "ALTER TABLE renamed RENAME TO moved")
        wait_for(lambda: states(replica).get("public.moved", ("",))[0] == "Synced", "moved copied")
        wait_for(
            lambda: not {"public.dropped", "public.renamed"} & set(states(replica)),
            "the old names gone",
        )
        result = zetl(config, "verify")
    assert result.returncode == 0, result.stdout
    assert replica("SELECT count(*) FROM pg_tables WHERE tablename IN ('dropped', 'renamed')") == [
        (0,)
    ]


def test_status_and_verify_do_not_create_the_replica(
    config: ReplicatorConfig, warehouse_server: PostgresServer
) -> None:
    def replica_exists() -> bool:
        return bool(
            rows(
                warehouse_server.url(),
                f"SELECT 1 FROM pg_database WHERE datname = '{config.replica_database}'",
            )
        )

    for command in ("status", "verify"):
        result = zetl(config, command)
        assert result.returncode == 1, result.stdout
        assert "not initialised: run zetl replicate" in result.stdout
        assert not replica_exists()
    # An empty database of that name (no state store) is not initialised either, and stays empty.
    warehouse_server.execute(f"CREATE DATABASE {config.replica_database}")
    result = zetl(config, "status", "--json")
    assert result.returncode == 1, result.stdout
    assert "not initialised: run zetl replicate" in result.stdout
    no_schema = "SELECT count(*) FROM pg_namespace WHERE nspname = 'zetl'"
    assert rows(warehouse_server.url(config.replica_database), no_schema) == [(0,)]


def test_resync_keeps_views_on_the_replica_table(
    config: ReplicatorConfig, replica: Query, warehouse_server: PostgresServer
) -> None:
    execute(
        config.source_url,
        "CREATE TABLE t (id int PRIMARY KEY, v text NOT NULL)",
        "INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 30) g",
    )
    with running(config):
        # dbt's models: a view on the replicated table, in the replica database.
        warehouse_server.execute(
            "CREATE VIEW public.t_model AS SELECT id, upper(v) AS v FROM public.t",
            config.replica_database,
        )
        warehouse_server.execute("DELETE FROM public.t WHERE id <= 10", config.replica_database)
        result = zetl(config, "resync", "public.t")
        assert result.returncode == 0, result.stdout
        assert replica("SELECT count(*), max(v) FROM public.t_model") == [(30, "V9")]
        execute(config.source_url, "INSERT INTO t VALUES (31, 'new')")
        wait_for(lambda: replica("SELECT count(*) FROM public.t_model") == [(31,)], "row 31")
        assert zetl(config, "verify").returncode == 0


def test_copy_names_dependents_when_the_shape_changed(
    config: ReplicatorConfig, replica: Query, warehouse_server: PostgresServer
) -> None:
    execute(
        config.source_url,
        "CREATE TABLE t (id int PRIMARY KEY, v text)",
        "INSERT INTO t VALUES (1, 'one'), (2, 'two')",
    )
    warehouse_server.execute(f"CREATE DATABASE {config.replica_database}")
    # The replica's t has an older shape (v int) and a view depends on it.
    warehouse_server.execute(
        "CREATE TABLE public.t (id int PRIMARY KEY, v int)", config.replica_database
    )
    warehouse_server.execute("INSERT INTO public.t VALUES (7, 7)", config.replica_database)
    warehouse_server.execute(
        "CREATE VIEW public.t_model AS SELECT v FROM public.t", config.replica_database
    )
    src = psycopg2.connect(config.source_url)
    warehouse = warehouse_server.connect(config.replica_database)
    warehouse.autocommit = False
    try:
        with src.cursor() as cur:
            cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            cur.execute("SELECT pg_export_snapshot()")
            snapshot = str(cur.fetchone()[0])  # type: ignore[index]
        conn = psycopg2.connect(config.source_url)
        try:
            table = catalog.find_table(conn, "public", "t")
        finally:
            conn.close()
        assert table is not None
        with pytest.raises(DataError, match="view t_model depends on table t"):
            copy_table(config.source_url, snapshot, table, warehouse)
        warehouse.rollback()
        assert replica("SELECT * FROM public.t") == [(7, 7)]  # untouched

        # Without the dependent view the table is recreated with the source's shape.
        warehouse_server.execute("DROP VIEW public.t_model", config.replica_database)
        assert copy_table(config.source_url, snapshot, table, warehouse) == 2
        warehouse.commit()
    finally:
        src.close()
        warehouse.close()
    assert replica("SELECT id, v FROM public.t ORDER BY id") == [(1, "one"), (2, "two")]


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("ZETL_SCHEMAS", " , ", "names no schema"),
        ("ZETL_METRICS_PORT", "70000", "not a TCP port"),
        ("ZETL_METRICS_PORT", "80.5", "not a TCP port"),
    ],
)
def test_config_refuses_settings_that_would_silently_do_nothing(
    name: str, value: str, message: str
) -> None:
    environ = {
        "SOURCE_DATABASE_URL": "postgresql://s/db",
        "WAREHOUSE_DATABASE_URL": "postgresql://w/db",
    }
    with pytest.raises(ConfigError, match=message):
        ReplicatorConfig.from_env({**environ, name: value})
