"""Amazon's Python driver (redshift_connector) through the front, as a team would connect it:
TLS verified against the front's CA (its default, sslmode=verify-ca), password login."""

from __future__ import annotations

import datetime
import decimal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redshift_connector
from redshift_connector.core import Connection
from redshift_connector.error import InterfaceError, ProgrammingError

from services.redshift.tests.conftest import FRONT_PASSWORD, FRONT_ROLE, RunningFront, running_front

pytestmark = pytest.mark.docker


@pytest.fixture
def trusted_ca(front: RunningFront, monkeypatch: pytest.MonkeyPatch) -> None:
    # redshift_connector verifies against the system's CAs plus Amazon's bundle: a local CA
    # joins them through OpenSSL's SSL_CERT_FILE (README: connecting).
    monkeypatch.setenv("SSL_CERT_FILE", str(front.ca_file))


@pytest.fixture
def role(front: RunningFront) -> tuple[str, str]:
    return front.create_role()


@pytest.fixture
def connection(
    front: RunningFront, role: tuple[str, str], trusted_ca: None
) -> Iterator[Connection]:
    conn = redshift_connector.connect(
        host=front.host, port=front.port, database=front.database, user=role[0], password=role[1]
    )
    try:
        yield conn
    finally:
        conn.close()


def rows(conn: Connection, sql: str, params: Any = None) -> list[Any]:
    cursor = conn.cursor()
    cursor.execute(sql, params)
    return [list(row) for row in cursor.fetchall()]


def test_redshift_connector_connects_with_its_defaults_and_runs_queries(
    connection: Connection, role: tuple[str, str]
) -> None:
    assert str(connection._server_version) == "8.0.2"
    assert rows(connection, "SELECT current_user, 1 + 1") == [[role[0], 2]]
    got = rows(
        connection,
        "SELECT %s::int * 2, %s::text, %s::numeric(12,2), %s::date",
        (21, "naïve", decimal.Decimal("109427.95"), datetime.date(2026, 12, 7)),
    )
    assert got == [[42, "naïve", decimal.Decimal("109427.95"), datetime.date(2026, 12, 7)]]
    assert len(rows(connection, "SELECT g FROM generate_series(1, 50000) g")) == 50000


def test_redshift_connector_transactions_and_errors(
    connection: Connection,
) -> None:
    cursor = connection.cursor()
    cursor.execute("CREATE TEMP TABLE scratch (id int)")
    cursor.execute("INSERT INTO scratch VALUES (1), (2)")
    assert cursor.rowcount == 2
    with pytest.raises(ProgrammingError, match="division by zero"):
        cursor.execute("SELECT 1 / (id - 1) FROM scratch")
    connection.rollback()  # the temp table went with the transaction
    with pytest.raises(ProgrammingError, match="does not exist"):
        cursor.execute("SELECT * FROM scratch")
    connection.rollback()
    assert rows(connection, "SELECT 'after'") == [["after"]]


def test_redshift_connector_wrong_password_is_refused(
    front: RunningFront, role: tuple[str, str], trusted_ca: None
) -> None:
    with pytest.raises(ProgrammingError, match="28P01"):
        redshift_connector.connect(
            host=front.host, port=front.port, database=front.database, user=role[0], password="no"
        )


def test_redshift_connector_refuses_a_front_without_tls_unless_told(
    front: RunningFront, role: tuple[str, str], tmp_path: Path
) -> None:
    w = front.warehouse
    url = f"postgresql://{FRONT_ROLE}:{FRONT_PASSWORD}@{w.host}:{w.port}/{front.database}"
    with running_front(url, tmp_path, tls=False) as port:

        def connect(ssl: bool = True) -> Connection:
            return redshift_connector.connect(
                host=front.host,
                port=port,
                database=front.database,
                user=role[0],
                password=role[1],
                ssl=ssl,
            )

        with pytest.raises(InterfaceError, match="Server refuses SSL"):
            connect()
        conn = connect(ssl=False)
        try:
            assert rows(conn, "SELECT 'plain'") == [["plain"]]
        finally:
            conn.close()


def test_redshift_connector_checks_the_certificate(
    front: RunningFront, role: tuple[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Without the front's CA among the trusted ones, verify-ca fails: the check is real.
    empty = tmp_path / "none.pem"
    empty.write_text("")
    monkeypatch.setenv("SSL_CERT_FILE", str(empty))
    monkeypatch.setenv("SSL_CERT_DIR", str(tmp_path))
    with pytest.raises(InterfaceError):
        redshift_connector.connect(
            host=front.host,
            port=front.port,
            database=front.database,
            user=role[0],
            password=role[1],
        )
