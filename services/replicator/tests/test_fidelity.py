"""Zero-ETL's documented behaviour, one test per rule (named after it), against real Postgres.

docs/replication.md lists each rule with AWS's behaviour, zetl's, and the test here.
"""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Callable

import psycopg2
import psycopg2.errors

from services.replicator.tests.support import (
    Query,
    columns,
    copied_then_streamed,
    count,
    dev,
    execute,
    states,
    table_state,
    zetl,
)
from tests.harness import PostgresServer, free_port
from tests.support import running, wait_for
from zetl.errors import DataError
from zetl.http import serve_metrics
from zetl_replicator.config import ReplicatorConfig
from zetl_replicator.ops.verify import VerifyReport, verify

# AWS's columns, in AWS's order (Redshift Database Developer Guide, SVV_INTEGRATION_TABLE_STATE
# and SVV_INTEGRATION).
SVV_INTEGRATION_TABLE_STATE = [
    "integration_id",
    "target_database",
    "schema_name",
    "table_name",
    "table_state",
    "table_last_replicated_checkpoint",
    "reason",
    "last_updated_timestamp",
    "table_rows",
    "table_size",
    "is_history_mode",
]
SVV_INTEGRATION = [
    "integration_id",
    "target_database",
    "source",
    "state",
    "current_lag",
    "last_replicated_checkpoint",
    "total_tables_replicated",
    "total_tables_failed",
    "creation_time",
    "refresh_interval",
    "source_database",
    "is_history_mode",
    "latest_detected_change_time",
    "latest_applied_change_time",
    "auto_remediation",
    "latest_shipped_source_commit_time",
]


def test_add_column_with_default_fills_existing_rows(
    config: ReplicatorConfig, replica: Query
) -> None:
    src = config.source_url
    execute(
        src,
        "CREATE TABLE t (id int PRIMARY KEY, v text)",
        "INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 50) g",
    )
    with running(config):
        execute(
            src,
            "ALTER TABLE t ADD COLUMN status text NOT NULL DEFAULT 'new'",
            "ALTER TABLE t ADD COLUMN score numeric(5,1) DEFAULT 2.5",
            "ALTER TABLE t ADD COLUMN note text",
            "INSERT INTO t (id, v, status) VALUES (51, 'v51', 'later')",
        )
        wait_for(lambda: replica("SELECT count(*) FROM public.t") == [(51,)], "row 51")
        assert replica(
            "SELECT status, score::text, note, count(*) FROM public.t GROUP BY 1, 2, 3 ORDER BY 1"
        ) == [("later", "2.5", None, 1), ("new", "2.5", None, 50)]
        # The replica keeps no default of its own: later rows carry their values.
        assert replica("SELECT count(*) FROM pg_attrdef WHERE adrelid = 'public.t'::regclass") == [
            (0,)
        ]
        # A volatile default rewrites the table with a value per row that no change message
        # carries: the table is copied again (ResyncRequired resyncs by itself).
        execute(
            src,
            "ALTER TABLE t ADD COLUMN r double precision DEFAULT random()",
            "UPDATE t SET v = 'w' WHERE id = 1",
        )
        wait_for(
            lambda: count(replica, "public.t", "r IS NOT NULL") == 51,
            "the re-copied table with every row's random value",
            timeout=60,
        )
        assert verify(config).ok


def test_unlogged_temporary_foreign_tables_are_not_replicated(
    config: ReplicatorConfig, replica: Query
) -> None:
    src = config.source_url
    execute(
        src,
        "CREATE TABLE kept (id int PRIMARY KEY)",
        "CREATE UNLOGGED TABLE scratch (id int PRIMARY KEY)",
        "CREATE TABLE parted (id int, PRIMARY KEY (id)) PARTITION BY RANGE (id)",
        "CREATE UNLOGGED TABLE parted_1 PARTITION OF parted FOR VALUES FROM (0) TO (100)",
        "CREATE EXTENSION IF NOT EXISTS postgres_fdw",
        "CREATE SERVER IF NOT EXISTS elsewhere FOREIGN DATA WRAPPER postgres_fdw",
        "CREATE FOREIGN TABLE remote (id int) SERVER elsewhere",
        "INSERT INTO scratch VALUES (1)",
    )
    session = psycopg2.connect(src)  # a temporary table lives as long as its session
    session.autocommit = True
    try:
        with session.cursor() as cur:
            cur.execute("CREATE TEMPORARY TABLE temp_t (id int PRIMARY KEY)")
        with running(config) as replicator:
            # Made after start: discovery meets them while streaming too.
            execute(src, "CREATE UNLOGGED TABLE later (id int PRIMARY KEY)")
            execute(src, "INSERT INTO kept VALUES (1)", "INSERT INTO later VALUES (1)")
            wait_for(lambda: replica("SELECT count(*) FROM public.kept") == [(1,)], "kept")
            wait_for(lambda: "public.later" in states(replica), "later discovered")
            found = states(replica)
            assert found["public.scratch"][0] == "Failed"
            assert "unlogged" in (found["public.scratch"][1] or "")
            assert found["public.later"][0] == "Failed"
            assert "public.remote" not in found
            # A partition: Failed with its partitioned table (declarative partitioning)
            assert found["public.parted_1"][0] == "Failed"
            assert "partition of public.parted" in (found["public.parted_1"][1] or "")
            assert not any("temp_t" in name for name in found)
            assert replicator.metrics.streaming
            # SET LOGGED makes it eligible: it is copied and replicates.
            execute(src, "ALTER TABLE later SET LOGGED", "INSERT INTO later VALUES (2)")
            wait_for(lambda: count(replica, "public.later") == 2, "logged", timeout=60)
    finally:
        session.close()


def test_table_whose_changes_the_replica_refuses_fails_alone(
    config: ReplicatorConfig, replica: Query, warehouse_server: PostgresServer
) -> None:
    src = config.source_url
    execute(
        src,
        "CREATE TABLE customer (id int PRIMARY KEY, name text)",
        "CREATE TABLE orders (id int PRIMARY KEY, amount int)",
        "INSERT INTO customer SELECT g, 'c' || g FROM generate_series(1, 10) g",
    )
    with running(config) as replicator:
        server = serve_metrics(
            replicator.metrics.render, replicator.metrics.healthy, 0, host="127.0.0.1"
        )
        try:
            # Rows written into the replica behind the replicator's back.
            warehouse_server.execute(
                "INSERT INTO public.customer SELECT g, 'x' FROM generate_series(11, 14) g",
                config.replica_database,
            )
            execute(
                src,
                "INSERT INTO customer SELECT g, 'c' || g FROM generate_series(11, 14) g",
                "INSERT INTO orders SELECT g, g FROM generate_series(1, 5) g",
            )
            wait_for(
                lambda: (table_state(config, "public.customer") or ("",))[0] == "Failed",
                "customer Failed in svv_integration_table_state",
            )
            _, reason = table_state(config, "public.customer") or ("", "")
            assert "duplicate key" in (reason or "") and "LSN" in (reason or "")
            # Every other table keeps streaming, and says so.
            execute(src, "INSERT INTO orders SELECT g, g FROM generate_series(6, 9) g")
            wait_for(lambda: replica("SELECT count(*) FROM public.orders") == [(9,)], "orders")
            assert table_state(config, "public.orders") == ("Synced", None)
            wait_for(
                lambda: (
                    dev(
                        config,
                        "SELECT state, total_tables_failed, total_tables_replicated FROM"
                        f" svv_integration WHERE target_database = '{config.replica_database}'",
                    )
                    == [("CdcRefreshState", 1, 1)]
                ),
                "svv_integration counts",
            )
            port = server.server_address[1]
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as r:
                assert r.status == 200
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                assert "zetl_replicator_tables_apply_failed 1" in r.read().decode()
            result = zetl(config, "status", "--json")
            assert result.returncode == 0, result.stdout
            tables = {t["table"]: t for t in json.loads(result.stdout)["tables"]}
            assert tables["public.customer"]["state"] == "Failed"
            assert tables["public.orders"]["state"] == "Synced"
            # The documented way back: refresh it (a re-copy from the source).
            result = zetl(config, "refresh", "TABLE", "public.customer")
            assert result.returncode == 0, result.stdout
            wait_for(
                lambda: table_state(config, "public.customer") == ("Synced", None),
                "customer Synced again",
            )
            assert replica("SELECT count(*) FROM public.customer WHERE name = 'x'") == [(0,)]
            assert verify(config).ok
        finally:
            server.shutdown()


def test_refused_changes_in_a_shared_batch_fail_only_their_table(
    config: ReplicatorConfig, replica: Query, warehouse_server: PostgresServer
) -> None:
    """An error that names no table (here a trigger someone put on the replica) in a batch of
    several tables' changes: the batch is applied table by table to find the one."""
    src = config.source_url
    execute(
        src,
        "CREATE TABLE a (id int PRIMARY KEY, v varchar(20))",
        "CREATE TABLE b (id int PRIMARY KEY, v text)",
    )
    with running(config):
        warehouse_server.execute(
            "CREATE FUNCTION public.refuse() RETURNS trigger LANGUAGE plpgsql"
            " AS $$BEGIN RAISE EXCEPTION 'refused by a trigger'; END$$",
            config.replica_database,
        )
        warehouse_server.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON public.a"
            " FOR EACH ROW EXECUTE FUNCTION public.refuse()",
            config.replica_database,
        )
        conn = psycopg2.connect(src)
        with conn, conn.cursor() as cur:  # one source transaction: one batch
            cur.execute("INSERT INTO b SELECT g, 'b' FROM generate_series(1, 5) g")
            cur.execute("INSERT INTO a VALUES (1, 'a')")
            cur.execute("INSERT INTO b SELECT g, 'b' FROM generate_series(6, 10) g")
        conn.close()
        wait_for(lambda: replica("SELECT count(*) FROM public.b") == [(10,)], "b applied")
        wait_for(lambda: (table_state(config, "public.a") or ("",))[0] == "Failed", "a Failed")
        assert "refused by a trigger" in ((table_state(config, "public.a") or ("", ""))[1] or "")
        assert table_state(config, "public.b") == ("Synced", None)


def test_status_shows_the_replica_when_the_source_is_down(
    config: ReplicatorConfig, replica: Query
) -> None:
    execute(config.source_url, "CREATE TABLE t (id int PRIMARY KEY)", "INSERT INTO t VALUES (1)")
    with running(config):
        wait_for(lambda: replica("SELECT count(*) FROM public.t") == [(1,)], "copy")
    down = config.source_url.rsplit("@", 1)
    host_port, _, database = down[1].partition("/")
    host = host_port.rsplit(":", 1)[0]
    unreachable = f"{down[0]}@{host}:{free_port()}/{database}"
    result = zetl(
        ReplicatorConfig(**{**config.__dict__, "source_url": unreachable}), "status", "--json"
    )
    assert result.returncode == 1, result.stdout
    data = json.loads(result.stdout[: result.stdout.rindex("}") + 1])
    assert data["source_error"] and "cannot connect" in data["source_error"]
    assert [(t["table"], t["state"]) for t in data["tables"]] == [("public.t", "Synced")]


def test_monitoring_views_have_aws_columns_and_states(
    config: ReplicatorConfig, replica: Query
) -> None:
    src = config.source_url
    execute(
        src,
        "CREATE TABLE t (id int PRIMARY KEY)",
        "CREATE TABLE no_key (v text)",
        "INSERT INTO t SELECT generate_series(1, 20)",
    )
    with running(config):
        wait_for(lambda: table_state(config, "public.t") == ("Synced", None), "t Synced")
        for view, expected in (
            ("svv_integration_table_state", SVV_INTEGRATION_TABLE_STATE),
            ("svv_integration", SVV_INTEGRATION),
        ):
            got = dev(
                config,
                "SELECT attname FROM pg_attribute"
                f" WHERE attrelid = to_regclass('{view}') AND attnum > 0 ORDER BY attnum",
            )
            assert [r[0] for r in got] == expected
        assert table_state(config, "public.no_key") == ("Failed", "table has no primary key")
        execute(src, "INSERT INTO t SELECT generate_series(21, 30)")
        wait_for(
            lambda: (
                dev(
                    config,
                    "SELECT table_rows, is_history_mode FROM svv_integration_table_state"
                    " WHERE table_name = 't'",
                )
                == [(30, False)]
            ),
            "table_rows",
        )
        integration = dev(
            config,
            "SELECT source, state, current_lag >= 0, source_database, total_tables_replicated,"
            " total_tables_failed FROM svv_integration",
        )
        assert integration == [("PostgreSQL", "CdcRefreshState", True, src.rsplit("/", 1)[1], 1, 1)]
        # Lag history: sampled every few seconds, with the applied position.
        wait_for(
            lambda: dev(config, "SELECT count(*) >= 2 FROM zetl.lag_history") == [(True,)],
            "lag samples",
        )
        sample = dev(
            config,
            "SELECT lag_seconds >= 0, applied_lsn IS NOT NULL FROM zetl.lag_history"
            " ORDER BY sampled_at DESC LIMIT 1",
        )
        assert sample == [(True, True)]
        # Bounded: old samples are pruned.
        execute(
            config.warehouse_url,
            "INSERT INTO zetl.lag_history (sampled_at, lag_seconds) VALUES"
            " (now() - interval '30 days', 1)",
        )
        wait_for(
            lambda: (
                dev(
                    config,
                    "SELECT count(*) FROM zetl.lag_history"
                    " WHERE sampled_at < now() - interval '8 days'",
                )
                == [(0,)]
            ),
            "old samples pruned",
        )
    # Stopped: the integration no longer reports CdcRefreshState for long.
    assert dev(config, "SELECT count(*) FROM svv_integration") == [(1,)]


def test_drop_table_drops_it_in_the_replica(config: ReplicatorConfig, replica: Query) -> None:
    src = config.source_url
    execute(src, "CREATE TABLE t (id int PRIMARY KEY)", "CREATE TABLE kept (id int PRIMARY KEY)")
    with running(config):
        wait_for(lambda: count(replica, "public.t") == 0, "t copied")
        execute(src, "INSERT INTO t VALUES (1)", "DROP TABLE t", "INSERT INTO kept VALUES (1)")
        wait_for(lambda: count(replica, "public.t") is None, "t dropped in the replica")
        wait_for(lambda: table_state(config, "public.t") is None, "t gone from the state view")
        # The drop is seen by discovery, maybe before the stream brings the later insert.
        wait_for(lambda: count(replica, "public.kept") == 1, "the insert after the drop applied")
        assert verify(config).ok


def test_rename_table_and_set_schema_rename_or_move_it(
    config: ReplicatorConfig, replica: Query
) -> None:
    src = config.source_url
    execute(
        src,
        "CREATE SCHEMA sales",
        "CREATE TABLE t (id int PRIMARY KEY, v text)",
        "CREATE TABLE m (id int PRIMARY KEY)",
        "INSERT INTO t SELECT g, 'v' FROM generate_series(1, 10) g",
        "INSERT INTO m SELECT generate_series(1, 5)",
    )
    moved = ReplicatorConfig(**{**config.__dict__, "schemas": ("public", "sales")})
    with running(moved):
        wait_for(lambda: count(replica, "public.t") == 10, "t copied")
        execute(
            src,
            "ALTER TABLE t RENAME TO renamed",
            "INSERT INTO renamed VALUES (11, 'w')",
            "ALTER TABLE m SET SCHEMA sales",
            "INSERT INTO sales.m VALUES (6)",
        )
        wait_for(lambda: count(replica, "public.renamed") == 11, "renamed", timeout=60)
        wait_for(lambda: count(replica, "sales.m") == 6, "moved", timeout=60)
        wait_for(lambda: count(replica, "public.t") is None, "old name gone")
        wait_for(lambda: count(replica, "public.m") is None, "old schema's table gone")
        assert table_state(moved, "public.renamed") == ("Synced", None)
        assert verify(moved).ok


def test_rename_column_renames_it_in_place(config: ReplicatorConfig, replica: Query) -> None:
    src = config.source_url
    execute(
        src,
        "CREATE TABLE t (id int PRIMARY KEY, old_name text, other int)",
        "INSERT INTO t SELECT g, 'v' || g, g FROM generate_series(1, 20) g",
    )
    with running(config):
        wait_for(lambda: count(replica, "public.t") == 20, "t copied")
        oid = replica("SELECT 'public.t'::regclass::oid")
        execute(
            src,
            "ALTER TABLE t RENAME COLUMN old_name TO new_name",
            "ALTER TABLE t RENAME COLUMN id TO key",
            "UPDATE t SET new_name = 'w' WHERE key = 1",
        )
        wait_for(lambda: count(replica, "public.t", "new_name = 'w'") == 1, "renamed column")
        # Renamed in place: the same table, never re-copied.
        assert replica("SELECT 'public.t'::regclass::oid") == oid
        assert table_state(config, "public.t") == ("Synced", None)
        assert verify(config).ok


def test_add_primary_key_makes_a_failed_table_replicate(
    config: ReplicatorConfig, replica: Query
) -> None:
    src = config.source_url
    execute(src, "CREATE TABLE t (id int, v text)", "INSERT INTO t VALUES (1, 'a')")
    with running(config):
        wait_for(lambda: table_state(config, "public.t") is not None, "t discovered")
        assert table_state(config, "public.t") == ("Failed", "table has no primary key")
        execute(src, "ALTER TABLE t ADD PRIMARY KEY (id)", "INSERT INTO t VALUES (2, 'b')")
        wait_for(lambda: count(replica, "public.t") == 2, "t replicated")
        wait_for(lambda: table_state(config, "public.t") == ("Synced", None), "t Synced")
        assert verify(config).ok


def test_resync_required_resyncs_by_itself(config: ReplicatorConfig, replica: Query) -> None:
    src = config.source_url
    execute(
        src,
        "CREATE TABLE t (id int PRIMARY KEY, v bigint)",
        "INSERT INTO t SELECT g, g FROM generate_series(1, 10) g",
    )
    with running(config):
        wait_for(lambda: count(replica, "public.t") == 10, "t copied")
        # A narrowing type change cannot be applied to the replica: ResyncRequired, then a
        # re-copy without anyone asking.
        execute(src, "ALTER TABLE t ALTER COLUMN v TYPE int", "UPDATE t SET v = 0 WHERE id = 1")
        wait_for(
            lambda: ("v", "integer") in columns(replica, "public.t"),
            "t re-copied with its new type",
            timeout=60,
        )
        wait_for(lambda: table_state(config, "public.t") == ("Synced", None), "Synced")
        assert verify(config).ok


def test_verify_is_clean_after_every_ddl_kind_under_load(
    config: ReplicatorConfig, replica: Query
) -> None:
    import threading

    src = config.source_url
    execute(
        src,
        "CREATE TABLE busy (id bigserial PRIMARY KEY, v int)",
        "CREATE TABLE d (id int PRIMARY KEY, a text, b int)",
        "INSERT INTO d SELECT g, 'a', g FROM generate_series(1, 100) g",
    )
    stop = threading.Event()

    def load() -> None:
        conn = psycopg2.connect(src)
        conn.autocommit = True
        with conn.cursor() as cur:
            while not stop.wait(0.02):  # steady, like the generator: verify needs quiet moments
                cur.execute("INSERT INTO busy (v) SELECT generate_series(1, 5)")
                cur.execute("UPDATE d SET b = b + 1 WHERE id = (random() * 99)::int + 1")
        conn.close()

    reports: list[VerifyReport] = []

    def clean() -> bool:
        try:
            reports.append(verify(config))
        except DataError:  # a column renamed between verify's look at the shape and its sums
            return False
        return reports[-1].ok

    def shape(table: str) -> list[tuple[str, str]]:
        return columns(replica, table) if count(replica, table) is not None else []

    def d_has(*names: str) -> Callable[[], bool]:
        return lambda: [c for c, _ in shape("public.d")] == list(names)

    def synced(table: str) -> Callable[[], bool]:
        return lambda: table_state(config, table) == ("Synced", None)

    # Each DDL, and what the replica shows once it has applied it: verify is asked only then
    # (under load, the replica can take a while to get there).
    steps: list[tuple[str, Callable[[], bool]]] = [
        ("ALTER TABLE d ADD COLUMN c text DEFAULT 'x'", d_has("id", "a", "b", "c")),
        ("ALTER TABLE d RENAME COLUMN a TO a2", d_has("id", "a2", "b", "c")),
        ("ALTER TABLE d DROP COLUMN c", d_has("id", "a2", "b")),
        ("ALTER TABLE d ALTER COLUMN b TYPE bigint", lambda: ("b", "bigint") in shape("public.d")),
        (  # a narrowing: re-copied
            "ALTER TABLE d ALTER COLUMN b TYPE int",
            lambda: ("b", "integer") in shape("public.d") and synced("public.d")(),
        ),
        ("CREATE TABLE e (id int PRIMARY KEY)", synced("public.e")),
        ("ALTER TABLE e RENAME TO e2", synced("public.e2")),
        ("DROP TABLE e2", lambda: count(replica, "public.e2") is None),
        ("TRUNCATE d", lambda: count(replica, "public.d") == 0),
    ]
    writer = threading.Thread(target=load, daemon=True)
    with running(config):
        writer.start()
        try:
            for ddl, applied in steps:
                execute(src, ddl)
                wait_for(applied, f"replica after {ddl}", timeout=180, ignoring=(psycopg2.Error,))
                reports.clear()
                try:
                    wait_for(clean, f"verify clean after {ddl}", timeout=180)
                except AssertionError as exc:
                    raise AssertionError(f"{exc}: {reports[-1:]}") from None
        finally:
            stop.set()
            writer.join(timeout=10)
        assert verify(config).ok


def test_aws_supported_types_replicate_in_their_redshift_types(
    config: ReplicatorConfig, replica: Query
) -> None:
    src = config.source_url
    execute(
        src,
        "CREATE TABLE t (id int PRIMARY KEY, tags text[], addr inet, net cidr, mac macaddr,"
        " span interval, price money, doc xml, flags bit(4), vflags bit varying(8),"
        " u uuid, at time, att timetz, name varchar(10), note text, amount numeric(12,2),"
        " ts timestamp(3), tstz timestamptz, j jsonb, b bytea)",
        "INSERT INTO t VALUES (1, '{a,b}', '10.0.0.1', '10.0.0.0/8', '08:00:2b:01:02:03',"
        " '1 day 02:00', 12.5, '<a>x</a>', B'1010', B'101',"
        " 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '12:34:56', '12:34:56+02', 'short', 'long',"
        " 1.25, '2024-01-01 10:00:00.123', '2024-01-01 10:00:00+00', '{\"k\": 1}', '\\x0102')",
    )
    with running(config):
        copied_then_streamed(src, replica)
        assert table_state(config, "public.t") == ("Synced", None)
        types = dict(columns(replica, "public.t"))
        assert types["name"] == types["note"] == "character varying(65535)"
        assert types["u"] == "character varying(36)"
        assert types["at"] == "character varying(19)" and types["att"] == "character varying(22)"
        assert types["addr"] == types["net"] == "character varying(19)"
        assert types["mac"] == "character varying(17)"
        assert types["doc"] == "character varying(65535)"
        assert types["amount"] == "numeric(12,2)" and types["span"] == "interval"
        assert types["ts"] == "timestamp without time zone"
        assert replica("SELECT DISTINCT addr, at, u FROM public.t") == [
            ("10.0.0.1", "12:34:56", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")
        ]
        assert verify(config).ok


def test_numeric_without_precision_or_above_38_is_failed(
    config: ReplicatorConfig, replica: Query
) -> None:
    execute(
        config.source_url,
        "CREATE TABLE loose (id int PRIMARY KEY, n numeric)",
        "CREATE TABLE wide (id int PRIMARY KEY, n numeric(40,2))",
        "CREATE TABLE fine (id int PRIMARY KEY, n numeric(38,2))",
    )
    with running(config):
        wait_for(lambda: table_state(config, "public.fine") == ("Synced", None), "fine")
        wait_for(lambda: table_state(config, "public.wide") is not None, "wide")
        assert "without precision" in ((table_state(config, "public.loose") or ("", ""))[1] or "")
        assert "precision <= 38" in ((table_state(config, "public.wide") or ("", ""))[1] or "")


def test_nan_infinity_bc_timestamps_and_years_above_9999_fail_their_table(
    config: ReplicatorConfig, replica: Query
) -> None:
    src = config.source_url
    execute(
        src,
        "CREATE TABLE copied_nan (id int PRIMARY KEY, n numeric(10,2))",
        "INSERT INTO copied_nan VALUES (1, 'NaN')",
        "CREATE TABLE streamed (id int PRIMARY KEY, at timestamptz, d date)",
        "CREATE TABLE other (id int PRIMARY KEY)",
    )
    with running(config):
        wait_for(lambda: table_state(config, "public.other") == ("Synced", None), "other")
        state, reason = table_state(config, "public.copied_nan") or ("", "")
        assert state == "Failed" and "NaN" in (reason or ""), reason
        execute(
            src,
            "INSERT INTO streamed VALUES (1, '2024-01-01', '2024-01-01')",
            "INSERT INTO streamed VALUES (2, 'infinity', '2024-01-01')",
            "INSERT INTO other VALUES (1)",
        )
        wait_for(lambda: (table_state(config, "public.streamed") or ("",))[0] == "Failed", "fail")
        assert "infinity" in ((table_state(config, "public.streamed") or ("", ""))[1] or "")
        wait_for(lambda: count(replica, "public.other") == 1, "other keeps streaming")
    execute(  # timestamps: Redshift's range (dates have their own: test_values.py)
        src,
        "CREATE TABLE bc (id int PRIMARY KEY, at timestamp)",
        "INSERT INTO bc VALUES (1, '0044-03-15 12:00 BC')",
        "CREATE TABLE far (id int PRIMARY KEY, at timestamptz)",
        "INSERT INTO far VALUES (1, '12000-01-01 00:00+00')",
    )
    with running(config):  # found while streaming: copied, and the copy refused
        for name in ("public.bc", "public.far"):
            wait_for(
                lambda: (table_state(config, name) or ("",))[0] == "Failed",  # noqa: B023
                f"{name} Failed",
            )
            assert "B.C." in ((table_state(config, name) or ("", ""))[1] or "")


def test_values_over_65535_bytes_fail_their_table(config: ReplicatorConfig, replica: Query) -> None:
    src = config.source_url
    execute(src, "CREATE TABLE t (id int PRIMARY KEY, v text)", "INSERT INTO t VALUES (1, 'a')")
    with running(config):
        wait_for(lambda: count(replica, "public.t") == 1, "copied")
        execute(src, "INSERT INTO t VALUES (2, repeat('x', 70000))")
        wait_for(lambda: (table_state(config, "public.t") or ("",))[0] == "Failed", "Failed")
        assert "65,535" in ((table_state(config, "public.t") or ("", ""))[1] or "")


def test_replica_is_read_only_and_only_synced_tables_are_queryable(
    config: ReplicatorConfig, replica: Query, warehouse_server: PostgresServer
) -> None:
    src = config.source_url
    role = f"analyst_{config.slot}"
    execute(
        src,
        "CREATE TABLE t (id int PRIMARY KEY)",
        "CREATE TABLE failing (id int PRIMARY KEY)",
        "INSERT INTO t VALUES (1)",
    )
    warehouse_server.execute(f"CREATE ROLE {role}")
    try:
        with running(config):
            wait_for(lambda: count(replica, "public.t") == 1, "t copied")

            def as_analyst(statement: str) -> str:
                conn = warehouse_server.connect(config.replica_database)
                try:
                    with conn.cursor() as cur:
                        cur.execute(f"SET ROLE {role}")
                        cur.execute(statement)
                        return "ok"
                except psycopg2.Error as exc:
                    return exc.pgcode or "error"
                finally:
                    conn.close()

            denied = "42501"  # insufficient_privilege
            assert as_analyst("SELECT * FROM public.t") == "ok"
            assert as_analyst("INSERT INTO public.t VALUES (2)") == denied
            assert as_analyst("CREATE TABLE public.mine (id int)") == denied
            # A table that is not Synced cannot be read, until QUERY_ALL_STATES is on.
            warehouse_server.execute(
                "INSERT INTO public.failing VALUES (1)", config.replica_database
            )
            execute(src, "INSERT INTO failing VALUES (1)")
            wait_for(lambda: (table_state(config, "public.failing") or ("",))[0] == "Failed", "F")
            assert as_analyst("SELECT * FROM public.failing") == denied
            result = zetl(config, "database", "set", "QUERY_ALL_STATES", "=", "TRUE")
            assert result.returncode == 0, result.stdout
            assert as_analyst("SELECT * FROM public.failing") == "ok"
            assert "QUERY_ALL_STATES = True" in zetl(config, "database", "show").stdout
            assert zetl(config, "database", "set", "NOPE", "=", "1").returncode == 2
    finally:
        warehouse_server.execute(f"DROP OWNED BY {role}", config.replica_database)
        warehouse_server.execute(f"DROP ROLE {role}")


def test_data_filter_in_aws_syntax_adds_and_drops_tables(
    config: ReplicatorConfig, replica: Query
) -> None:
    src = config.source_url
    database = src.rsplit("/", 1)[1]
    execute(
        src,
        "CREATE SCHEMA sales",
        "CREATE TABLE orders (id int PRIMARY KEY)",
        "CREATE TABLE tmp_scratch (id int PRIMARY KEY)",
        "CREATE TABLE sales.invoices (id int PRIMARY KEY)",
        "CREATE TABLE sales.secret (id int PRIMARY KEY)",
    )
    first = f"include: {database}.*.*, exclude: {database}.public./^tmp_/, exclude: *.sales.secret"
    filtered = ReplicatorConfig(**{**config.__dict__, "data_filter": first})
    with running(filtered):
        wait_for(lambda: count(replica, "sales.invoices") == 0, "sales.invoices copied")
        wait_for(lambda: count(replica, "public.orders") == 0, "orders copied")
        assert count(replica, "public.tmp_scratch") is None
        assert count(replica, "sales.secret") is None
    # Changing the filter adds and drops tables; a later rule overrides an earlier one.
    second = f"include: {database}.public.*, include: {database}.sales.secret"
    with running(ReplicatorConfig(**{**config.__dict__, "data_filter": second})):
        wait_for(lambda: count(replica, "sales.secret") == 0, "secret added")
        wait_for(lambda: count(replica, "sales.invoices") is None, "invoices dropped")
        wait_for(lambda: count(replica, "public.tmp_scratch") == 0, "tmp_scratch added")
    for bad in ("exclude: *.*.*", "include: public.orders", "include: a.b./unclosed"):
        result = zetl(ReplicatorConfig(**{**config.__dict__, "data_filter": bad}), "doctor")
        assert result.returncode == 2, (bad, result.stdout)


def test_doctor_checks_source_parameters(
    config: ReplicatorConfig, source_server: PostgresServer
) -> None:
    execute(config.source_url, "CREATE TABLE t (id int PRIMARY KEY, at time)")
    source_server.execute("ALTER SYSTEM SET wal_sender_timeout = '10s'")
    source_server.execute("SELECT pg_reload_conf()")
    try:
        result = zetl(config, "doctor")
    finally:
        source_server.execute("ALTER SYSTEM RESET wal_sender_timeout")
        source_server.execute("SELECT pg_reload_conf()")
    output = " ".join(result.stdout.split())
    assert result.returncode == 1, output
    assert "wal_sender_timeout is 10000 ms" in output
    assert "REPLICA IDENTITY FULL" in output
    assert re.search(r"public\.t\W+Synced", output), output
    assert re.search(r"public\.t\.at\W+replicates as character varying\(19\)", output), output


def test_refresh_interval_commits_at_most_every_n_seconds(
    config: ReplicatorConfig, replica: Query
) -> None:
    import time

    src = config.source_url
    execute(src, "CREATE TABLE t (id int PRIMARY KEY)")
    with running(config) as replicator:
        wait_for(lambda: count(replica, "public.t") == 0, "t copied")
        result = zetl(config, "database", "set", "REFRESH_INTERVAL", "3")
        assert result.returncode == 0, result.stdout
        wait_for(lambda: replicator.refresh_interval == 3, "REFRESH_INTERVAL picked up")
        before = replicator.metrics.batches_committed
        started = time.monotonic()
        for i in range(20):  # twenty source transactions
            execute(src, f"INSERT INTO t VALUES ({i})")
        wait_for(lambda: count(replica, "public.t") == 20, "every row", timeout=60)
        elapsed = time.monotonic() - started
        commits = replicator.metrics.batches_committed - before
        assert commits <= elapsed / 3 + 1, (commits, elapsed)
        wait_for(
            lambda: dev(config, "SELECT refresh_interval FROM svv_integration") == [(3,)],
            "svv_integration.refresh_interval",
        )
