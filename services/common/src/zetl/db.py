"""Connections to the source and warehouse Postgres servers, from libpq URLs."""

from __future__ import annotations

import logging
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg2
import psycopg2.extensions

from zetl.errors import ConfigError, MissingDatabaseError, first_line

log = logging.getLogger(__name__)


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

    connection: _Connection

    def execute(self, query: Any, vars: Any = None) -> None:
        with self.connection.round_trip():
            super().execute(query, vars)

    def executemany(self, query: Any, vars_list: Any) -> None:
        with self.connection.round_trip():
            super().executemany(query, vars_list)

    def copy_expert(self, sql: Any, file: Any, size: int = 8192) -> None:
        with self.connection.round_trip():
            super().copy_expert(sql, file, size)


class _Connection(psycopg2.extensions.connection):
    """A connection whose cursors, commits and rollbacks raise ConnectionLost when the server
    is gone (``with conn:`` included), and whose round trips the stall watchdog watches when
    ``stall_seconds`` is set."""

    def __init__(self, dsn: str, *args: Any, **kwargs: Any) -> None:
        super().__init__(dsn, *args, **kwargs)
        self.cursor_factory = _Cursor
        self.side_dsn = dsn  # the watchdog's own connection: ``self.dsn`` hides the password
        self.stall_seconds: float | None = None

    @contextmanager
    def round_trip(self) -> Iterator[None]:
        with connection_edge():
            if self.stall_seconds is None:
                yield
            else:
                with WATCHDOG.watching(self):
                    yield

    def cursor(self, *args: Any, **kwargs: Any) -> Any:
        with connection_edge():
            return super().cursor(*args, **kwargs)

    def commit(self) -> None:
        with self.round_trip():
            super().commit()

    def rollback(self) -> None:
        with self.round_trip():
            super().rollback()

    def __exit__(self, *exc_info: Any) -> None:
        with self.round_trip():
            super().__exit__(*exc_info)


@dataclass
class _Flight:
    """One round trip in flight on a watched connection."""

    conn: _Connection
    started: float
    suspect: int = 0  # checks in a row that found the server waiting for us, not working


class StallWatchdog:
    """Breaks round trips that a frozen network holds for ever.

    A statement sent into a connection that stays open but carries nothing (a hung load
    balancer, a dead NAT entry) waits for ever: the server never got it, or its answer never
    got back, and TCP keepalives cannot tell while the peer's kernel still acknowledges. A
    statement that simply runs long looks the same from the client. So once a round trip has
    lasted ``stall_seconds``, the watchdog asks the server over a connection of its own whether
    that backend is working on it. A backend that is idle (waiting for our statement), blocked
    writing its answer to us, gone, or a server that cannot be asked, on two checks in a row,
    is a stall: the watchdog shuts the socket down, libpq fails the call, and the caller's
    ``ConnectionLost`` handling starts again from its last commit (nothing uncommitted was
    applied). One thread for the process, started on first use.
    """

    CHECK_SECONDS = 5.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._flights: dict[int, _Flight] = {}
        self._thread: threading.Thread | None = None
        self.broken = 0  # round trips it broke (for tests and logs)

    @contextmanager
    def watching(self, conn: _Connection) -> Iterator[None]:
        flight = _Flight(conn, time.monotonic())
        with self._lock:
            self._flights[id(flight)] = flight
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="zetl-stalls", daemon=True)
                self._thread.start()
        try:
            yield
        finally:
            with self._lock:
                self._flights.pop(id(flight), None)

    def _run(self) -> None:
        while True:
            with self._lock:
                limits = [f.conn.stall_seconds or 0.0 for f in self._flights.values()]
            # Checked twice within a limit: a stall is broken within about twice its limit.
            time.sleep(min([self.CHECK_SECONDS, *(limit / 2 for limit in limits)]))
            now = time.monotonic()
            with self._lock:
                due = [
                    f
                    for f in self._flights.values()
                    if now - f.started >= (f.conn.stall_seconds or 0.0)
                ]
            for flight in due:
                try:
                    self._check(flight)
                except Exception:  # the watchdog must outlive anything one check meets
                    log.exception("stall check failed")

    def _check(self, flight: _Flight) -> None:
        conn = flight.conn
        reason = _waiting_for_us(conn)
        with self._lock:
            if id(flight) not in self._flights:  # it ended meanwhile
                return
            flight.suspect = flight.suspect + 1 if reason else 0
            if flight.suspect < 2:
                return
        self.broken += 1
        log.warning(
            "a round trip stalled; closing its connection",
            extra={"seconds": round(time.monotonic() - flight.started, 1), "reason": reason},
        )
        with socket.socket(fileno=conn.fileno()) as sock:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            finally:
                sock.detach()  # libpq still owns the descriptor and closes it


def _waiting_for_us(conn: _Connection) -> str | None:
    """Why the server is not working on ``conn``'s round trip, or None while it is."""
    try:
        side = psycopg2.connect(
            conn.side_dsn,
            connect_timeout=5,
            options="-c statement_timeout=5000",
            application_name="zetl-stall-check",
        )
    except psycopg2.Error as exc:
        return f"the server cannot be asked: {first_line(exc)}"
    try:
        with side.cursor() as cur:
            cur.execute(
                "SELECT state, wait_event FROM pg_stat_activity WHERE pid = %s",
                (conn.info.backend_pid,),
            )
            row = cur.fetchone()
    except psycopg2.Error as exc:
        return f"the server cannot be asked: {first_line(exc)}"
    finally:
        side.close()
    if row is None:
        return "its backend is gone"
    state, wait_event = row
    if state != "active":
        return f"its backend is {state}, waiting for the statement"
    if wait_event == "ClientWrite":
        return "its backend is blocked sending the answer"
    return None


WATCHDOG = StallWatchdog()


def connect(
    url: str, *, raise_lost: bool = False, stall_seconds: float | None = None, **kwargs: Any
) -> psycopg2.extensions.connection:
    """Open a psycopg2 connection: ConnectionLost while the server cannot be reached (yet),
    ConfigError when it refuses us for good or the URL is wrong. ``raise_lost``: its
    statements, commits and rollbacks raise ConnectionLost too when the server goes away
    (else the driver's error, for callers that handle psycopg2's errors themselves).
    ``stall_seconds`` (with ``raise_lost``): a round trip that lasts longer while the server
    is not working on it is broken into a ConnectionLost (``StallWatchdog``)."""
    if raise_lost:
        kwargs.setdefault("connection_factory", _Connection)
    try:
        conn: psycopg2.extensions.connection = psycopg2.connect(url, **{**KEEPALIVES, **kwargs})
        if isinstance(conn, _Connection):
            conn.stall_seconds = stall_seconds
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
    """Retry with backoff until the server accepts a connection, for containers still starting
    (a server not answering yet, a database not created yet). A refusal that retrying cannot
    heal (a wrong password, no pg_hba entry) is raised at once."""
    deadline, delay = time.monotonic() + timeout_s, 0.2
    while True:
        try:
            connect(url, connect_timeout=5).close()
            return
        except (ConnectionLost, MissingDatabaseError):
            if time.monotonic() + delay > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 5.0)
