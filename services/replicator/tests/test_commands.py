"""``zetl status``, ``verify``, ``doctor`` and ``resync`` as people run them."""

from __future__ import annotations

import json
from typing import Any

from services.replicator.tests.support import REFUSE_WRITES, Query, execute, table_state, zetl
from tests.harness import PostgresServer
from tests.support import running, wait_for
from zetl_replicator.config import ReplicatorConfig


def test_status_and_verify(
    config: ReplicatorConfig, replica: Query, warehouse_server: PostgresServer
) -> None:
    execute(
        config.source_url,
        "CREATE TABLE t (id int PRIMARY KEY, v text)",
        "CREATE TABLE bad (v text)",
        "INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 100) g",
    )
    with running(config):
        execute(config.source_url, "UPDATE t SET v = 'w' WHERE id <= 10")
        wait_for(lambda: replica("SELECT count(*) FROM t WHERE v = 'w'") == [(10,)], "update")
        statuses: list[dict[str, Any]] = []

        def applied_in_view() -> bool:  # the views are brought up to date every 2 s
            result = zetl(config, "status", "--json")
            assert result.returncode == 0, result.stdout
            statuses.append(json.loads(result.stdout))
            tables = {t["table"]: t for t in statuses[-1]["tables"]}
            return bool(tables["public.t"]["rows_applied"] == 10)

        wait_for(applied_in_view, "rows applied in svv_integration_table_state")
        status = statuses[-1]
        assert status["slot_health"] == "reserved" and status["slot_active"]
        tables = {t["table"]: t for t in status["tables"]}
        assert tables["public.t"]["state"] == "Synced"
        assert tables["public.bad"]["state"] == "Failed"
        assert status["lag_bytes"] is not None

        result = zetl(config, "verify")
        assert result.returncode == 0, result.stdout
        assert "replica matches source" in result.stdout

        # Someone writes into the replica behind the replicator's back: verify must notice.
        warehouse_server.execute(
            "UPDATE public.t SET v = 'tampered' WHERE id = 50", config.replica_database
        )
        result = zetl(config, "verify")
        assert result.returncode == 1, result.stdout
        assert "public.t" in result.stdout


def test_doctor(config: ReplicatorConfig) -> None:
    execute(config.source_url, "CREATE TABLE fine (id int PRIMARY KEY, at timestamptz)")
    result = zetl(config, "doctor")
    assert result.returncode == 0, result.stdout
    assert "meets every zero-ETL requirement" in result.stdout

    execute(
        config.source_url,
        'CREATE TABLE "Mixed" (id int PRIMARY KEY)',
        "CREATE TABLE nokey (id int)",
        "CREATE TABLE net (id int PRIMARY KEY, ip inet, tags text[])",
        "CREATE TABLE loose (id int PRIMARY KEY, n numeric)",
    )
    result = zetl(config, "doctor")
    assert result.returncode == 1, result.stdout
    output = " ".join(result.stdout.split())
    assert "public.nokey" in output and "PRIMARY KEY" in output
    # inet and arrays replicate (AWS's list); inet changes type; numeric needs a precision.
    assert "public.net.ip" in output and "character varying(19)" in output
    assert "numeric without precision" in output
    assert "Mixed" in output


def test_resync_recopies_one_table(
    config: ReplicatorConfig, replica: Query, warehouse_server: PostgresServer
) -> None:
    execute(
        config.source_url,
        "CREATE TABLE a (id int PRIMARY KEY, v int)",
        "CREATE TABLE b (id int PRIMARY KEY, v int)",
        "INSERT INTO a SELECT g, g FROM generate_series(1, 50) g",
        "INSERT INTO b SELECT g, g FROM generate_series(1, 50) g",
    )
    with running(config):
        warehouse_server.execute("DELETE FROM public.a WHERE id <= 20", config.replica_database)
        result = zetl(config, "resync", "public.a")
        assert result.returncode == 0, result.stdout
        assert replica("SELECT count(*) FROM public.a") == [(50,)]
        execute(config.source_url, "INSERT INTO a VALUES (51, 51)", "INSERT INTO b VALUES (51, 51)")
        wait_for(
            lambda: (
                replica("SELECT count(*) FROM public.a") == [(51,)]
                and replica("SELECT count(*) FROM public.b") == [(51,)]
            ),
            "changes after resync",
        )
        assert zetl(config, "verify").returncode == 0
    result = zetl(config, "resync", "public.nope", "--no-wait")
    assert result.returncode == 2


def test_verify_names_a_table_failed_while_replicating_apart(
    config: ReplicatorConfig, replica: Query, warehouse_server: PostgresServer
) -> None:
    """A table the zero-ETL rules leave out, and one failed while replicating (its changes
    refused), are both not compared; the second is named apart, with its way back."""
    execute(
        config.source_url,
        "CREATE TABLE t (id int PRIMARY KEY)",
        "CREATE TABLE fine (id int PRIMARY KEY)",
        "INSERT INTO t VALUES (1)",
        "INSERT INTO fine VALUES (1)",
    )
    with running(config):
        wait_for(lambda: replica("SELECT count(*) FROM t") == [(1,)], "the copy")
        warehouse_server.execute(
            REFUSE_WRITES.format(message="refused by the replica", code="23514", table="t"),
            config.replica_database,
        )
        execute(config.source_url, "INSERT INTO t VALUES (2)", "INSERT INTO fine VALUES (2)")
        wait_for(lambda: (table_state(config, "public.t") or ("",))[0] == "Failed", "t Failed")
        wait_for(lambda: replica("SELECT count(*) FROM fine") == [(2,)], "fine goes on")
        result = zetl(config, "verify")
    assert result.returncode == 0, result.stdout
    assert "public.t: Failed while replicating (zetl status says why), not compared" in (
        " ".join(result.stdout.split())
    )
    assert "zetl refresh TABLE public.t" in result.stdout
