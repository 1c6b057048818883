"""Configuration from the environment (12-factor).

Every value can also come from a file named by ``NAME_FILE``, as the official Postgres image
does for its secrets, so Docker and ECS secrets never have to pass through the environment.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from zetl.errors import ConfigError


def read_env(
    name: str, default: str | None = None, *, environ: Mapping[str, str] | None = None
) -> str | None:
    """Return ``name`` from the environment, or the content of the file ``name_FILE`` names."""
    environ = os.environ if environ is None else environ
    direct, file_var = environ.get(name), environ.get(f"{name}_FILE")
    if direct is not None and file_var is not None:
        raise ConfigError(f"both {name} and {name}_FILE are set; set only one of them")
    if file_var is not None:
        try:
            return Path(file_var).read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            raise ConfigError(f"{name}_FILE={file_var} cannot be read: {exc.strerror}") from exc
    return direct if direct is not None else default


def require_env(name: str, *, environ: Mapping[str, str] | None = None) -> str:
    value = read_env(name, environ=environ)
    if not value:
        raise ConfigError(f"{name} (or {name}_FILE) must be set; see .env.example")
    return value


@dataclass(frozen=True)
class Settings:
    """The settings several services share. Each service adds its own next to its code."""

    source_database_url: str | None
    warehouse_database_url: str | None
    replica_database: str
    log_level: str

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        return cls(
            source_database_url=read_env("SOURCE_DATABASE_URL", environ=environ),
            warehouse_database_url=read_env("WAREHOUSE_DATABASE_URL", environ=environ),
            replica_database=read_env("ZETL_REPLICA_DATABASE", "raw_transactions", environ=environ)
            or "raw_transactions",
            log_level=(read_env("ZETL_LOG_LEVEL", "INFO", environ=environ) or "INFO").upper(),
        )

    def require_source(self) -> str:
        if not self.source_database_url:
            raise ConfigError("SOURCE_DATABASE_URL (or SOURCE_DATABASE_URL_FILE) must be set")
        return self.source_database_url

    def require_warehouse(self) -> str:
        if not self.warehouse_database_url:
            raise ConfigError("WAREHOUSE_DATABASE_URL (or WAREHOUSE_DATABASE_URL_FILE) must be set")
        return self.warehouse_database_url
