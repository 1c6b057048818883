"""Where the dbt project is (zetl.dbt.project_dir), and the environment its profiles read."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from zetl.dbt import project_dir
from zetl.errors import ConfigError
from zetl.settings import read_env

TARGETS = ("local", "local-redshift", "aws")
# Targets that build in the local warehouse (the replica link and the run log are theirs).
LOCAL_TARGETS = ("local", "local-redshift")
__all__ = ["LOCAL_TARGETS", "TARGETS", "dbt_env", "project_dir", "work_dir"]


def work_dir(project: Path) -> Path:
    """Where dbt writes target/ and logs/: the project itself when writable (partial parsing
    then survives between runs), else a temporary directory (a read-only image)."""
    if os.access(project, os.W_OK):
        return project
    path = Path(tempfile.gettempdir()) / "zetl-dbt"
    path.mkdir(exist_ok=True)
    return path


def dbt_env(warehouse_url: str | None, replica_database: str, target: str) -> dict[str, str]:
    """The variables profiles.yml reads: the local targets' from WAREHOUSE_DATABASE_URL (the
    front authenticates to the warehouse as the role that logs in to it)."""
    env = {"ZETL_DBT_TARGET": target, "ZETL_REPLICA_DATABASE": replica_database}
    if target in LOCAL_TARGETS:
        if not warehouse_url:
            raise ConfigError("WAREHOUSE_DATABASE_URL (or WAREHOUSE_DATABASE_URL_FILE) must be set")
        parts = urlsplit(warehouse_url)
        query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        if parts.scheme not in ("postgresql", "postgres") or not parts.path.strip("/"):
            raise ConfigError("WAREHOUSE_DATABASE_URL must be a postgresql://user@host:port/db URL")
        env |= {
            "DBT_PG_HOST": parts.hostname or "localhost",
            "DBT_PG_PORT": str(parts.port or 5432),
            "DBT_PG_USER": unquote(parts.username or ""),
            "DBT_PG_PASSWORD": unquote(parts.password or ""),
            "DBT_PG_DBNAME": unquote(parts.path.strip("/")),
            # The URL's TLS settings, as libpq reads them; TLS is required when it says none.
            "DBT_PG_SSLMODE": query.get("sslmode") or os.environ.get("PGSSLMODE") or "require",
            "DBT_PG_SSLROOTCERT": query.get("sslrootcert") or os.environ.get("PGSSLROOTCERT", ""),
        }
        ca_file = read_env("ZETL_REDSHIFT_CA_FILE")
        if target == "local-redshift" and ca_file:
            env["SSL_CERT_FILE"] = ca_file
    else:
        password = read_env("REDSHIFT_PASSWORD")
        if password:
            env["REDSHIFT_PASSWORD"] = password
    return env
