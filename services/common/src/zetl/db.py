"""Connections to the source and warehouse Postgres servers, from libpq URLs."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg2
import psycopg2.extensions

from zetl.errors import ConfigError


def redact(url: str) -> str:
    """The URL with its password hidden, safe for logs and error messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def with_database(url: str, database: str) -> str:
    """The same server URL pointing at another database."""
    return urlunsplit(urlsplit(url)._replace(path=f"/{database}"))


# TCP keepalives on every connection: after a server restart or failover a client waiting on
# an idle socket (a replication stream, say) would otherwise never learn that its peer is gone.
# With these, a dead peer is noticed within about 25 seconds.
KEEPALIVES = {
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
}


def connect(url: str, **kwargs: Any) -> psycopg2.extensions.connection:
    """Open a psycopg2 connection, turning an unreachable server into a clear ConfigError."""
    try:
        conn: psycopg2.extensions.connection = psycopg2.connect(url, **{**KEEPALIVES, **kwargs})
        return conn
    except psycopg2.OperationalError as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"cannot connect to {redact(url)}: {reason}") from exc


def is_connection_lost(exc: BaseException) -> bool:
    """Whether ``exc`` says the server went away or cannot be reached (worth a reconnect),
    rather than that our own SQL or data is wrong (worth an error)."""
    if isinstance(exc, psycopg2.OperationalError | psycopg2.InterfaceError):
        return True
    return isinstance(exc, ConfigError) and isinstance(exc.__cause__, psycopg2.OperationalError)


def wait_until_ready(url: str, timeout_s: float = 60.0) -> None:
    """Retry with backoff until the server accepts a connection, for containers still starting."""
    deadline, delay = time.monotonic() + timeout_s, 0.2
    while True:
        try:
            connect(url, connect_timeout=5).close()
            return
        except ConfigError:
            if time.monotonic() + delay > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 5.0)
