"""Print, as JSON, what Airflow's own DAG loader sees in orchestration/dags.

Runs under the Airflow venv (the tests call it with ``.venv-airflow/bin/python``): import
errors, the DAG ids, and for zetl_daily its schedule, catch-up and every task with its
upstream tasks, retries and setup/teardown role.
"""

from __future__ import annotations

import json
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any


def _seconds(value: timedelta | float | None) -> float | None:
    if value is None:
        return None
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def describe(dags_folder: Path) -> dict[str, Any]:
    from airflow.dag_processing.dagbag import BundleDagBag

    bag = BundleDagBag(dag_folder=str(dags_folder), bundle_path=dags_folder)
    result: dict[str, Any] = {
        "import_errors": {str(k): str(v) for k, v in bag.import_errors.items()},
        "dag_ids": sorted(bag.dag_ids),
    }
    dag = bag.dags.get("zetl_daily")
    if dag is not None:
        result["zetl_daily"] = {
            "schedule": str(dag.schedule),
            "catchup": dag.catchup,
            "max_active_runs": dag.max_active_runs,
            "has_failure_callback": dag.on_failure_callback is not None,
            "tasks": {
                t.task_id: {
                    "upstream": sorted(t.upstream_task_ids),
                    "retries": t.retries,
                    "retry_delay": _seconds(t.retry_delay),
                    "retry_exponential_backoff": float(t.retry_exponential_backoff),
                    "max_retry_delay": _seconds(t.max_retry_delay),
                    "has_failure_callback": bool(t.on_failure_callback),
                    "is_setup": t.is_setup,
                    "is_teardown": t.is_teardown,
                    "operator": type(t).__name__,
                }
                for t in dag.tasks
            },
        }
    return result


if __name__ == "__main__":
    print(json.dumps(describe(Path(sys.argv[1]).resolve())))
