"""zetl_daily end to end: `airflow dags test` (SQLite metadata, no scheduler) against a real
warehouse the replicator fills from a generated workload.

The warehouse is set up by compose's own init script (compose/warehouse/10-zetl-roles.sh): the
replicator writes as zetl_replicator, and the DAG connects as zetl_orchestration, building the
marts as zetl_transform and checking them as zetl_dq (SET ROLE), as in compose.

One platform for the module, in this order: a healthy day succeeds; a broken mart row fails
the quality task; replication stopped past the lag bound fails the gate. Each run's record in
``zetl_orchestration.dag_run`` is checked, and the task states in Airflow's own database.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg2
import psycopg2.errors
import pytest

from orchestration.tests.support import REPOSITORY, airflow_bin
from tests.harness import PostgresServer
from tests.support import drop_slots, query, running, wait_for
from zetl_replicator.config import ReplicatorConfig

pytestmark = [pytest.mark.docker, pytest.mark.slow]

ZETL = Path(sys.executable).with_name("zetl")
DEADLINE = 180.0
ROLES_INIT = REPOSITORY / "compose" / "warehouse" / "10-zetl-roles.sh"
PASSWORDS = {
    "ZETL_REPLICATOR_PASSWORD": "replicator-Pw-1",
    "ZETL_TRANSFORM_PASSWORD": "transform-Pw-2",
    "ZETL_DQ_PASSWORD": "dq-Pw-3",
    "ZETL_DASHBOARD_PASSWORD": "dashboard-Pw-4",
    "ZETL_ORCHESTRATION_PASSWORD": "orchestration-Pw-5",
    "ZETL_REDSHIFT_PASSWORD": "redshift-Pw-6",
}


@dataclass
class Platform:
    source_url: str
    dev_url: str  # the superuser's: what the tests read and break
    replica_url: str
    replica_database: str
    config: ReplicatorConfig
    orchestration_url: str  # what the DAG connects as
    # Holds the running replicator between start_replicator and stop_replicator.
    replicating: ExitStack = field(default_factory=ExitStack)

    def start_replicator(self) -> None:
        self.replicating.enter_context(running(self.config, timeout=DEADLINE))

    def stop_replicator(self) -> None:
        """Stop the replicator (a no-op once stopped), raising any error it stopped with."""
        self.replicating.close()


def zetl(env: dict[str, str], *args: str) -> None:
    done = subprocess.run([str(ZETL), *args], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"zetl {' '.join(args)}: {done.stderr[-2000:]}"


def role_url(server: PostgresServer, role: str, database: str) -> str:
    password = PASSWORDS[f"{role.upper()}_PASSWORD"]
    return f"postgresql://{role}:{password}@{server.host}:{server.port}/{database}"


def init_roles(server: PostgresServer, database: str, replica: str) -> None:
    """compose/warehouse's init script, as the entrypoint runs it (the superuser), over TCP."""
    env = {
        **os.environ,
        **PASSWORDS,
        "PGHOST": server.host,
        "PGPORT": str(server.port),
        "PGPASSWORD": server.password,
        "POSTGRES_USER": server.user,
        "POSTGRES_DB": database,
        "ZETL_REPLICA_DATABASE": replica,
    }
    done = subprocess.run(
        ["bash", str(ROLES_INIT)], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, f"{ROLES_INIT.name}: {done.stderr[-2000:]}"


@pytest.fixture(scope="module")
def platform(source_server: PostgresServer, warehouse_server: PostgresServer) -> Iterator[Platform]:
    source_db = source_server.create_database("dagsrc")
    dev = warehouse_server.create_database("dagdev")
    # The default name, as on the platform: the marts checkpoint reads the replica through the
    # fdw schema raw_transactions_public. This session's warehouse server is the module's own.
    replica = "raw_transactions"
    init_roles(warehouse_server, dev, replica)
    source_url = source_server.url(source_db)
    config = ReplicatorConfig(
        source_url=source_url,
        warehouse_url=role_url(warehouse_server, "zetl_replicator", dev),
        replica_database=replica,
        slot=f"zetl_{uuid.uuid4().hex[:10]}",
        publication="zetl_publication",
        batch_max_seconds=0.2,
        discovery_interval_seconds=0.5,
    )
    env = {**os.environ, "SOURCE_DATABASE_URL": source_url}
    zetl(env, "migrate")
    zetl(env, "generate", "--max-events", "400", "--seed", "7")
    platform = Platform(
        source_url,
        warehouse_server.url(dev),
        warehouse_server.url(replica),
        replica,
        config,
        role_url(warehouse_server, "zetl_orchestration", dev),
    )
    platform.start_replicator()
    try:
        source_count = query(source_url, "SELECT count(*) FROM wallet_transaction")[0][0]
        assert source_count > 0, "the workload made no wallet transactions"

        def caught_up() -> bool:
            try:
                rows = query(platform.replica_url, "SELECT count(*) FROM wallet_transaction")
                states = query(
                    platform.dev_url,
                    "SELECT DISTINCT table_state::text FROM svv_integration_table_state"
                    " WHERE target_database = %s",
                    (replica,),
                )
            except psycopg2.Error:
                return False
            return rows[0][0] == source_count and states == [("Synced",)]

        wait_for(caught_up, "the replica to hold the workload with every table Synced", DEADLINE)
        yield platform
    finally:
        platform.stop_replicator()
        drop_slots(source_url)
        warehouse_server.drop_database(replica)
        warehouse_server.drop_database(dev)
        source_server.drop_database(source_db)


@pytest.fixture(scope="module")
def expectations(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where great_expectations writes its context and Data Docs during the runs."""
    return tmp_path_factory.mktemp("expectations")


@dataclass(frozen=True)
class DagRun:
    returncode: int
    output: str
    run_id: str
    task_states: dict[str, str]
    record: tuple[Any, ...]  # started_at, finished_at, outcome, reason


def run_dag(
    platform: Platform,
    airflow_env: dict[str, str],
    expectations: Path,
    logical_date: str,
    *extra: str,
    max_lag_seconds: float = 600,
) -> DagRun:
    env = {
        **airflow_env,
        "AIRFLOW_CONN_ZETL_WAREHOUSE": platform.orchestration_url,
        "ZETL_TRANSFORM_ROLE": "zetl_transform",
        "ZETL_DQ_ROLE": "zetl_dq",
        "ZETL_REPLICA_DATABASE": platform.replica_database,
        "ZETL_MAX_LAG_SECONDS": str(max_lag_seconds),
        # A failed task fails the run at once here; retries are the structure test's subject.
        "ZETL_DAG_RETRIES": "0",
        # The zetl command of the project's venv (the image has its own venv for it).
        "ZETL_DQ_COMMAND": f"{ZETL} dq run marts",
        "ZETL_LINK_COMMAND": f"{ZETL} transform link",
        "ZETL_EXPECTATIONS_DIR": str(expectations),
    }
    done = subprocess.run(
        [str(airflow_bin("airflow")), "dags", "test", "zetl_daily", logical_date, *extra],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    output = done.stdout + done.stderr
    Path(airflow_env["AIRFLOW_HOME"], f"dags-test-{logical_date}.log").write_text(output)
    database = Path(airflow_env["AIRFLOW_HOME"]) / "airflow.db"
    with sqlite3.connect(database) as meta:
        row = meta.execute(
            "SELECT run_id FROM dag_run WHERE dag_id = 'zetl_daily' AND logical_date LIKE ?",
            (logical_date + "%",),
        ).fetchone()
        assert row is not None, f"no DAG run for {logical_date}:\n{output[-4000:]}"
        run_id = str(row[0])
        states = dict(
            meta.execute(
                "SELECT task_id, state FROM task_instance WHERE dag_id = 'zetl_daily'"
                " AND run_id = ?",
                (run_id,),
            ).fetchall()
        )
    records = query(
        platform.dev_url,
        "SELECT started_at, finished_at, outcome, reason FROM zetl_orchestration.dag_run"
        " WHERE dag_id = 'zetl_daily' AND run_id = %s",
        (run_id,),
    )
    assert len(records) == 1, f"run {run_id} not recorded:\n{output[-4000:]}"
    return DagRun(done.returncode, output, run_id, states, records[0])


def test_a_healthy_day_runs_every_step_and_is_recorded(
    platform: Platform, airflow_env: dict[str, str], expectations: Path
) -> None:
    run = run_dag(platform, airflow_env, expectations, "2026-03-01")
    failed = {t: s for t, s in run.task_states.items() if s != "success"}
    assert failed == {}, run.output[-6000:]
    assert any(t.startswith("transform.") for t in run.task_states)
    started, finished, outcome, reason = run.record
    assert (outcome, reason) == ("success", None)
    assert started <= finished
    # The mart holds what the replicated source holds.
    source = query(
        platform.source_url,
        "SELECT count(*), coalesce(sum(amount) FILTER (WHERE transaction_type = 'deposit'), 0)"
        " FROM wallet_transaction WHERE transaction_type IN ('deposit', 'withdrawal')",
    )[0]
    mart = query(
        platform.dev_url,
        "SELECT sum(deposit_count + withdrawal_count), sum(total_deposits)"
        " FROM analytics.daily_player_transactions",
    )[0]
    assert mart == source


def test_the_orchestration_role_writes_only_its_run_record(platform: Platform) -> None:
    # After a run: as itself it reads the replication state and its run record, and the marts
    # it built belong to the transform role it SET ROLE to.
    conn = psycopg2.connect(platform.orchestration_url)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM svv_integration_table_state")
            cur.execute("SELECT count(*) FROM zetl_orchestration.dag_run")
            row = cur.fetchone()
            assert row is not None and row[0] >= 1
            cur.execute("SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'analytics'")
            assert cur.fetchall() == [("zetl_transform",)]
            # Nothing of transform's or dq's without SET ROLE (NOINHERIT), nothing new in dev.
            for statement in (
                "SELECT count(*) FROM analytics.daily_player_transactions",
                "CREATE TABLE public.zetl_orchestration_intruder (x int)",
                "CREATE TABLE analytics.zetl_orchestration_intruder (x int)",
                "CREATE SCHEMA zetl_orchestration_intruder",
                "SELECT count(*) FROM raw_transactions_public.customer",
                "INSERT INTO zetl_dq.checkpoint_result (run_id) VALUES ('intruder')",
            ):
                with pytest.raises(psycopg2.errors.InsufficientPrivilege):
                    cur.execute(statement)
            cur.execute("SET ROLE zetl_transform")
            cur.execute("SELECT count(*) FROM analytics.daily_player_transactions")
    finally:
        conn.close()
    # The replica: read-only to it, as to every role but the replicator.
    replica = psycopg2.connect(
        platform.orchestration_url.rsplit("/", 1)[0] + f"/{platform.replica_database}"
    )
    replica.autocommit = True
    try:
        with replica.cursor() as cur, pytest.raises(psycopg2.errors.InsufficientPrivilege):
            cur.execute("DELETE FROM customer")
    finally:
        replica.close()


def test_a_broken_mart_row_fails_the_quality_task(
    platform: Platform, airflow_env: dict[str, str], expectations: Path
) -> None:
    query(
        platform.dev_url,
        "UPDATE analytics.daily_player_transactions SET total_deposits = -1"
        " WHERE (customer_id, activity_date, currency) IN (SELECT customer_id, activity_date,"
        " currency FROM analytics.daily_player_transactions LIMIT 1)",
    )
    # The dbt tasks are marked done without running, so the broken row reaches the checkpoint.
    run = run_dag(
        platform,
        airflow_env,
        expectations,
        "2026-03-02",
        "--mark-success-pattern",
        r"transform\..*",
    )
    assert run.task_states["replication_gate"] == "success"
    assert run.task_states["marts_quality"] == "failed", run.output[-6000:]
    assert run.task_states["record_run"] == "success"
    _, finished, outcome, reason = run.record
    assert finished is not None and outcome == "failed"
    assert reason.startswith("marts_quality: marts checkpoint failed:"), reason
    assert "checkpoint marts:" in reason and "expectations failed" in reason, reason


def test_replication_stopped_past_the_bound_fails_the_gate(
    platform: Platform, airflow_env: dict[str, str], expectations: Path
) -> None:
    platform.stop_replicator()
    bound = 3.0
    stopped_at = query(platform.dev_url, "SELECT now()")[0][0]

    def silent_past_bound() -> bool:
        rows = query(platform.dev_url, "SELECT extract(epoch FROM now() - %s)", (stopped_at,))
        return float(rows[0][0]) > bound + 1

    wait_for(silent_past_bound, "replication silent past the bound", 60)
    run = run_dag(platform, airflow_env, expectations, "2026-03-03", max_lag_seconds=bound)
    assert run.task_states["replication_gate"] == "failed", run.output[-6000:]
    assert run.task_states["marts_quality"] == "upstream_failed"
    assert all(
        state == "upstream_failed"
        for task, state in run.task_states.items()
        if task.startswith("transform.")
    )
    _, finished, outcome, reason = run.record
    assert finished is not None and outcome == "failed"
    # Read where monitoring SQL reads it on Redshift too.
    assert reason.startswith(
        "replication_gate: replication gate (svv_integration_table_state, svv_integration):"
    ), reason
    assert "is over the bound of 3 s (ZETL_MAX_LAG_SECONDS)" in reason
