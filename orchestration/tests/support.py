"""Where the Airflow venv, the DAG folder and the dbt project are, for the orchestration tests.

Airflow lives in its own venv (.venv-airflow, `make airflow-venv`): these tests run under the
project's venv and drive Airflow as a user does, through its command line and Python, in
subprocesses with a SQLite metadata database.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[2]
DAGS = REPOSITORY / "orchestration" / "dags"
DBT_PROJECT = REPOSITORY / "transform"
AIRFLOW_VENV = Path(os.environ.get("ZETL_AIRFLOW_VENV", REPOSITORY / ".venv-airflow"))


def airflow_bin(name: str) -> Path:
    path = AIRFLOW_VENV / "bin" / name
    if not path.exists():
        # Fails, never skips: the Airflow venv is part of what `make test-orchestration` builds.
        pytest.fail(f"{path} is missing: run `make airflow-venv` first", pytrace=False)
    return path
