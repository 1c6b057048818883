"""The front's settings, from the environment (12-factor, ``NAME_FILE`` variants too).

``WAREHOUSE_DATABASE_URL`` names the warehouse server every client is relayed to (its host and
port) and the front's own role and database: the one it installs its schema in and writes
the query history to. Clients log in as themselves; the front never uses its own role for them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from zetl.errors import ConfigError
from zetl.settings import Settings, read_env, seconds

DEFAULT_PORT = 5439  # Redshift's
# libpq's sslmode values; the front tries TLS first for allow as for prefer.
SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")


def _flag(name: str, text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "on", "yes"):
        return True
    if lowered in ("0", "false", "off", "no"):
        return False
    raise ConfigError(f"{name}={text!r}: use on or off")


def port_number(name: str, text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ConfigError(f"{name}={text!r} is not a TCP port (1-65535)")
    return int(text)


def _default_tls_dir(environ: Mapping[str, str]) -> Path:
    data_home = environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home) / "zetl" / "redshift-tls"


@dataclass(frozen=True)
class Warehouse:
    """Where the warehouse listens, and the front's own login there."""

    host: str
    port: int
    database: str  # the front's own database (its history is there)
    url: str  # the front's own connection (install, query history)
    # How the front's relayed connections use TLS, as libpq's sslmode and sslrootcert say: the
    # URL's, else PGSSLMODE / PGSSLROOTCERT, else prefer (libpq's default).
    sslmode: str = "prefer"
    sslrootcert: str | None = None


def warehouse_from_url(url: str, environ: Mapping[str, str] | None = None) -> Warehouse:
    parts = urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres") or not parts.hostname:
        raise ConfigError(
            "WAREHOUSE_DATABASE_URL must be a URL with a host:"
            " postgresql://zetl_redshift:PASSWORD@HOST:5432/dev"
        )
    try:
        port = parts.port or 5432
    except ValueError as exc:
        raise ConfigError(f"WAREHOUSE_DATABASE_URL has a bad port: {exc}") from exc
    database = unquote(parts.path.lstrip("/")) or unquote(parts.username or "")
    env = os.environ if environ is None else environ
    query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
    sslmode = query.get("sslmode") or env.get("PGSSLMODE") or "prefer"
    if sslmode not in SSL_MODES:
        raise ConfigError(f"WAREHOUSE_DATABASE_URL: sslmode={sslmode!r} is not one of {SSL_MODES}")
    sslrootcert = query.get("sslrootcert") or env.get("PGSSLROOTCERT") or None
    if sslmode.startswith("verify") and not sslrootcert:
        raise ConfigError(f"WAREHOUSE_DATABASE_URL: sslmode={sslmode} needs sslrootcert")
    return Warehouse(
        host=unquote(parts.hostname),
        port=port,
        database=database,
        url=url,
        sslmode=sslmode,
        sslrootcert=sslrootcert,
    )


@dataclass(frozen=True)
class FrontConfig:
    warehouse: Warehouse
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    # TLS on: SSLRequest is answered with TLS (redshift_connector's default needs it); off:
    # with 'N', and clients must connect with sslmode=disable / ssl=False.
    tls: bool = True
    tls_dir: Path = Path("redshift-tls")
    # Names the generated server certificate is valid for (verify-full checks them).
    tls_hostnames: tuple[str, ...] = ("localhost", "127.0.0.1", "redshift")
    history: bool = True
    history_flush_seconds: float = 1.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> FrontConfig:
        env = os.environ if environ is None else environ
        settings = Settings.from_env(env)

        def text(name: str) -> str | None:
            return read_env(name, environ=env) or None

        values: dict[str, Any] = {"tls_dir": _default_tls_dir(env)}  # unset: the default
        if (host := text("ZETL_REDSHIFT_HOST")) is not None:
            values["host"] = host
        if (port := text("ZETL_REDSHIFT_PORT")) is not None:
            values["port"] = port_number("ZETL_REDSHIFT_PORT", port)
        if (tls := text("ZETL_REDSHIFT_TLS")) is not None:
            values["tls"] = _flag("ZETL_REDSHIFT_TLS", tls)
        if (tls_dir := text("ZETL_REDSHIFT_TLS_DIR")) is not None:
            values["tls_dir"] = Path(tls_dir)
        if (names := text("ZETL_REDSHIFT_TLS_HOSTNAMES")) is not None:
            values["tls_hostnames"] = tuple(n.strip() for n in names.split(",") if n.strip())
        if (history := text("ZETL_REDSHIFT_HISTORY")) is not None:
            values["history"] = _flag("ZETL_REDSHIFT_HISTORY", history)
        if (flush := text("ZETL_REDSHIFT_HISTORY_FLUSH_SECONDS")) is not None:
            values["history_flush_seconds"] = seconds("ZETL_REDSHIFT_HISTORY_FLUSH_SECONDS", flush)
        return replace(cls(warehouse_from_url(settings.require_warehouse(), env)), **values)
