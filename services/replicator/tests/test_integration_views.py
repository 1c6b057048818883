"""The integration's states and system views as Redshift has them: SVV_INTEGRATION's sixteen
columns, one SYS_INTEGRATION_TABLE_STATE_CHANGE row per transition, SYS_INTEGRATION_ACTIVITY's
checkpoints, character(128) text, sys:monitor access, and a status that tells the truth about
a replicator that is not running. Each test is named after the rule it checks
(docs/replication.md, the rule table)."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from typing import Any

import psycopg2
import psycopg2.errors
import pytest

from services.replicator.tests.support import (
    Query,
    dev,
    execute,
    replica_url,
    rows,
    table_state,
    zetl,
)
from tests.harness import PostgresServer
from tests.support import running, wait_for
from zetl.integration import ERROR_STATE
from zetl_replicator.apply import registry
from zetl_replicator.config import ReplicatorConfig
from zetl_replicator.ops.metrics import Metrics
from zetl_replicator.ops.monitor import MONITOR_ROLE, ensure_monitoring
from zetl_replicator.sync import tablesync

# AWS's columns, in AWS's order, with their types (Redshift Database Developer Guide).
SVV_INTEGRATION = [
    ("integration_id", "character(128)"),
    ("target_database", "character(128)"),
    ("source", "character(128)"),
    ("state", "character(128)"),
    ("current_lag", "bigint"),
    ("last_replicated_checkpoint", "character(128)"),
    ("total_tables_replicated", "integer"),
    ("total_tables_failed", "integer"),
    ("creation_time", "timestamp without time zone"),
    ("refresh_interval", "integer"),
    ("source_database", "character(128)"),
    ("is_history_mode", "boolean"),
    ("latest_detected_change_time", "timestamp without time zone"),
    ("latest_applied_change_time", "timestamp without time zone"),
    ("auto_remediation", "boolean"),
    ("latest_shipped_source_commit_time", "timestamp without time zone"),
]
SYS_INTEGRATION_TABLE_STATE_CHANGE = [
    ("integration_id", "character(128)"),
    ("database_name", "character(128)"),
    ("schema_name", "character(128)"),
    ("table_name", "character(128)"),
    ("new_state", "character(128)"),
    ("table_last_replicated_checkpoint", "character(128)"),
    ("state_change_reason", "character(256)"),
    ("record_time", "timestamp without time zone"),
]
SYS_INTEGRATION_ACTIVITY = [
    ("integration_id", "character(128)"),
    ("target_database", "character(128)"),
    ("source", "character(128)"),
    ("checkpoint_name", "character(128)"),
    ("checkpoint_type", "character(16)"),
    ("checkpoint_bytes", "bigint"),
    ("last_commit_timestamp", "timestamp without time zone"),
    ("modified_tables", "integer"),
    ("integration_start_time", "timestamp without time zone"),
    ("integration_end_time", "timestamp without time zone"),
]
TEXT_OF_TABLE_STATE = [
    ("integration_id", "character(128)"),
    ("target_database", "character(128)"),
    ("schema_name", "character(128)"),
    ("table_name", "character(128)"),
    ("table_state", "character(128)"),
    ("table_last_replicated_checkpoint", "character(128)"),
    ("reason", "character(256)"),
]


def _columns(config: ReplicatorConfig, view: str) -> list[tuple[str, str]]:
    return [
        (str(r[0]), str(r[1]))
        for r in dev(
            config,
            "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute"
            f" WHERE attrelid = to_regclass('{view}') AND attnum > 0 ORDER BY attnum",
        )
    ]


def _changes(config: ReplicatorConfig, table: str) -> list[str]:
    return [
        str(r[0])
        for r in dev(
            config,
            "SELECT new_state FROM sys_integration_table_state_change"
            f" WHERE schema_name = 'public' AND table_name = '{table}'"
            f" AND database_name = '{config.replica_database}' ORDER BY record_time",
        )
    ]


def _status(config: ReplicatorConfig) -> tuple[int, dict[str, object]]:
    result = zetl(config, "status", "--json")
    return result.returncode, json.loads(result.stdout[: result.stdout.rindex("}") + 1])


def test_svv_integration_has_awss_sixteen_columns_and_character_128_text(
    config: ReplicatorConfig, replica: Query
) -> None:
    execute(config.source_url, "CREATE TABLE t (id int PRIMARY KEY)", "INSERT INTO t VALUES (1)")
    with running(config):
        wait_for(lambda: table_state(config, "public.t") == ("Synced", None), "t Synced")
        execute(config.source_url, "INSERT INTO t VALUES (2)")
        wait_for(
            lambda: (
                dev(
                    config,
                    "SELECT latest_applied_change_time IS NOT NULL FROM svv_integration",
                )
                == [(True,)]
            ),
            "latest_applied_change_time",
        )
        assert _columns(config, "svv_integration") == SVV_INTEGRATION
        assert _columns(config, "sys_integration_table_state_change") == (
            SYS_INTEGRATION_TABLE_STATE_CHANGE
        )
        assert _columns(config, "sys_integration_activity") == SYS_INTEGRATION_ACTIVITY
        assert _columns(config, "svv_integration_table_state")[:7] == TEXT_OF_TABLE_STATE
        # Blank-padded as on Redshift: a reader that does not strip sees 128 characters.
        padded = rows(config.warehouse_url, "SELECT state, source FROM svv_integration")
        assert [(len(padded[0][0]), padded[0][0].rstrip())] == [(128, "CdcRefreshState")]
        found = dev(
            config,
            "SELECT latest_detected_change_time >= latest_applied_change_time,"
            " latest_shipped_source_commit_time >= latest_applied_change_time,"
            " auto_remediation FROM svv_integration",
        )
        assert found == [(True, True, False)]


def test_every_table_state_transition_is_one_row_of_sys_integration_table_state_change(
    config: ReplicatorConfig, replica: Query
) -> None:
    src = config.source_url
    execute(src, "CREATE TABLE t (id int PRIMARY KEY)", "INSERT INTO t VALUES (1)")
    execute(src, "CREATE TABLE no_key (v text)")
    with running(config):
        wait_for(lambda: table_state(config, "public.t") == ("Synced", None), "t Synced")
        wait_for(lambda: _changes(config, "t") == ["ResyncInitiated", "Synced"], "t's log")
        assert _changes(config, "no_key") == ["Failed"]
        reason = dev(
            config,
            "SELECT state_change_reason FROM sys_integration_table_state_change"
            " WHERE table_name = 'no_key'",
        )
        assert reason == [("table has no primary key",)]
        # A re-copy deletes the old copy first: ResyncDeleted, then the copy's own states.
        assert zetl(config, "resync", "public.t").returncode == 0
        wait_for(
            lambda: (
                _changes(config, "t")[2:]
                == ["ResyncRequired", "ResyncDeleted", "ResyncInitiated", "Synced"]
            ),
            "the resync's transitions",
        )
        # A dropped table leaves svv_integration_table_state; its last word is Deleted.
        execute(src, "DROP TABLE t")
        wait_for(lambda: _changes(config, "t")[-1:] == ["Deleted"], "t Deleted")
        assert table_state(config, "public.t") is None
        checkpoints = dev(
            config,
            "SELECT count(*) FROM sys_integration_table_state_change"
            " WHERE table_name = 't' AND new_state = 'Synced'"
            " AND table_last_replicated_checkpoint LIKE '%/%'",
        )
        assert checkpoints == [(2,)]


def test_sys_integration_activity_records_snapshot_and_cdc_checkpoints(
    config: ReplicatorConfig, replica: Query
) -> None:
    src = config.source_url
    execute(
        src,
        "CREATE TABLE a (id int PRIMARY KEY, v text)",
        "CREATE TABLE b (id int PRIMARY KEY, v text)",
        "INSERT INTO a SELECT g, repeat('x', 100) FROM generate_series(1, 1000) g",
    )
    with running(config):
        wait_for(lambda: table_state(config, "public.b") == ("Synced", None), "b Synced")
        execute(src, "INSERT INTO b SELECT g, 'y' FROM generate_series(1, 500) g")

        def cdc() -> list[tuple[object, ...]]:
            return dev(
                config,
                "SELECT checkpoint_bytes, modified_tables, last_commit_timestamp IS NOT NULL,"
                " integration_start_time < integration_end_time"
                " FROM sys_integration_activity WHERE checkpoint_type = 'cdc'",
            )

        wait_for(lambda: bool(cdc()), "a cdc checkpoint", 60)
        bytes_, modified, committed, ordered = cdc()[0]
        assert int(str(bytes_)) > 0 and int(str(modified)) >= 1 and committed and ordered
        snapshot = dev(
            config,
            "SELECT sum(modified_tables), min(checkpoint_bytes) > 0 FROM sys_integration_activity"
            " WHERE checkpoint_type = 'snapshot'",
        )
        assert snapshot == [(2, True)]


def test_status_and_svv_integration_show_the_growing_lag_of_a_stopped_replicator(
    config: ReplicatorConfig, replica: Query
) -> None:
    src = config.source_url
    execute(src, "CREATE TABLE t (id int PRIMARY KEY)", "INSERT INTO t VALUES (1)")
    with running(config):
        wait_for(lambda: replica("SELECT count(*) FROM public.t") == [(1,)], "copy")
        wait_for(lambda: _status(config)[1]["integration_state"] == "CdcRefreshState", "live")
        assert _status(config)[0] == 0
    # Stopped. The source goes on writing; nothing reaches the replica.
    execute(src, "INSERT INTO t SELECT generate_series(2, 100)")
    code, first = _status(config)
    assert code == 1, first
    assert first["integration_state"] == ERROR_STATE
    assert first["last_error"] == "the replicator stopped"
    assert int(str(first["lag_bytes"])) > 0
    view = dev(config, "SELECT state, current_lag FROM svv_integration")
    assert view[0][0] == ERROR_STATE
    lag = float(str(first["lag_seconds"]))

    def grown() -> bool:
        _, later = _status(config)
        again = dev(config, "SELECT current_lag FROM svv_integration")
        return float(str(later["lag_seconds"])) > lag + 1 and int(again[0][0]) > int(view[0][1])

    wait_for(grown, "the lag growing while the replicator is stopped")
    assert replica("SELECT count(*) FROM public.t") == [(1,)]


def test_svv_integration_says_error_state_after_30_seconds_without_a_report(
    config: ReplicatorConfig, replica: Query
) -> None:
    execute(config.source_url, "CREATE TABLE t (id int PRIMARY KEY)")
    with running(config):
        wait_for(
            lambda: dev(config, "SELECT state FROM svv_integration") == [("CdcRefreshState",)],
            "CdcRefreshState",
        )
    # A replicator that hangs says nothing at all: its last report, 31 s old, said all is well.
    execute(
        config.warehouse_url,
        "UPDATE zetl.integration_status SET state = 'CdcRefreshState', current_lag = 50,"
        " heartbeat = now() - interval '31 seconds'",
    )
    state, lag = dev(config, "SELECT state, current_lag FROM svv_integration")[0]
    assert state == ERROR_STATE
    assert 31_050 <= int(lag) < 31_050 + 30_000


def test_monitoring_views_are_readable_by_sys_monitor_members_only(
    config: ReplicatorConfig, warehouse_server: PostgresServer
) -> None:
    execute(
        config.warehouse_url,
        f"DO $$ BEGIN IF to_regrole('{MONITOR_ROLE}') IS NULL THEN"
        f" CREATE ROLE {MONITOR_ROLE} NOLOGIN; END IF; END $$",
        "DROP ROLE IF EXISTS zetl_test_watcher",
        "DROP ROLE IF EXISTS zetl_test_outsider",
        "CREATE ROLE zetl_test_watcher LOGIN PASSWORD 'watcher'",
        "CREATE ROLE zetl_test_outsider LOGIN PASSWORD 'outsider'",
        f"GRANT {MONITOR_ROLE} TO zetl_test_watcher",
        # What a default privilege or an older replicator granted: taken back.
        "CREATE SCHEMA IF NOT EXISTS zetl",
        "CREATE TABLE IF NOT EXISTS zetl.lag_history (sampled_at timestamptz NOT NULL"
        " DEFAULT now(), lag_seconds double precision, applied_lsn pg_lsn,"
        " target_database text)",
        "GRANT USAGE ON SCHEMA zetl TO PUBLIC",
        "GRANT SELECT ON zetl.lag_history TO PUBLIC, zetl_test_outsider",
    )
    ensure_monitoring(config.warehouse_url)
    url = config.warehouse_url.rsplit("@", 1)[1]
    for view in (
        "svv_integration",
        "svv_integration_table_state",
        "sys_integration_table_state_change",
        "sys_integration_activity",
        "zetl.lag_history",
    ):
        assert rows(f"postgresql://zetl_test_watcher:watcher@{url}", f"SELECT * FROM {view}") == []
        with pytest.raises(psycopg2.errors.InsufficientPrivilege):
            rows(f"postgresql://zetl_test_outsider:outsider@{url}", f"SELECT * FROM {view}")


def test_a_table_under_resync_is_not_queryable(
    config: ReplicatorConfig, replica: Query, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = config.source_url
    execute(src, "CREATE TABLE t (id int PRIMARY KEY)", "INSERT INTO t VALUES (1)")
    execute(
        config.warehouse_url,
        "DROP ROLE IF EXISTS zetl_test_reader",
        "CREATE ROLE zetl_test_reader LOGIN PASSWORD 'reader'",
    )
    reader_url = "postgresql://zetl_test_reader:reader@" + replica_url(config).rsplit("@", 1)[1]

    def readable() -> bool:
        try:
            rows(reader_url, "SELECT count(*) FROM public.t")
        except psycopg2.errors.InsufficientPrivilege:
            return False
        return True

    # Hold a re-copy just before its rows are copied, until the test has looked.
    copying, release = threading.Event(), threading.Event()
    copy = tablesync.copy_synced

    def held(*args: Any, **kwargs: Any) -> int:
        copying.set()
        release.wait(60)
        return copy(*args, **kwargs)

    with running(config):
        wait_for(lambda: table_state(config, "public.t") == ("Synced", None), "t Synced")
        assert readable()
        monkeypatch.setattr(tablesync, "copy_synced", held)
        try:
            assert zetl(config, "resync", "public.t", "--no-wait").returncode == 0
            wait_for(copying.is_set, "the re-copy under way")
            wait_for(
                lambda: table_state(config, "public.t") == ("ResyncInitiated", "copying"),
                "ResyncInitiated in the view",
            )
            assert not readable()  # refused, not empty: the table is not queryable
        finally:
            release.set()
        wait_for(lambda: table_state(config, "public.t") == ("Synced", None), "t re-copied")
        assert readable()


def test_dropped_source_keeps_a_history_mode_table_queryable(
    config: ReplicatorConfig, replica: Query
) -> None:
    src = config.source_url
    execute(src, "CREATE TABLE h (id int PRIMARY KEY, v text)", "INSERT INTO h VALUES (1, 'a')")
    with running(config):
        wait_for(lambda: table_state(config, "public.h") == ("Synced", None), "h Synced")
        assert zetl(config, "database", "set", "HISTORY_MODE", "=", "TRUE").returncode == 0
        wait_for(
            lambda: (
                replica(
                    "SELECT count(*) FROM pg_attribute WHERE attrelid = 'public.h'::regclass"
                    " AND attname = '_record_is_active'"
                )
                == [(1,)]
                and table_state(config, "public.h") == ("Synced", None)
            ),
            "h in history mode",
        )
        execute(src, "UPDATE h SET v = 'b' WHERE id = 1")
        wait_for(lambda: replica("SELECT count(*) FROM public.h") == [(2,)], "two versions")
        execute(src, "DROP TABLE h")
        wait_for(
            lambda: (table_state(config, "public.h") or ("",))[0] == "DroppedSource",
            "h DroppedSource",
        )
        assert _changes(config, "h")[-1] == "DroppedSource"
        # Kept, and readable by anyone the replica lets read.
        assert replica("SELECT count(*) FROM public.h") == [(2,)]
        assert rows(
            replica_url(config),
            "SELECT has_table_privilege('public', 'public.h', 'SELECT')",
        ) == [(True,)]


def test_latest_change_times_are_utc_timestamps(config: ReplicatorConfig, replica: Query) -> None:
    execute(config.source_url, "CREATE TABLE t (id int PRIMARY KEY)")
    with running(config):
        wait_for(lambda: table_state(config, "public.t") == ("Synced", None), "t Synced")
        execute(config.source_url, "INSERT INTO t VALUES (1)")
        wait_for(
            lambda: (
                dev(config, "SELECT latest_applied_change_time IS NOT NULL FROM svv_integration")
                == [(True,)]
            ),
            "applied time",
        )
        (applied,) = dev(config, "SELECT latest_applied_change_time FROM svv_integration")[0]
        assert isinstance(applied, datetime) and applied.tzinfo is None
        now = dev(config, "SELECT (now() AT TIME ZONE 'UTC')")[0][0]
        assert abs((now - applied).total_seconds()) < 120


def test_auto_remediation_recopies_a_table_the_warehouse_refused(
    config: ReplicatorConfig, replica: Query, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(registry, "AUTO_REMEDIATION_SECONDS", 1.0)
    src = config.source_url
    execute(src, "CREATE TABLE t (id int PRIMARY KEY, v text)", "INSERT INTO t VALUES (1, 'a')")
    with running(config) as replicator:
        wait_for(lambda: table_state(config, "public.t") == ("Synced", None), "t Synced")
        execute(src, "UPDATE t SET v = repeat('y', 70000) WHERE id = 1")  # over 65,535 bytes
        wait_for(lambda: (table_state(config, "public.t") or ("",))[0] == "Failed", "t Failed")
        # Without AUTO_REMEDIATION it stays Failed; with it (and TRUNCATECOLUMNS, which makes
        # the value fit) the replicator copies it again by itself.
        assert zetl(config, "database", "set", "TRUNCATECOLUMNS", "TRUE").returncode == 0
        assert (table_state(config, "public.t") or ("",))[0] == "Failed"
        result = zetl(config, "database", "set", "AUTO_REMEDIATION", "=", "TRUE")
        assert result.returncode == 0, result.stdout
        wait_for(lambda: table_state(config, "public.t") == ("Synced", None), "t re-copied", 60)
        assert replica("SELECT length(v) FROM public.t") == [(65535,)]
        assert "AUTO_REMEDIATION: copied again" in [
            str(r[0])
            for r in dev(
                config,
                "SELECT state_change_reason FROM sys_integration_table_state_change"
                " WHERE table_name = 't'",
            )
        ]
        wait_for(
            lambda: dev(config, "SELECT auto_remediation FROM svv_integration") == [(True,)],
            "auto_remediation in svv_integration",
        )
        assert "IntegrationAutoRemediationTriggered 1" in replicator.metrics.render()


def test_metrics_carry_awss_cloudwatch_names_beside_zetls() -> None:
    metrics = Metrics()
    metrics.lag_seconds = 1.5
    metrics.tables_replicated, metrics.tables_failed_replication = 7, 2
    metrics.applied_lsn, metrics.first_applied_lsn = 5000, 1000
    metrics.applied_commit_time = datetime(2026, 1, 1, tzinfo=UTC)
    text = metrics.render()
    for line in (
        "IntegrationLag 1500",
        "IntegrationNumTablesReplicated 7",
        "IntegrationNumTablesFailedReplication 2",
        "IntegrationDataTransferred 4000",
        "IntegrationLatestDetectedChange 0",
        f"IntegrationLatestAppliedChange {datetime(2026, 1, 1, tzinfo=UTC).timestamp()}",
        "zetl_replicator_lag_seconds 1.5",  # the names dashboards already use stay
        "zetl_replicator_applied_lsn 5000",
    ):
        assert line in text.splitlines(), line
