"""`zetl transform`'s usage errors exit 2 with one line, before anything runs."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from zetl.errors import ConfigError
from zetl_transform.project import dbt_env


def zetl(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("WAREHOUSE_DATABASE_URL")}
    return subprocess.run(
        [sys.executable, "-m", "zetl", "transform", *args],
        capture_output=True,
        text=True,
        check=False,
        env=environ | env,
    )


def test_an_unknown_target_is_a_usage_error() -> None:
    done = zetl("--target", "bigquery", WAREHOUSE_DATABASE_URL="postgresql://u@h/dev")
    assert done.returncode == 2
    assert "--target must be one of local, local-redshift, aws" in done.stderr


def test_the_local_target_needs_the_warehouse_url() -> None:
    done = zetl()
    assert done.returncode == 2
    assert "WAREHOUSE_DATABASE_URL" in done.stderr


def test_the_profile_reads_the_warehouse_url() -> None:
    env = dbt_env("postgresql://etl%40x:p%3Aw@db.example:6543/dev", "raw_transactions", "local")
    assert env["DBT_PG_USER"] == "etl@x" and env["DBT_PG_PASSWORD"] == "p:w"
    assert (env["DBT_PG_HOST"], env["DBT_PG_PORT"], env["DBT_PG_DBNAME"]) == (
        "db.example", "6543", "dev",
    )  # fmt: skip
    with pytest.raises(ConfigError, match="postgresql://"):
        dbt_env("mysql://x@y/z", "raw_transactions", "local")


def test_the_profile_takes_the_urls_tls_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PGSSLMODE", raising=False)
    url = "postgresql://u:p@db.example/dev?sslmode=verify-full&sslrootcert=/etc/ca.crt"
    env = dbt_env(url, "raw_transactions", "local")
    assert (env["DBT_PG_SSLMODE"], env["DBT_PG_SSLROOTCERT"]) == ("verify-full", "/etc/ca.crt")
    assert dbt_env("postgresql://u:p@db.example/dev", "r", "local")["DBT_PG_SSLMODE"] == "require"
