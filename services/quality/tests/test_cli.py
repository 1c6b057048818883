"""``zetl dq``: listing, usage and configuration errors (exit 2), results storage."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from datetime import UTC, datetime

import psycopg2
import pytest

from zetl_quality.checks import Target
from zetl_quality.results import CheckpointResult, store


def dq(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {
        k: v
        for k, v in os.environ.items()
        if k not in ("SOURCE_DATABASE_URL", "WAREHOUSE_DATABASE_URL")
        and not k.startswith("REDSHIFT_")
    }
    return subprocess.run(
        [sys.executable, "-m", "zetl", "dq", *args],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_list_names_the_three_checkpoints() -> None:
    result = dq("list")
    assert result.returncode == 0, result.stderr
    names = [line.split()[0] for line in result.stdout.splitlines()]
    assert names == ["source_integrity", "replica_parity", "marts"]


def test_an_unknown_checkpoint_is_a_usage_error() -> None:
    result = dq("run", "no_such_checkpoint", WAREHOUSE_DATABASE_URL="postgresql://x@localhost/dev")
    assert result.returncode == 2
    assert "no checkpoint 'no_such_checkpoint'" in result.stderr
    assert "source_integrity, replica_parity, marts" in result.stderr


def test_missing_settings_are_config_errors() -> None:
    result = dq("run", "source_integrity")
    assert result.returncode == 2
    assert "SOURCE_DATABASE_URL" in result.stderr
    result = dq("run", "marts", "--target", "aws")
    assert result.returncode == 2
    assert "REDSHIFT_HOST" in result.stderr
    result = dq("run", "replica_parity", "--target", "aws")
    assert result.returncode == 2
    assert "only the local emulation" in result.stderr


def test_an_unreachable_warehouse_is_a_config_error() -> None:
    result = dq("run", "marts", WAREHOUSE_DATABASE_URL="postgresql://x@127.0.0.1:1/dev")
    assert result.returncode == 2
    assert "cannot connect" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.docker
def test_results_table_is_created_and_filled(warehouse_url: str) -> None:
    now = datetime.now(UTC)
    result = CheckpointResult(
        run_id="00000000-0000-0000-0000-000000000001",
        checkpoint="marts",
        target="local",
        started_at=now,
        finished_at=now,
        success=False,
        evaluated=3,
        successful=2,
        failed=1,
        failed_expectations=[{"name": "grain x", "sample": [[1, "EUR"]]}],
        report="checkpoint marts (local): FAILED",
    )
    with psycopg2.connect(warehouse_url) as conn, conn.cursor() as cur:
        store(cur, result, Target.LOCAL)
        store(cur, dataclasses.replace(result, run_id="2"), Target.LOCAL)  # table exists now
        cur.execute(
            "SELECT checkpoint, success, evaluated, successful, failed,"
            " failed_expectations -> 0 ->> 'name' FROM zetl_dq.checkpoint_result"
        )
        assert cur.fetchall() == [("marts", False, 3, 2, 1, "grain x")] * 2
