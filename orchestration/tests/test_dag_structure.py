"""zetl_daily imports with no errors, and has the shape, schedule and retries it should."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from orchestration.tests.support import DAGS, airflow_bin

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def described(airflow_env: dict[str, str]) -> dict[str, Any]:
    done = subprocess.run(
        [str(airflow_bin("python")), str(HERE / "describe_dag.py"), str(DAGS)],
        env=airflow_env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_the_dag_imports_without_errors(described: dict[str, Any]) -> None:
    assert described["import_errors"] == {}
    # Found, not skipped: a DAG file Airflow ignores (it must name both "airflow" and "dag")
    # would leave this list empty.
    assert described["dag_ids"] == ["zetl_daily"]


def test_schedule_catchup_and_failure_callbacks(described: dict[str, Any]) -> None:
    dag = described["zetl_daily"]
    assert dag["schedule"] == "@daily"
    assert dag["catchup"] is False
    assert dag["max_active_runs"] == 1
    assert dag["has_failure_callback"]


def test_every_task_retries_with_exponential_backoff(described: dict[str, Any]) -> None:
    tasks = described["zetl_daily"]["tasks"]
    for task_id, task in tasks.items():
        assert task["retries"] >= 1, task_id
        assert task["retry_exponential_backoff"] > 1, task_id
        assert task["retry_delay"] > 0, task_id
        assert task["max_retry_delay"] >= task["retry_delay"], task_id
        assert task["has_failure_callback"], task_id


def test_the_dbt_graph_becomes_one_task_per_model_and_test(described: dict[str, Any]) -> None:
    tasks = described["zetl_daily"]["tasks"]
    dbt = {t: v for t, v in tasks.items() if t.startswith("transform.")}
    # A model with tests is a group (<model>.run, then <model>.test); one without is a single
    # task <model>_run.
    runs = {t for t, v in dbt.items() if v["operator"] == "DbtRunLocalOperator"}
    assert runs, "no dbt task rendered"
    assert all(t.endswith((".run", "_run")) for t in runs), runs
    models = {t.removeprefix("transform.")[: -len(".run")] for t in runs}
    for model in models:
        run, test = f"transform.{model}.run", f"transform.{model}.test"
        if run not in dbt:
            continue  # no test of its own (an intermediate view)
        # A model's own tests run right after it, and nothing else runs in between.
        assert dbt[test]["upstream"] == [run], model
        assert dbt[test]["operator"] == "DbtTestLocalOperator"
    # A test over several models (relationships) is its own task, after all of them.
    detached = {t: v for t, v in dbt.items() if t not in runs and not t.endswith(".test")}
    assert detached
    for task_id, task in detached.items():
        assert task["operator"] == "DbtTestLocalOperator", task_id
        assert len(task["upstream"]) >= 2 and all(u.endswith(".test") for u in task["upstream"])
    # Staging models start once the replica link is fresh; the others after the tests of the
    # models they read.
    roots = {t for t, v in dbt.items() if "replica_link" in v["upstream"]}
    assert roots and all(t.endswith(".run") for t in roots)
    for task_id, task in dbt.items():
        for upstream in task["upstream"]:
            assert upstream == "replica_link" or upstream.startswith("transform."), task_id
    # The contract's marts are among the models, each followed by its tests.
    for mart in (
        "daily_player_transactions",
        "agg_discord_deposits_by_country",
        "player_top_three_deposits",
        "daily_revenue",
        "transaction_reconciliation",
        "publisher_payouts",
    ):
        assert mart in models, mart
        assert f"transform.{mart}.test" in dbt, mart


def test_order_gate_models_quality_record(described: dict[str, Any]) -> None:
    tasks = described["zetl_daily"]["tasks"]
    assert tasks["record_start"]["upstream"] == []
    assert tasks["record_start"]["is_setup"]
    assert tasks["replication_gate"]["upstream"] == ["record_start"]
    # The local target reads the replica through postgres_fdw: its import is refreshed first.
    assert tasks["replica_link"]["upstream"] == ["replication_gate"]
    leaves = {
        t
        for t in tasks
        if t.startswith("transform.") and not any(t in v["upstream"] for v in tasks.values())
    }
    assert leaves == set(), "every dbt task leads to the quality gate"
    quality_upstream = tasks["marts_quality"]["upstream"]
    assert quality_upstream and all(
        u.startswith("transform.") and u.endswith("test") for u in quality_upstream
    )
    # The record runs last, even after a failure, as a teardown of record_start.
    assert tasks["record_run"]["is_teardown"]
    assert sorted(tasks["record_run"]["upstream"]) == ["marts_quality", "record_start"]
