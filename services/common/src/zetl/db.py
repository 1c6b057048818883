"""Connections to the source and warehouse Postgres servers, from libpq URLs."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg2
import psycopg2.extensions

from zetl.errors import ConfigError


def redact(dsn: str) -> str:
    """The connection string with its password hidden, safe for logs and error messages:
    a URL keeps its shape, a keyword string (``host=... password=...``) is rebuilt."""
    try:
        params = psycopg2.extensions.parse_dsn(dsn)
    except psycopg2.ProgrammingError:
        return "<not a valid connection string>"
    if "password" not in params:
        return dsn
    parts = urlsplit(dsn)
    if parts.password is not None and "password=" not in parts.query:
        return urlunsplit(
            parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@", 1))
        )
    return str(psycopg2.extensions.make_dsn(**{**params, "password": "***"}))


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
    except psycopg2.ProgrammingError as exc:  # libpq could not parse the string at all
        raise ConfigError(
            f"{redact(url)} is not a libpq connection string (postgresql://user@host:port/db)"
        ) from exc
    except psycopg2.OperationalError as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"cannot connect to {redact(url)}: {reason}") from exc


# SQLSTATEs that mean the server went away: class 08 (connection exception), and the server
# shutting down or starting up. Deadlocks, cancels or a full disk are OperationalErrors too,
# but retrying those forever would hide them.
_LOST_SQLSTATES = ("08", "57P01", "57P02", "57P03")
# Refusals at connect time carry no SQLSTATE in psycopg2; these ones will not heal by retrying.
_PERMANENT_REFUSALS = ("authentication failed", "does not exist", "no pg_hba.conf entry")


def is_connection_lost(exc: BaseException) -> bool:
    """Whether ``exc`` says the server went away or cannot be reached yet (worth a reconnect),
    rather than that the SQL, the data or the credentials are wrong (worth an error)."""
    if isinstance(exc, ConfigError) and isinstance(exc.__cause__, psycopg2.OperationalError):
        return not any(refusal in str(exc) for refusal in _PERMANENT_REFUSALS)
    if isinstance(exc, psycopg2.InterfaceError):  # the connection is already closed
        return True
    if isinstance(exc, psycopg2.OperationalError):
        return exc.pgcode is None or exc.pgcode.startswith(_LOST_SQLSTATES)
    return False


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
