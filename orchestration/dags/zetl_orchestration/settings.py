"""What the DAG reads from the environment. Nothing is hard-coded: the same DAG file runs
against the local warehouse (dbt target ``local``) and Redshift (target ``aws``).

Parse-time settings (the dbt project and profile) never need a secret, so the DAG imports on
a machine with no warehouse; connection settings are read when a task runs.
"""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlencode

DEFAULT_MAX_LAG_SECONDS = 900.0
DEFAULT_DQ_COMMAND = "zetl dq run marts"
# Refreshes the postgres_fdw import of the replica (as the transform role; a superuser also
# sets the link up when it is missing).
DEFAULT_LINK_COMMAND = "zetl transform link"
# dbt targets: the local warehouse (Postgres) and Redshift.
TARGETS = ("local", "aws")
# orchestration/dags/zetl_orchestration/settings.py -> the repository root holds transform/
_REPOSITORY = Path(__file__).resolve().parents[3]


class SettingsError(ValueError):
    """A missing or malformed setting (the message names the variable)."""


def env(name: str, default: str | None = None) -> str | None:
    """A variable, or the content of the file NAME_FILE names (for secrets); unset or empty,
    the default. Setting both is an error.

    The platform's rule (``zetl.settings``: ``read_env``, and an empty value keeps the
    default), written here again because the DAG folder runs without the zetl package;
    orchestration/tests/test_settings_rule.py holds the two to the same answers."""
    direct, path = os.environ.get(name), os.environ.get(f"{name}_FILE")
    if direct is not None and path is not None:
        raise SettingsError(f"both {name} and {name}_FILE are set; set only one of them")
    if path is not None:
        try:
            direct = Path(path).read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            raise SettingsError(f"{name}_FILE={path} cannot be read: {exc.strerror}") from exc
    return direct or default


def _float(name: str, default: float) -> float:
    raw = env(name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number of seconds, got {raw!r}") from None
    if value < 0:
        raise SettingsError(f"{name} must not be negative, got {raw!r}")
    return value


def _int(name: str, default: int) -> int:
    raw = env(name)
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number, got {raw!r}") from None
    if value < 0:
        raise SettingsError(f"{name} must not be negative, got {raw!r}")
    return value


def _command(name: str, default: str) -> list[str]:
    command = shlex.split(env(name, default) or "")
    if not command:
        raise SettingsError(f"{name} is empty")
    return command


@dataclass(frozen=True)
class DbtSettings:
    """Where the dbt project and its profiles are, which target runs, and the Airflow
    connection the profile's connection variables come from (parse time: the connection's
    secrets are read only when a task runs)."""

    project_dir: Path
    profiles_dir: Path
    profile: str
    target: str
    conn_id: str
    manifest: Path | None
    executable: Path | None  # a dbt of its own venv (MWAA), run as a subprocess
    # The role dbt and the link refresh SET ROLE to (locally zetl_transform), so what they build
    # belongs to the transform role; None: they act as the connection's own user.
    role: str | None = None

    @classmethod
    def from_env(cls) -> DbtSettings:
        project = Path(env("ZETL_DBT_PROJECT_DIR") or _REPOSITORY / "transform")
        manifest = env("ZETL_DBT_MANIFEST")
        executable = env("ZETL_DBT_EXECUTABLE")
        target = env("ZETL_DBT_TARGET", "local") or "local"
        if target not in TARGETS:
            choices = ", ".join(TARGETS)
            raise SettingsError(f"ZETL_DBT_TARGET must be one of {choices}, got {target!r}")
        return cls(
            project_dir=project,
            profiles_dir=Path(env("ZETL_DBT_PROFILES_DIR") or project),
            profile=env("ZETL_DBT_PROFILE", "zetl") or "zetl",
            target=target,
            conn_id=env("ZETL_WAREHOUSE_CONN_ID", "zetl_warehouse") or "zetl_warehouse",
            manifest=Path(manifest) if manifest else None,
            executable=Path(executable) if executable else None,
            role=env("ZETL_TRANSFORM_ROLE"),
        )


@dataclass(frozen=True)
class RetrySettings:
    """Task retries: exponential backoff from the first delay, capped (parse time)."""

    retries: int
    first_delay_seconds: float
    max_delay_seconds: float

    @classmethod
    def from_env(cls) -> RetrySettings:
        return cls(
            retries=_int("ZETL_DAG_RETRIES", 2),
            first_delay_seconds=_float("ZETL_DAG_RETRY_DELAY_SECONDS", 60.0),
            max_delay_seconds=_float("ZETL_DAG_MAX_RETRY_DELAY_SECONDS", 1800.0),
        )


@dataclass(frozen=True)
class RunSettings:
    """What the tasks check and run (read when a task runs)."""

    replica_database: str
    max_lag_seconds: float
    dq_command: list[str]
    link_command: list[str]
    # The role the quality step SET ROLEs to (locally zetl_dq), None: the connection's user.
    dq_role: str | None = None

    @classmethod
    def from_env(cls) -> RunSettings:
        return cls(
            replica_database=env("ZETL_REPLICA_DATABASE", "raw_transactions") or "",
            max_lag_seconds=_float("ZETL_MAX_LAG_SECONDS", DEFAULT_MAX_LAG_SECONDS),
            dq_command=_command("ZETL_DQ_COMMAND", DEFAULT_DQ_COMMAND),
            link_command=_command("ZETL_LINK_COMMAND", DEFAULT_LINK_COMMAND),
            dq_role=env("ZETL_DQ_ROLE"),
        )


def warehouse_url(
    host: str | None,
    port: int | None,
    login: str | None,
    password: str | None,
    database: str | None,
    extra: dict[str, object],
    role: str | None = None,
) -> str:
    """A libpq URL from an Airflow connection's parts (Postgres or Redshift: the same wire
    protocol), for psycopg2 and for the zetl commands' WAREHOUSE_DATABASE_URL. With ``role``
    the session starts with SET ROLE to it (libpq ``options=-c role=...``)."""
    if not host or not database:
        raise SettingsError("the warehouse connection needs a host and a database (schema)")
    auth = ""
    if login:
        auth = quote(login, safe="")
        if password:
            auth += ":" + quote(password, safe="")
        auth += "@"
    options = {k: str(v) for k, v in extra.items() if k in {"sslmode", "sslrootcert"}}
    if role:
        if not all(c.isalnum() or c == "_" for c in role):
            raise SettingsError(f"a role name of letters, digits and _ only, got {role!r}")
        options["options"] = f"-c role={role}"
    query = f"?{urlencode(options, quote_via=quote)}" if options else ""
    return f"postgresql://{auth}{host}:{port or 5432}/{quote(database, safe='')}{query}"
