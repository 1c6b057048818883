"""The replicator's settings, from the environment (12-factor, ``NAME_FILE`` variants too).

Each field names its environment variable and how its text is read in the field's metadata;
``from_env`` walks the fields, so a default lives in one place: the field's own.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from zetl.errors import ConfigError
from zetl.settings import Settings, read_env
from zetl_replicator.sync.datafilter import DataFilter, from_include_patterns
from zetl_replicator.sync.datafilter import parse as parse_filter

_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")

Parser = Callable[[str, str], Any]  # (variable name, its text) -> the field's value


def _number(name: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError as exc:
        raise ConfigError(f"{name}={text!r} is not a number") from exc
    if value < 0:
        raise ConfigError(f"{name}={text!r} must not be negative")
    return value


def _whole(name: str, text: str) -> int:
    return int(_number(name, text))


def _workers(name: str, text: str) -> int:
    return max(1, _whole(name, text))


def _port(name: str, text: str) -> int:
    port = _number(name, text)
    if port != int(port) or port > 65535:
        raise ConfigError(f"{name}={port:g} is not a TCP port (1-65535, 0: off)")
    return int(port)


def _identifier(name: str, text: str) -> str:
    if not _IDENTIFIER.match(text):
        raise ConfigError(f"{name}={text!r}: use lower-case letters, digits and underscores")
    return text


def _names(name: str, text: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in text.split(",") if p.strip())


def _schemas(name: str, text: str) -> tuple[str, ...]:
    schemas = _names(name, text)
    if not schemas:
        raise ConfigError(f"{name}={text!r} names no schema (e.g. public,sales)")
    return schemas


def _data_filter(name: str, text: str) -> str:
    text = text.strip()
    if text:
        parse_filter(text)  # a bad filter is a config error now, not at the first use
    return text


def _env(name: str, parse: Parser) -> dict[str, Any]:
    """A field's metadata: read from ``name`` (or ``name_FILE``) with ``parse``; unset or
    empty keeps the field's default."""
    return {"env": name, "parse": parse}


@dataclass(frozen=True)
class ReplicatorConfig:
    """Where to replicate from and to, what, and how to batch.

    ``data_filter`` is zero-ETL's data filter, in AWS's syntax (``datafilter``); with it, every
    schema of the source is looked at. Without it, every table of ``schemas``. ``include``
    (``schema.table`` patterns) is the older form of the filter.
    """

    # From the settings every service shares (zetl.settings)
    source_url: str
    warehouse_url: str
    replica_database: str
    slot: str = field(default="zetl_replicator", metadata=_env("ZETL_SLOT", _identifier))
    publication: str = field(
        default="zetl_publication", metadata=_env("ZETL_PUBLICATION", _identifier)
    )
    schemas: tuple[str, ...] = field(default=("public",), metadata=_env("ZETL_SCHEMAS", _schemas))
    include: tuple[str, ...] = field(default=(), metadata=_env("ZETL_INCLUDE", _names))
    data_filter: str = field(default="", metadata=_env("ZETL_DATA_FILTER", _data_filter))
    batch_max_seconds: float = field(default=0.5, metadata=_env("ZETL_BATCH_MAX_SECONDS", _number))
    # With nothing more waiting, a batch still waits this long (from its first transaction) for
    # more: under load, fewer and larger warehouse commits; the replica lags that much more.
    batch_min_seconds: float = field(default=0.05, metadata=_env("ZETL_BATCH_MIN_SECONDS", _number))
    batch_max_bytes: int = field(
        default=64 * 1024 * 1024, metadata=_env("ZETL_BATCH_MAX_BYTES", _whole)
    )
    copy_workers: int = field(default=2, metadata=_env("ZETL_COPY_WORKERS", _workers))
    discovery_interval_seconds: float = field(
        default=5.0, metadata=_env("ZETL_DISCOVERY_INTERVAL_SECONDS", _number)
    )
    metrics_port: int = field(  # 0: no HTTP endpoint
        default=0, metadata=_env("ZETL_METRICS_PORT", _port)
    )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ReplicatorConfig:
        settings = Settings.from_env(environ)
        values: dict[str, Any] = {}
        for f in fields(cls):
            name = f.metadata.get("env")
            if name is None:
                continue
            text = read_env(name, environ=environ)
            if text:  # unset or empty: the field's default
                values[f.name] = f.metadata["parse"](name, text)
        return cls(
            source_url=settings.require_source(),
            warehouse_url=settings.require_warehouse(),
            replica_database=settings.replica_database,
            **values,
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
