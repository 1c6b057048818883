"""Connections to the source and warehouse Postgres servers, from libpq URLs."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg2
import psycopg2.extensions

from zetl.errors import ConfigError, MissingDatabaseError, first_line


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


class ConnectionLost(ConfigError):  # noqa: N818 (a condition, like ConnectionResetError's)
    """The server went away or cannot be reached yet: worth a reconnect, unlike the SQL, the
    data or the credentials being wrong. Raised by ``connect``, by the round trips of the
    connections it opens with ``raise_lost``, and inside ``connection_edge``; its cause is the
    driver's error."""


@contextmanager
def connection_edge(*, stream: bool = False) -> Iterator[None]:
    """Raise ``ConnectionLost`` for a driver error inside the block that means the server is
    gone. ``stream``: the block reads a replication stream, where libpq reports a server
    that vanished mid-stream as a bare DatabaseError ("no COPY in progress")."""
    try:
        yield
    except psycopg2.Error as exc:
        if is_connection_lost(exc) or (
            stream
            and isinstance(exc, psycopg2.DatabaseError)
            and not isinstance(exc, psycopg2.OperationalError)
        ):
            raise ConnectionLost(first_line(exc)) from exc
        raise


class _Cursor(psycopg2.extensions.cursor):
    """A cursor whose round trips raise ConnectionLost when the server is gone."""

    def execute(self, query: Any, vars: Any = None) -> None:
        with connection_edge():
            super().execute(query, vars)

    def executemany(self, query: Any, vars_list: Any) -> None:
        with connection_edge():
            super().executemany(query, vars_list)

    def copy_expert(self, sql: Any, file: Any, size: int = 8192) -> None:
        with connection_edge():
            super().copy_expert(sql, file, size)


class _Connection(psycopg2.extensions.connection):
    """A connection whose cursors, commits and rollbacks raise ConnectionLost when the server
    is gone (``with conn:`` included)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.cursor_factory = _Cursor

    def cursor(self, *args: Any, **kwargs: Any) -> Any:
        with connection_edge():
            return super().cursor(*args, **kwargs)

    def commit(self) -> None:
        with connection_edge():
            super().commit()

    def rollback(self) -> None:
        with connection_edge():
            super().rollback()

    def __exit__(self, *exc_info: Any) -> None:
        with connection_edge():
            super().__exit__(*exc_info)


def connect(url: str, *, raise_lost: bool = False, **kwargs: Any) -> psycopg2.extensions.connection:
    """Open a psycopg2 connection: ConnectionLost while the server cannot be reached (yet),
    ConfigError when it refuses us for good or the URL is wrong. ``raise_lost``: its
    statements, commits and rollbacks raise ConnectionLost too when the server goes away
    (else the driver's error, for callers that handle psycopg2's errors themselves)."""
    if raise_lost:
        kwargs.setdefault("connection_factory", _Connection)
    try:
        conn: psycopg2.extensions.connection = psycopg2.connect(url, **{**KEEPALIVES, **kwargs})
        return conn
    except psycopg2.ProgrammingError as exc:  # libpq could not parse the string at all
        raise ConfigError(
            f"{redact(url)} is not a libpq connection string (postgresql://user@host:port/db)"
        ) from exc
    except psycopg2.OperationalError as exc:
        reason = first_line(exc)
        # Refusals at connect time carry no SQLSTATE in psycopg2: libpq's text is all there is.
        kind: type[Exception] = ConnectionLost
        if _MISSING_DATABASE.search(reason):
            kind = MissingDatabaseError
        elif any(r in reason for r in _PERMANENT_REFUSALS):
            kind = ConfigError
        raise kind(f"cannot connect to {redact(url)}: {reason}") from exc


# SQLSTATEs that mean the server went away: class 08 (connection exception), and the server
# shutting down or starting up. Deadlocks, cancels or a full disk are OperationalErrors too,
# but retrying those forever would hide them.
_LOST_SQLSTATES = ("08", "57P01", "57P02", "57P03")
# Refusals at connect time carry no SQLSTATE in psycopg2; these ones will not heal by retrying.
_PERMANENT_REFUSALS = (
    "authentication failed",
    "does not exist",
    "no pg_hba.conf entry",
    "pg_hba.conf rejects connection",  # a plaintext connection to a server requiring TLS
    "does not support SSL",  # sslmode=require to a server without TLS
    "certificate verify failed",
)
_MISSING_DATABASE = re.compile(r'database ".*" does not exist')


def is_connection_lost(exc: BaseException) -> bool:
    """Whether ``exc`` says the server went away or cannot be reached yet (worth a reconnect),
    rather than that the SQL, the data or the credentials are wrong (worth an error)."""
    if isinstance(exc, ConnectionLost):
        return True
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
