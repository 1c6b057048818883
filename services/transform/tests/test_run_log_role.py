"""`zetl transform` with a read-only warehouse URL (the dashboard's, as in .env.example) is a
usage error that names the role to use, whether the run log exists yet or not."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest

from tests.harness import PostgresServer
from zetl_transform.runner import RUN_LOG_DDL

pytestmark = pytest.mark.docker


@pytest.mark.parametrize("run_log_exists", [True, False])
def test_a_read_only_role_is_told_which_role_to_use(
    run_log_exists: bool, warehouse_server: PostgresServer, warehouse_url: str
) -> None:
    database = warehouse_url.rsplit("/", 1)[1]
    reader = f"reader_{uuid.uuid4().hex[:8]}"
    warehouse_server.execute(f"CREATE ROLE {reader} LOGIN PASSWORD 'reader-pw'")
    try:
        if run_log_exists:  # as after the transform service's first run
            warehouse_server.execute(RUN_LOG_DDL, database)
            warehouse_server.execute(
                f"GRANT USAGE ON SCHEMA zetl_transform TO {reader};"
                f" GRANT SELECT ON zetl_transform.run_log TO {reader}",
                database,
            )
        url = (
            f"postgresql://{reader}:reader-pw@{warehouse_server.host}:{warehouse_server.port}"
            f"/{database}"
        )
        done = subprocess.run(
            [sys.executable, "-m", "zetl", "transform"],
            env={**os.environ, "WAREHOUSE_DATABASE_URL": url},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        warehouse_server.execute(f"DROP OWNED BY {reader}; DROP ROLE {reader}", database)
    assert done.returncode == 2, done.stderr
    assert f"writes to the warehouse as zetl_transform, not as {reader}" in done.stderr
    assert "permission denied" in done.stderr
    assert "set WAREHOUSE_DATABASE_URL to postgresql://zetl_transform:PASSWORD@" in done.stderr
    assert "Traceback" not in done.stderr and "reader-pw" not in done.stderr
