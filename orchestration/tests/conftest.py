"""The orchestration tests' Airflow home: a migrated SQLite metadata database per session."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from orchestration.tests.support import AIRFLOW_VENV, DAGS, DBT_PROJECT, airflow_bin

# The DAG's helper package is plain Python: its tests import it as Airflow does, from the DAG
# folder.
if str(DAGS) not in sys.path:
    sys.path.append(str(DAGS))


@pytest.fixture(scope="session")
def airflow_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Environment of an Airflow home with a migrated SQLite database, and no examples."""
    home = tmp_path_factory.mktemp("airflow-home")
    env = {
        **os.environ,
        "PATH": f"{AIRFLOW_VENV / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        # Parsing runs `dbt ls` once (then Cosmos caches it): on a busy machine it can take
        # longer than Airflow's default 30 s import timeout.
        "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "600",
        "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
        "AIRFLOW__COSMOS__CACHE_DIR": str(home / "cosmos"),
        "ZETL_DBT_PROJECT_DIR": str(DBT_PROJECT),
        "ZETL_DBT_TARGET": "local",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
        "NO_COLOR": "1",
    }
    subprocess.run(
        [str(airflow_bin("airflow")), "db", "migrate"],
        env=env,
        check=True,
        capture_output=True,
        timeout=600,
    )
    yield env
