"""The front's wire protocol, with libpq (psycopg2) and a message-level client of the tests' own
against a real warehouse Postgres."""

from __future__ import annotations

import socket
import struct
import sys
import threading
import time
import types
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psycopg2
import psycopg2.errors
import pytest

import zetl_redshift
from services.redshift.tests.conftest import RunningFront, running_front, scalar
from tests.harness import tls_directory
from tests.support import wait_for
from zetl.errors import ConfigError
from zetl_redshift import messages as m
from zetl_redshift import server
from zetl_redshift.tls import CA_FILE
from zetl_redshift.translate import Forward, Refused, ZeroEtlCommand

pytestmark = pytest.mark.docker


class Wire:
    """A client speaking the protocol message by message (plain TCP), to see exactly what the
    front sends back."""

    def __init__(self, front: RunningFront, user: str, password: str) -> None:
        self.sock = socket.create_connection((front.host, front.port), timeout=30)
        self.sock.sendall(m.startup_message({"user": user, "database": front.database}))
        kind, body = self.read()
        assert (kind, struct.unpack("!i", body)[0]) == (b"R", m.AUTH_CLEARTEXT)
        self.sock.sendall(m.password_message(password))
        self.parameters: dict[str, str] = {}
        self.pid, self.key = 0, b""
        for kind, body in self.until(b"Z"):
            if kind == b"S":
                name, value = m.parse_parameter_status(body)
                self.parameters[name] = value
            elif kind == b"K":
                self.pid, self.key = struct.unpack("!i", body[:4])[0], body
            assert kind != b"E", m.parse_error(body)

    def send(self, *messages: bytes) -> None:
        self.sock.sendall(b"".join(messages))

    def read(self) -> tuple[bytes, bytes]:
        header = self._exactly(5)
        kind, length = m.HEADER.unpack(header)
        return kind, self._exactly(length - 4)

    def until(self, last: bytes = b"Z") -> Iterator[tuple[bytes, bytes]]:
        while True:
            kind, body = self.read()
            yield kind, body
            if kind == last:
                return

    def exchange(self, *messages: bytes) -> list[tuple[bytes, bytes]]:
        """Send, then read everything up to and including ReadyForQuery."""
        self.send(*messages)
        return list(self.until(b"Z"))

    def _exactly(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("the front closed the connection")
            data += chunk
        return data

    def close(self) -> None:
        self.sock.close()


def kinds(replies: list[tuple[bytes, bytes]]) -> bytes:
    return b"".join(kind for kind, _ in replies)


def bind(portal: str, statement: str, params: list[bytes], *, binary: bool) -> bytes:
    fmt = 1 if binary else 0
    body = m.cstring(portal) + m.cstring(statement)
    body += struct.pack("!hh", 1, fmt) + struct.pack("!h", len(params))
    body += b"".join(struct.pack("!i", len(p)) + p for p in params)
    body += struct.pack("!hh", 1, fmt)  # result columns in the same format
    return m.message(b"B", body)


def execute(portal: str = "", max_rows: int = 0) -> bytes:
    return m.message(b"E", m.cstring(portal) + struct.pack("!i", max_rows))


def describe(kind: bytes, name: str) -> bytes:
    return m.message(b"D", kind + m.cstring(name))


def data_rows(replies: list[tuple[bytes, bytes]]) -> list[list[bytes | None]]:
    rows = []
    for kind, body in replies:
        if kind != b"D":
            continue
        (count,) = struct.unpack_from("!h", body)
        pos, row = 2, []
        for _ in range(count):
            (size,) = struct.unpack_from("!i", body, pos)
            pos += 4
            row.append(None if size < 0 else body[pos : pos + size])
            pos += max(size, 0)
        rows.append(row)
    return rows


@pytest.fixture
def role(front: RunningFront) -> tuple[str, str]:
    return front.create_role()


@pytest.fixture
def table(front: RunningFront, role: tuple[str, str]) -> str:
    """A table the role may write."""
    name = f"t_{role[0]}"
    conn = front.superuser()
    with conn.cursor() as cur:
        cur.execute(f"CREATE TABLE {name} (id int PRIMARY KEY, note text)")
        cur.execute(f'GRANT SELECT, INSERT ON {name} TO "{role[0]}"')
    conn.close()
    return name


def backends_of(front: RunningFront, user: str) -> int:
    conn = front.superuser()
    try:
        return int(
            scalar(conn, "SELECT count(*) FROM pg_stat_activity WHERE usename = %s", (user,))
        )
    finally:
        conn.close()


# --- startup, TLS, authentication ------------------------------------------------------------


def test_psycopg2_logs_in_over_verified_tls_as_its_own_role(
    front: RunningFront, role: tuple[str, str]
) -> None:
    conn = front.connect(*role, sslmode="verify-full")
    try:
        assert conn.info.ssl_in_use
        assert conn.get_parameter_status("server_version") == "8.0.2"
        assert scalar(conn, "SELECT current_user") == role[0]
        # The warehouse's own backend: the pid dbt-redshift would pg_terminate_backend.
        assert conn.get_backend_pid() == scalar(conn, "SELECT pg_backend_pid()")
    finally:
        conn.close()


def test_a_wrong_password_gets_postgres_own_refusal(
    front: RunningFront, role: tuple[str, str]
) -> None:
    with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
        front.connect(role[0], "not-the-password")
    with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
        front.connect("nobody_at_all", "whatever")


def test_with_tls_off_an_ssl_request_is_refused_and_plain_connections_work(
    front: RunningFront, role: tuple[str, str], tmp_path: Path
) -> None:
    with running_front(front_url(front), tmp_path, tls=False) as port:
        with socket.create_connection((front.host, port), timeout=10) as sock:
            sock.sendall(struct.pack("!ii", 8, m.SSL_REQUEST))
            assert sock.recv(1) == b"N"
        plain = RunningFront(front.host, port, front.database, front.ca_file, front.warehouse)
        with pytest.raises(psycopg2.OperationalError, match="does not support SSL"):
            plain.connect(*role, sslmode="require")
        conn = plain.connect(*role, sslmode="disable")
        assert scalar(conn, "SELECT 2") == 2
        conn.close()
    assert not list(tmp_path.iterdir()), "no certificate is made with TLS off"


def test_the_relayed_connection_to_the_warehouse_is_encrypted(
    front: RunningFront, role: tuple[str, str], tmp_path: Path
) -> None:
    """The warehouse refuses plaintext (as RDS and Redshift do): the front asks for TLS as the
    warehouse URL's sslmode says, and with verify-ca checks the warehouse's certificate."""
    conn = front.connect(*role)
    try:
        ssl_in_use = "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
        assert scalar(conn, ssl_in_use) is True
    finally:
        conn.close()
    ca = tls_directory() / CA_FILE
    verified = f"{front_url(front)}?sslmode=verify-ca&sslrootcert={ca}"
    with running_front(verified, tmp_path) as port:
        through = RunningFront(
            front.host, port, front.database, tmp_path / CA_FILE, front.warehouse
        )
        conn = through.connect(*role)
        assert scalar(conn, ssl_in_use) is True
        conn.close()
    plaintext = f"{front_url(front)}?sslmode=disable"
    with pytest.raises(ConfigError, match="no encryption"), running_front(plaintext, tmp_path):
        pass  # its own login (the catalog, the history) is refused: it does not start


def front_url(front: RunningFront) -> str:
    from services.redshift.tests.conftest import FRONT_PASSWORD, FRONT_ROLE

    w = front.warehouse
    return f"postgresql://{FRONT_ROLE}:{FRONT_PASSWORD}@{w.host}:{w.port}/{front.database}"


def test_redshift_driver_startup_parameters_are_dropped(
    front: RunningFront, role: tuple[str, str]
) -> None:
    wire_params = {
        "user": role[0],
        "database": front.database,
        "application_name": "probe",
        "client_protocol_version": "2",
        "driver_version": "Redshift Python Driver 2.1",
        "os_version": "Linux",
        "driver_discovery_version": "1",
    }
    with socket.create_connection((front.host, front.port), timeout=10) as sock:
        sock.sendall(m.startup_message(wire_params))
        sock.recv(64)
        sock.sendall(m.password_message(role[1]))
        data = b""
        while not data.endswith(m.ready_for_query(b"I")):
            chunk = sock.recv(4096)
            assert chunk, data
            data += chunk
        assert b"E" not in data[:1]
        assert m.parameter_status("server_version", "8.0.2") in data
        assert m.parameter_status("application_name", "probe") in data
        assert b"server_protocol_version" not in data


# --- queries -------------------------------------------------------------------------------


def test_extended_protocol_named_statements_portals_and_binary_parameters(
    front: RunningFront, role: tuple[str, str]
) -> None:
    wire = Wire(front, *role)
    try:
        sql = "SELECT $1::int4 * 2, $2::text || '!' FROM generate_series(1, 3)"
        replies = wire.exchange(
            m.parse("doubled", sql, struct.pack("!hii", 2, 23, 25)),
            describe(b"S", "doubled"),
            m.SYNC,
        )
        assert kinds(replies) == b"1tTZ"  # ParseComplete ParameterDescription RowDescription
        wire.send(
            m.query("BEGIN"),  # a portal lives until the transaction ends
            bind("p1", "doubled", [struct.pack("!i", 21), b"hi"], binary=True),
            describe(b"P", "p1"),
            execute("p1", max_rows=2),  # a portal read in two steps
            m.message(b"H"),  # Flush: the replies so far, with no Sync
        )
        assert kinds(list(wire.until(b"Z"))) == b"CZ"
        got = [wire.read() for _ in range(5)]
        assert kinds(got) == b"2TDDs"  # BindComplete RowDescription 2 rows PortalSuspended
        assert data_rows(got) == [[struct.pack("!i", 42), b"hi!"]] * 2
        replies = wire.exchange(execute("p1"), m.SYNC, m.query("COMMIT"))
        assert kinds(replies) == b"DCZ"
        assert replies[1][1] == b"SELECT 1\0"
        assert kinds(list(wire.until(b"Z"))) == b"CZ"
        # The named statement outlives the transaction; the unnamed one is replaced freely.
        replies = wire.exchange(
            bind("", "doubled", [b"5", b"x"], binary=False),
            execute(),
            m.parse("", "SELECT 7", b"\0\0"),
            bind("", "", [], binary=False),
            execute(),
            m.message(b"C", b"S" + m.cstring("doubled")),
            m.SYNC,
        )
        assert kinds(replies) == b"2DDDC12DC3Z"
        assert data_rows(replies) == [[b"10", b"x!"]] * 3 + [[b"7"]]
    finally:
        wire.close()


def test_an_error_inside_a_transaction_then_rollback(
    front: RunningFront, role: tuple[str, str], table: str
) -> None:
    conn = front.connect(*role)
    try:
        with conn.cursor() as cur:
            cur.execute(f"INSERT INTO {table} VALUES (1, 'kept until rollback')")
            with pytest.raises(psycopg2.errors.DivisionByZero):
                cur.execute("SELECT 1 / 0")
            with pytest.raises(psycopg2.errors.InFailedSqlTransaction):
                cur.execute("SELECT 1")
        conn.rollback()
        assert scalar(conn, f"SELECT count(*) FROM {table}") == 0
        with conn.cursor() as cur:
            cur.execute(f"INSERT INTO {table} VALUES (2, 'committed')")
        conn.commit()
        assert scalar(conn, f"SELECT note FROM {table}") == "committed"
    finally:
        conn.close()
    # The same in the extended protocol: the error skips to Sync, the transaction is failed.
    wire = Wire(front, *role)
    try:
        assert kinds(wire.exchange(m.query("BEGIN"))) == b"CZ"
        replies = wire.exchange(
            m.parse("", "SELECT 1 / (g - 1) FROM generate_series(1, 2) g", b"\0\0"),
            bind("", "", [], binary=False),
            execute(),
            m.parse("", "SELECT 2", b"\0\0"),
            m.SYNC,
        )
        assert kinds(replies) == b"12EZ"
        assert m.parse_error(replies[2][1]).sqlstate == "22012"
        assert replies[-1][1] == b"E"  # in a failed transaction
        assert wire.exchange(m.query("ROLLBACK"))[-1] == (b"Z", b"I")
    finally:
        wire.close()


def refusing(sql: str) -> Forward | ZeroEtlCommand:
    """A translation that refuses what says REFUSE ME, as the dialect refuses what Redshift does."""
    if "REFUSE ME" in sql:
        raise Refused("REFUSE ME is not supported on Redshift", "0A000")
    return Forward(sql)


def test_a_refused_statement_is_an_error_in_order_and_never_reaches_the_warehouse(
    front: RunningFront, role: tuple[str, str], table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(server, "translate", refusing)
    conn = front.connect(*role)
    try:
        with conn.cursor() as cur:
            cur.execute(f"INSERT INTO {table} VALUES (1, 'before')")
            with pytest.raises(psycopg2.errors.FeatureNotSupported, match="REFUSE ME is not"):
                cur.execute(f"INSERT INTO {table} VALUES (2, 'REFUSE ME')")
            # As after any error, the transaction is failed until it rolls back.
            with pytest.raises(psycopg2.errors.InFailedSqlTransaction):
                cur.execute("SELECT 1")
        conn.rollback()
        conn.autocommit = True
        with pytest.raises(psycopg2.errors.FeatureNotSupported):
            scalar(conn, f"INSERT INTO {table} VALUES (3, 'REFUSE ME') RETURNING id")
        assert scalar(conn, f"SELECT count(*) FROM {table}") == 0
    finally:
        conn.close()
    wire = Wire(front, *role)
    try:
        replies = wire.exchange(
            m.parse("", "SELECT 1", b"\0\0"),
            bind("", "", [], binary=False),
            execute(),
            m.parse("", "SELECT 'REFUSE ME'", b"\0\0"),
            bind("", "", [], binary=False),
            execute(),
            m.SYNC,
        )
        assert kinds(replies) == b"12DCEZ"  # the earlier statement's reply comes first
        error = m.parse_error(replies[4][1])
        assert (error.sqlstate, error.message) == (
            "0A000",
            "REFUSE ME is not supported on Redshift",
        )
        assert kinds(wire.exchange(m.query("SELECT 3"))) == b"TDCZ"
    finally:
        wire.close()


def test_a_zero_etl_statement_runs_as_the_client_and_answers_its_tag(
    front: RunningFront, role: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    ran: list[tuple[str, str]] = []

    def run(statement: str, dsn: str) -> str:
        conn = psycopg2.connect(dsn)
        try:
            ran.append((statement, scalar(conn, "SELECT current_user")))
        finally:
            conn.close()
        return "CREATE DATABASE"

    def zero_etl(sql: str) -> Forward | ZeroEtlCommand:
        return ZeroEtlCommand(sql) if "FROM INTEGRATION" in sql else Forward(sql)

    fake = types.ModuleType("zetl_redshift.integration")
    fake.run = run  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "zetl_redshift.integration", fake)
    monkeypatch.setattr(zetl_redshift, "integration", fake, raising=False)
    monkeypatch.setattr(server, "translate", zero_etl)
    statement = "CREATE DATABASE zetl_db FROM INTEGRATION 'id-1'"
    conn = front.connect(*role)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(statement)
            assert cur.statusmessage == "CREATE DATABASE"
    finally:
        conn.close()
    wire = Wire(front, *role)
    try:
        replies = wire.exchange(
            m.parse("zero", statement, b"\0\0"),
            bind("", "zero", [], binary=False),
            execute(),
            m.SYNC,
        )
        assert kinds(replies) == b"12CZ"
        assert replies[2][1] == b"CREATE DATABASE\0"
    finally:
        wire.close()
    assert ran == [(statement, role[0])] * 2


# --- cancel, terminate, vanishing clients ----------------------------------------------------


def test_cancel_reaches_the_running_query(front: RunningFront, role: tuple[str, str]) -> None:
    # libpq's own cancel (psycopg2's conn.cancel) holds the GIL while it waits, which would
    # freeze a front running in this process: the test sends libpq's packet itself.
    wire = Wire(front, *role)
    try:
        wire.send(m.query("SELECT pg_sleep(60)"))
        wait_for(lambda: sleeping(front, role[0]), "the statement to run")
        started = time.monotonic()
        with socket.create_connection((front.host, front.port), timeout=30) as sock:
            sock.sendall(struct.pack("!ii", 16, m.CANCEL_REQUEST) + wire.key)
            assert sock.recv(1) == b""  # closed once the warehouse took the request
        replies = dict(wire.until(b"Z"))
        assert m.parse_error(replies[b"E"]).sqlstate == "57014"  # query_canceled
        assert time.monotonic() - started < 30
        assert data_rows(wire.exchange(m.query("SELECT 'still usable'"))) == [[b"still usable"]]
    finally:
        wire.close()


def test_pg_terminate_backend_of_the_reported_pid_ends_the_session(
    front: RunningFront, role: tuple[str, str]
) -> None:
    """dbt-redshift cancels by pg_terminate_backend(pid) on another connection."""
    running = front.connect(*role)
    other = front.connect(*role)
    try:
        pid = running.get_backend_pid()
        timer = threading.Timer(
            1.0, lambda: scalar(other, "SELECT pg_terminate_backend(%s)", (pid,))
        )
        timer.start()
        with pytest.raises(psycopg2.OperationalError):
            scalar(running, "SELECT pg_sleep(60)")
        timer.join()
    finally:
        running.close()
        other.close()
    wait_for(lambda: backends_of(front, role[0]) == 0, "the backends to end", timeout=30)


def test_terminate_leaves_no_backend(front: RunningFront, role: tuple[str, str]) -> None:
    conn = front.connect(*role)
    assert scalar(conn, "SELECT 1") == 1
    assert backends_of(front, role[0]) == 1
    conn.close()
    wait_for(lambda: backends_of(front, role[0]) == 0, "the backend to end", timeout=30)


def test_wide_values_pass_whole_in_both_directions(
    front: RunningFront, role: tuple[str, str]
) -> None:
    # Messages far larger than the front's read chunk: a 3 MB statement to the warehouse, and
    # a 20 MB row back, alone and as the last row of a portal the client suspends with Flush.
    conn = front.connect(*role)
    try:
        wide = "y" * 3_000_000
        assert scalar(conn, "SELECT length(%s)", (wide,)) == len(wide)
        assert scalar(conn, "SELECT length(repeat('x', 20000000))") == 20_000_000
        value = scalar(conn, "SELECT repeat('x', 20000000)")
        assert isinstance(value, str) and len(value) == 20_000_000
    finally:
        conn.close()
    wire = Wire(front, *role)
    try:
        # No Sync, only Flush: the warehouse sends ParseComplete, BindComplete, the wide
        # DataRow and PortalSuspended, then waits; the front must forward the row without
        # waiting for more from either side.
        wire.send(
            m.parse("", "SELECT repeat('z', 5000000)", struct.pack("!h", 0)),
            bind("", "", [], binary=False),
            execute("", max_rows=1),
            m.message(b"H"),
        )
        got = [wire.read() for _ in range(4)]
        assert kinds(got) == b"12Ds"
        assert got[2][1].count(b"z") == 5_000_000
        # A wide message that is the last the warehouse sends before it waits: an error that
        # quotes a 5 MB value, answered to a Flush before any Sync.
        wire.send(
            m.SYNC,
            m.parse("", "SELECT repeat('z', 5000000)::integer", struct.pack("!h", 0)),
            bind("", "", [], binary=False),
            execute(""),
            m.message(b"H"),
        )
        got = [wire.read() for _ in range(3)]
        assert kinds(got) == b"Z1E"  # the constant is folded, and fails, at Bind
        assert m.parse_error(got[2][1]).sqlstate == "22P02"
        assert got[2][1].count(b"z") == 5_000_000
    finally:
        wire.close()


def vanish(sock: socket.socket) -> None:
    """Close as a crashed client does: at once, with a reset."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def test_a_client_vanishing_halfway_through_a_large_result_leaves_no_backend(
    front: RunningFront, role: tuple[str, str]
) -> None:
    wire = Wire(front, *role)
    wire.send(m.query("SELECT repeat('x', 200) FROM generate_series(1, 2000000)"))
    received = 0
    while received < 4 * 1024 * 1024:  # well into the result, far from its end
        received += len(wire.sock.recv(65536))
    vanish(wire.sock)
    wait_for(lambda: backends_of(front, role[0]) == 0, "the backend to end", timeout=60)


def test_a_client_vanishing_during_a_long_statement_leaves_no_backend(
    front: RunningFront, role: tuple[str, str]
) -> None:
    wire = Wire(front, *role)
    wire.send(m.query("SELECT pg_sleep(300)"))
    wait_for(lambda: backends_of(front, role[0]) == 1 and sleeping(front, role[0]), "the sleep")
    vanish(wire.sock)
    wait_for(lambda: backends_of(front, role[0]) == 0, "the backend to end", timeout=60)


def sleeping(front: RunningFront, user: str) -> bool:
    conn = front.superuser()
    try:
        return bool(
            scalar(
                conn,
                "SELECT count(*) FROM pg_stat_activity WHERE usename = %s AND state = 'active'",
                (user,),
            )
        )
    finally:
        conn.close()


def test_100_concurrent_connections(front: RunningFront, role: tuple[str, str]) -> None:
    clients = 100
    everyone_in = threading.Barrier(clients, timeout=120)

    def client(n: int) -> Any:
        conn = front.connect(*role)
        try:
            everyone_in.wait()  # all 100 connected at once
            return scalar(conn, "SELECT %s::int * 10", (n,))
        finally:
            conn.close()

    with ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(client, range(clients)))
    assert results == [n * 10 for n in range(clients)]
    wait_for(lambda: backends_of(front, role[0]) == 0, "every backend to end", timeout=60)


# --- query history -------------------------------------------------------------------------


def test_each_statement_lands_in_sys_query_history(
    front: RunningFront, role: tuple[str, str]
) -> None:
    conn = front.connect(*role)
    conn.autocommit = True
    marker = f"history probe {role[0]}"
    try:
        with conn.cursor() as cur:
            cur.execute(f"SELECT '{marker}', g FROM generate_series(1, 5) g")
            with pytest.raises(psycopg2.errors.UndefinedTable):
                cur.execute(f"SELECT '{marker}' FROM no_such_table")

        def recorded() -> list[tuple[Any, ...]]:
            with conn.cursor() as cur:
                cur.execute(
                    "SELECT status, returned_rows, error_message, query_type, database_name,"
                    " end_time >= start_time, user_id = (SELECT usesysid FROM pg_user"
                    "   WHERE usename = current_user)"
                    " FROM zetl_redshift.sys_query_history WHERE query_text LIKE %s"
                    " ORDER BY query_id",
                    (f"SELECT '{marker}'%",),
                )
                return cur.fetchall()

        wait_for(lambda: len(recorded()) == 2, "both statements in the history", timeout=30)
        ok, failed = recorded()
        assert ok == ("success", 5, None, "SELECT", front.database, True, True)
        assert failed[0] == "failed"
        assert 'relation "no_such_table" does not exist' in failed[2]
    finally:
        conn.close()
    other = front.connect(*front.create_role())
    try:  # as on Redshift, a user sees only their own queries
        assert scalar(other, "SELECT count(*) FROM zetl_redshift.sys_query_history") == 0
    finally:
        other.close()
