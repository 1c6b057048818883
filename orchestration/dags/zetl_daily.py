"""zetl_daily: the daily refresh as an Airflow DAG.

    record_start ─► replication_gate ─► replica_link (local target only)
      ─► transform (dbt: one task per model, its tests after it)
      ─► marts_quality ─► record_run (teardown: always runs)

1. ``replication_gate``: every replicated table Synced and lag under ZETL_MAX_LAG_SECONDS,
   else the run fails with the reason (retried with backoff: lag can recover).
2. ``replica_link`` (local target): ``zetl transform setup`` re-imports the replica's tables
   into dev through postgres_fdw, as ``zetl transform`` does before its own builds.
   ``transform``: the dbt project through astronomer-cosmos, which renders dbt's own graph as
   Airflow tasks (a run task per model followed by that model's tests), so a failing model
   stops only what depends on it and shows where it failed.
3. ``marts_quality``: the ``marts`` data-quality checkpoint (``zetl dq run marts``); its
   exit code 1 (checks failed) fails the run without retrying: the data will not change.
4. ``record_start`` / ``record_run``: the run's start, end, outcome and first failure reason in
   the warehouse table ``zetl_orchestration.dag_run``. ``record_run`` is a teardown task: it
   runs when something upstream failed too, and does not decide the run's own state.

Everything comes from the environment (orchestration/README.md lists it): the same file runs
against the local warehouse (dbt target ``local``) and Redshift on Amazon MWAA (target ``aws``).
"""

from __future__ import annotations

import logging
import os
import subprocess
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg2
from airflow.sdk import DAG, Connection, task
from airflow.sdk.exceptions import AirflowFailException, AirflowNotFoundException
from cosmos import DbtTaskGroup, ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
from cosmos.constants import ExecutionMode, InvocationMode, LoadMode, TestBehavior
from zetl_orchestration import health, runlog
from zetl_orchestration.settings import (
    DbtSettings,
    RetrySettings,
    RunSettings,
    SettingsError,
    warehouse_url,
)

DAG_ID = "zetl_daily"
log = logging.getLogger("zetl.orchestration")


def _first_line(error: BaseException | str | None) -> str:
    text = str(error or "").strip()
    return text.splitlines()[0] if text else "no reason given"


def _run_settings() -> RunSettings:
    try:
        return RunSettings.from_env()
    except SettingsError as exc:
        # A configuration error does not fix itself: no retries.
        raise AirflowFailException(f"configuration: {exc}") from None


def _warehouse_url(role: str | None = None) -> str:
    """The warehouse database (dev) as a libpq URL, from the same Airflow connection dbt uses;
    with ``role``, sessions on it act as that role (SET ROLE)."""
    conn_id = DbtSettings.from_env().conn_id
    try:
        conn = Connection.get(conn_id)
    except AirflowNotFoundException:
        raise AirflowFailException(
            f"configuration: no Airflow connection {conn_id!r} (AIRFLOW_CONN_{conn_id.upper()}"
            " or the secrets backend): the warehouse database the run is checked and recorded in"
        ) from None
    try:
        return warehouse_url(
            conn.host, conn.port, conn.login, conn.password, conn.schema, conn.extra_dejson, role
        )
    except SettingsError as exc:
        raise AirflowFailException(f"configuration: connection {conn_id!r}: {exc}") from None


# --- callbacks: one clear line per event, and the first failure's reason in the run record ---


def on_task_failure(context: Any) -> None:
    ti = context["ti"]
    reason = f"{ti.task_id}: {_first_line(context.get('exception'))}"
    log.error(
        "zetl_daily task failed: run_id=%s task=%s try=%s reason=%s",
        ti.run_id,
        ti.task_id,
        ti.try_number,
        reason,
    )
    try:
        runlog.record_failure_reason(_warehouse_url(), ti.dag_id, ti.run_id, reason)
    except (AirflowFailException, psycopg2.Error) as exc:
        log.error("zetl_daily could not record the failure reason: %s", _first_line(exc))


def on_task_retry(context: Any) -> None:
    ti = context["ti"]
    log.warning(
        "zetl_daily task will retry: run_id=%s task=%s try=%s reason=%s",
        ti.run_id,
        ti.task_id,
        ti.try_number,
        _first_line(context.get("exception")),
    )


def on_dag_failure(context: Any) -> None:
    dag_run = context.get("dag_run")
    log.error(
        "zetl_daily run failed: run_id=%s reason=%s",
        getattr(dag_run, "run_id", "?"),
        _first_line(context.get("reason")),
    )


# --- tasks ---


@task(task_id="record_start")
def record_start(**context: Any) -> None:
    ti = context["ti"]
    runlog.record_start(_warehouse_url(), ti.dag_id, ti.run_id)
    log.info("zetl_daily run started: run_id=%s", ti.run_id)


@task(task_id="replication_gate")
def replication_gate() -> None:
    settings = _run_settings()
    try:
        state = health.read_replication_health(_warehouse_url(), settings.replica_database)
    except psycopg2.Error as exc:
        raise health.ReplicationGateError(
            f"replication gate: cannot read the replication state: {_first_line(exc)}"
        ) from None
    lag = "unknown" if state.lag_seconds is None else f"{state.lag_seconds:.1f} s"
    log.info(
        "replication state from %s: %d tables, lag %s (bound %.0f s)",
        state.source,
        len(state.tables),
        lag,
        settings.max_lag_seconds,
    )
    health.check(state, settings.max_lag_seconds)


def _run_zetl(command: list[str], what: str, setting: str, role: str | None) -> None:
    """Run a zetl command against the warehouse of the Airflow connection, as ``role`` when
    set; its exit code decides: 1 (a check or the data failed) and 2 (usage or configuration)
    fail the task for good, anything else unexpected is retried."""
    log.info("%s: %s", what, " ".join(command))
    env = {
        **os.environ,
        "WAREHOUSE_DATABASE_URL": _warehouse_url(role),
        "ZETL_TARGET": DbtSettings.from_env().target,
    }
    try:
        done = subprocess.run(  # noqa: S603 (the command is the operator's own setting)
            command, capture_output=True, text=True, check=False, env=env
        )
    except OSError as exc:
        raise AirflowFailException(f"{setting} cannot run ({command[0]}): {exc.strerror}") from None
    for line in (done.stdout + done.stderr).splitlines():
        log.info("%s | %s", command[0], line)
    # The reason: the command's last error line (zetl's one-line error), else its last output.
    errors = [line.strip() for line in done.stderr.splitlines() if line.strip()]
    output = [line.strip() for line in done.stdout.splitlines() if line.strip()]
    tail = (errors or output or ["no output"])[-1]
    if done.returncode == 0:
        return
    if done.returncode == 1:
        raise AirflowFailException(f"{what} failed: {tail}")
    if done.returncode == 2:
        raise AirflowFailException(f"{what}: usage or configuration error: {tail}")
    raise RuntimeError(f"{what} exited with {done.returncode}: {tail}")


@task(task_id="replica_link")
def replica_link() -> None:
    """Locally, dbt reads the replica through postgres_fdw: re-import its tables so new and
    changed ones are seen (Redshift reads the zero-ETL database directly)."""
    _run_zetl(
        _run_settings().link_command,
        "replica link refresh",
        "ZETL_LINK_COMMAND",
        DbtSettings.from_env().role,
    )


@task(task_id="marts_quality")
def marts_quality() -> None:
    settings = _run_settings()
    _run_zetl(settings.dq_command, "marts checkpoint", "ZETL_DQ_COMMAND", settings.dq_role)


@task(task_id="record_run")
def record_run(**context: Any) -> None:
    ti = context["ti"]
    states = ti.get_task_states(dag_id=ti.dag_id, run_ids=[ti.run_id]).get(ti.run_id, {})
    failed = sorted(
        task_id
        for task_id, state in states.items()
        if task_id != ti.task_id and state in {"failed", "upstream_failed"}
    )
    outcome = runlog.FAILED if failed else runlog.SUCCESS
    reason = f"failed: {', '.join(failed)}" if failed else None
    runlog.record_end(_warehouse_url(), ti.dag_id, ti.run_id, outcome, reason)
    log.info("zetl_daily run recorded: run_id=%s outcome=%s %s", ti.run_id, outcome, reason or "")


# --- the dbt project ---


def _profile(dbt: DbtSettings) -> ProfileConfig:
    """The dbt project's own profiles.yml (every value from the environment, with defaults, so
    the scheduler parses the project without a secret)."""
    return ProfileConfig(
        profile_name=dbt.profile,
        target_name=dbt.target,
        profiles_yml_filepath=dbt.profiles_dir / "profiles.yml",
    )


def _connection_env(dbt: DbtSettings) -> dict[str, str]:
    """The profile's connection variables, filled from the Airflow connection when each dbt
    task runs (templates: the secret never enters the parsed DAG, and Airflow masks it)."""
    conn = f"conn.get({dbt.conn_id!r})"
    fields = {"HOST": "host", "PORT": "port", "USER": "login", "PASSWORD": "password"}
    if dbt.target == "aws":
        env = {f"REDSHIFT_{k}": f"{{{{ {conn}.{v} or '' }}}}" for k, v in fields.items()}
        env["REDSHIFT_PORT"] = f"{{{{ {conn}.port or 5439 }}}}"
        env["REDSHIFT_DATABASE"] = f"{{{{ {conn}.schema }}}}"
    else:
        env = {f"DBT_PG_{k}": f"{{{{ {conn}.{v} or '' }}}}" for k, v in fields.items()}
        env["DBT_PG_PORT"] = f"{{{{ {conn}.port or 5432 }}}}"
        env["DBT_PG_DBNAME"] = f"{{{{ {conn}.schema }}}}"
        # dbt's session SET ROLEs to the transform role: the models stay that role's.
        env["DBT_PG_ROLE"] = dbt.role or ""
    return env


def _transform_group() -> DbtTaskGroup:
    dbt = DbtSettings.from_env()
    project = ProjectConfig(
        dbt_project_path=dbt.project_dir,
        manifest_path=dbt.manifest,
        # The package hub may be unreachable: install packages only when the project has any.
        install_dbt_deps=(dbt.project_dir / "packages.yml").exists(),
    )
    # dbt installed beside Airflow runs in the worker's own process (dbt's Python runner); a
    # dbt of its own venv (where Airflow's pins and dbt's clash, as on MWAA) as a subprocess.
    invocation: dict[str, Any] = (
        {"invocation_mode": InvocationMode.SUBPROCESS, "dbt_executable_path": dbt.executable}
        if dbt.executable
        else {"invocation_mode": InvocationMode.DBT_RUNNER}
    )
    return DbtTaskGroup(
        group_id="transform",
        project_config=project,
        profile_config=_profile(dbt),
        operator_args={"env": _connection_env(dbt), "append_env": True},
        execution_config=ExecutionConfig(execution_mode=ExecutionMode.LOCAL, **invocation),
        render_config=RenderConfig(
            load_method=LoadMode.DBT_MANIFEST if dbt.manifest else LoadMode.DBT_LS,
            test_behavior=TestBehavior.AFTER_EACH,
            # A test over several models (relationships) runs once all of them are built,
            # not with the first one.
            should_detach_multiple_parents_tests=True,
            emit_datasets=False,
            **invocation,
        ),
    )


retry = RetrySettings.from_env()

with DAG(
    dag_id=DAG_ID,
    description="Daily refresh: replication gate, dbt models and tests, marts quality gate",
    schedule="@daily",
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=6),
    on_failure_callback=on_dag_failure,
    default_args={
        "owner": "zetl",
        "retries": retry.retries,
        "retry_delay": timedelta(seconds=retry.first_delay_seconds),
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": timedelta(seconds=retry.max_delay_seconds),
        "on_failure_callback": on_task_failure,
        "on_retry_callback": on_task_retry,
    },
    tags=["zetl"],
    doc_md=__doc__,
) as dag:
    start = record_start()
    gate = replication_gate()
    transform = _transform_group()
    quality = marts_quality()
    end = record_run().as_teardown(setups=start)
    if DbtSettings.from_env().target == "local":
        start >> gate >> replica_link() >> transform >> quality >> end
    else:
        start >> gate >> transform >> quality >> end

if __name__ == "__main__":  # python zetl_daily.py: one local run, no scheduler
    dag.test()
