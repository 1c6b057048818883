"""Configuration from the environment (12-factor), declared as typed specs.

Every value can also come from a file named by ``NAME_FILE``, as the official Postgres image
does for its secrets, so Docker and ECS secrets never have to pass through the environment;
setting both is an error. ``read_env`` is that rule, the one place it is written.

A service declares its settings as a frozen dataclass of ``EnvSpec`` whose fields are made by
``setting``: the environment variable, the default (the field's own), how the text is parsed
and validated, and whether it is a secret (kept out of ``repr``). ``from_env`` walks the
fields; an unset or empty variable keeps the default. Like dlt's configspecs, the spec is the
documentation of what a service reads::

    @dataclass(frozen=True)
    class ScheduleSettings(EnvSpec):
        transform_interval: float = setting("ZETL_TRANSFORM_INTERVAL", 300.0, seconds)
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Self

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


Parser = Callable[[str, str], Any]  # (variable name, its text) -> the field's value
_ENV = "zetl.env"  # a field's metadata key: its Env
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")


def text(name: str, value: str) -> str:
    return value


def upper(name: str, value: str) -> str:
    return value.upper()


def number(name: str, value: str) -> float:
    """A number, not negative."""
    try:
        parsed = float(value)
    except ValueError as exc:
        raise ConfigError(f"{name}={value!r} is not a number") from exc
    if parsed < 0:
        raise ConfigError(f"{name}={value!r} must not be negative")
    return parsed


def whole(name: str, value: str) -> int:
    """A whole number, not negative (a fraction is cut)."""
    return int(number(name, value))


def integer(name: str, value: str) -> int:
    """A whole number as written (``12``, ``-3``; not ``1.5``)."""
    try:
        return int(value)
    except ValueError as exc:
        raise ConfigError(f"{name}={value!r} is not a whole number") from exc


def seconds(name: str, value: str) -> float:
    """A duration in seconds, more than 0."""
    try:
        parsed = float(value)
    except ValueError as exc:
        raise ConfigError(f"{name}={value!r} is not a number of seconds") from exc
    if parsed <= 0:
        raise ConfigError(f"{name}={value!r} must be more than 0 seconds")
    return parsed


def port(name: str, value: str) -> int:
    """A TCP port; 0 means off."""
    parsed = number(name, value)
    if parsed != int(parsed) or parsed > 65535:
        raise ConfigError(f"{name}={parsed:g} is not a TCP port (1-65535, 0: off)")
    return int(parsed)


def identifier(name: str, value: str) -> str:
    """A lower-case SQL identifier (a slot, a publication)."""
    if not _IDENTIFIER.match(value):
        raise ConfigError(f"{name}={value!r}: use lower-case letters, digits and underscores")
    return value


def names(name: str, value: str) -> tuple[str, ...]:
    """A comma-separated list (blanks dropped)."""
    return tuple(p.strip() for p in value.split(",") if p.strip())


@dataclass(frozen=True)
class Env:
    """Where a field comes from: its variable (or ``name_FILE``), its parser, secret or not."""

    name: str
    parse: Parser = text
    secret: bool = False


def setting(name: str, default: Any, parse: Parser = text, *, secret: bool = False) -> Any:
    """A field of an ``EnvSpec``, read from ``name`` (or ``name_FILE``) with ``parse``."""
    return field(default=default, repr=not secret, metadata={_ENV: Env(name, parse, secret)})


def env_of(spec: type[Any]) -> dict[str, Env]:
    """The variables a spec reads, by field name (what .env.example documents)."""
    return {f.name: f.metadata[_ENV] for f in fields(spec) if _ENV in f.metadata}


class EnvSpec:
    """A typed settings spec: a frozen dataclass whose fields are ``setting``s (fields without
    one are passed to ``from_env`` by the caller)."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **given: Any) -> Self:
        values: dict[str, Any] = {}
        for attribute, spec in env_of(cls).items():
            raw = read_env(spec.name, environ=environ)
            if raw:  # unset or empty: the field's default
                values[attribute] = spec.parse(spec.name, raw)
        return cls(**given, **values)


@dataclass(frozen=True)
class Settings(EnvSpec):
    """The settings several services share. Each service declares its own next to its code."""

    source_database_url: str | None = setting("SOURCE_DATABASE_URL", None, secret=True)
    warehouse_database_url: str | None = setting("WAREHOUSE_DATABASE_URL", None, secret=True)
    replica_database: str = setting("ZETL_REPLICA_DATABASE", "raw_transactions")
    log_level: str = setting("ZETL_LOG_LEVEL", "INFO", upper)

    def require_source(self) -> str:
        if not self.source_database_url:
            raise ConfigError("SOURCE_DATABASE_URL (or SOURCE_DATABASE_URL_FILE) must be set")
        return self.source_database_url

    def require_warehouse(self) -> str:
        if not self.warehouse_database_url:
            raise ConfigError("WAREHOUSE_DATABASE_URL (or WAREHOUSE_DATABASE_URL_FILE) must be set")
        return self.warehouse_database_url
