"""The replicator's settings, from the environment (12-factor, ``NAME_FILE`` variants too)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from zetl.errors import ConfigError
from zetl.settings import Settings, read_env
from zetl_replicator.datafilter import DataFilter, from_include_patterns
from zetl_replicator.datafilter import parse as parse_filter

_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")


def _number(name: str, default: str, environ: Mapping[str, str] | None) -> float:
    text = read_env(name, default, environ=environ) or default
    try:
        value = float(text)
    except ValueError as exc:
        raise ConfigError(f"{name}={text!r} is not a number") from exc
    if value < 0:
        raise ConfigError(f"{name}={text!r} must not be negative")
    return value


def _name(name: str, default: str, environ: Mapping[str, str] | None) -> str:
    value = read_env(name, default, environ=environ) or default
    if not _IDENTIFIER.match(value):
        raise ConfigError(f"{name}={value!r}: use lower-case letters, digits and underscores")
    return value


@dataclass(frozen=True)
class ReplicatorConfig:
    """Where to replicate from and to, what, and how to batch.

    ``data_filter`` is zero-ETL's data filter, in AWS's syntax (``datafilter``); with it, every
    schema of the source is looked at. Without it, every table of ``schemas``. ``include``
    (``schema.table`` patterns) is the older form of the filter.
    """

    source_url: str
    warehouse_url: str
    replica_database: str
    slot: str = "zetl_replicator"
    publication: str = "zetl_publication"
    schemas: tuple[str, ...] = ("public",)
    include: tuple[str, ...] = ()
    data_filter: str = ""
    batch_max_seconds: float = 0.5
    batch_max_bytes: int = 64 * 1024 * 1024
    copy_workers: int = 2
    discovery_interval_seconds: float = 5.0
    metrics_port: int = 0  # 0: no HTTP endpoint

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ReplicatorConfig:
        settings = Settings.from_env(environ)
        schemas = read_env("ZETL_SCHEMAS", "public", environ=environ) or "public"
        include = read_env("ZETL_INCLUDE", "", environ=environ) or ""
        data_filter = (read_env("ZETL_DATA_FILTER", "", environ=environ) or "").strip()
        if data_filter:
            parse_filter(data_filter)  # a bad filter is a config error now, not at the first use
        if not any(s.strip() for s in schemas.split(",")):
            raise ConfigError(f"ZETL_SCHEMAS={schemas!r} names no schema (e.g. public,sales)")
        port = _number("ZETL_METRICS_PORT", "0", environ)
        if port != int(port) or port > 65535:
            raise ConfigError(f"ZETL_METRICS_PORT={port:g} is not a TCP port (1-65535, 0: off)")
        return cls(
            source_url=settings.require_source(),
            warehouse_url=settings.require_warehouse(),
            replica_database=settings.replica_database,
            slot=_name("ZETL_SLOT", "zetl_replicator", environ),
            publication=_name("ZETL_PUBLICATION", "zetl_publication", environ),
            schemas=tuple(s.strip() for s in schemas.split(",") if s.strip()),
            include=tuple(p.strip() for p in include.split(",") if p.strip()),
            data_filter=data_filter,
            batch_max_seconds=_number("ZETL_BATCH_MAX_SECONDS", "0.5", environ),
            batch_max_bytes=int(_number("ZETL_BATCH_MAX_BYTES", str(64 * 1024 * 1024), environ)),
            copy_workers=max(1, int(_number("ZETL_COPY_WORKERS", "2", environ))),
            discovery_interval_seconds=_number("ZETL_DISCOVERY_INTERVAL_SECONDS", "5", environ),
            metrics_port=int(port),
        )

    def table_filter(self) -> DataFilter | None:
        """The data filter tables are chosen by (None: every table of ``schemas``)."""
        if self.data_filter:
            return parse_filter(self.data_filter)
        if self.include:
            return from_include_patterns(self.include)
        return None

    @property
    def scope(self) -> tuple[str, ...] | None:
        """The schemas to look in: None (all) when a data filter chooses."""
        return None if self.data_filter else self.schemas
