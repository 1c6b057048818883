import socket
from urllib.parse import urlsplit, urlunsplit

import psycopg2
import pytest

from zetl.db import (
    ConnectionLost,
    connect,
    is_connection_lost,
    redact,
    wait_until_ready,
    with_database,
)
from zetl.errors import ConfigError, MissingDatabaseError


def test_redact_hides_the_password_only() -> None:
    assert redact("postgresql://u:pw@h:5432/db") == "postgresql://u:***@h:5432/db"
    assert redact("postgresql://u@h/db") == "postgresql://u@h/db"


def test_with_database_keeps_the_server() -> None:
    assert with_database("postgresql://u:p@h:1/a?sslmode=require", "b") == (
        "postgresql://u:p@h:1/b?sslmode=require"
    )


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_unreachable_server_is_a_clear_config_error_without_the_password() -> None:
    url = f"postgresql://u:topsecret@127.0.0.1:{_closed_port()}/db"
    with pytest.raises(ConfigError) as info:
        connect(url, connect_timeout=2)
    assert "cannot connect to postgresql://u:***@127.0.0.1" in str(info.value)
    assert "topsecret" not in str(info.value)


def test_wait_until_ready_gives_up_after_its_timeout() -> None:
    with pytest.raises(ConfigError):
        wait_until_ready(f"postgresql://u:p@127.0.0.1:{_closed_port()}/db", timeout_s=0.5)


@pytest.mark.docker
def test_connections_ask_for_tcp_keepalives(source_url: str) -> None:
    conn = connect(source_url)
    try:
        dsn = conn.get_dsn_parameters()
        assert (dsn["keepalives"], dsn["keepalives_idle"]) == ("1", "10")
    finally:
        conn.close()
    conn = connect(source_url, keepalives_idle=3)  # the caller's choice wins
    try:
        assert conn.get_dsn_parameters()["keepalives_idle"] == "3"
    finally:
        conn.close()


@pytest.mark.docker
def test_a_missing_database_is_told_apart_from_other_refusals(source_url: str) -> None:
    with pytest.raises(MissingDatabaseError, match='"no_such_db" does not exist'):
        connect(with_database(source_url, "no_such_db"))
    server = urlsplit(source_url)
    stranger = server._replace(netloc=f"no_such_role:x@{server.hostname}:{server.port}")
    with pytest.raises(ConfigError) as refused:  # refused for good, and not for the database
        connect(urlunsplit(stranger))
    assert not isinstance(refused.value, MissingDatabaseError)


def test_redact_hides_passwords_in_keyword_strings_and_query_parameters() -> None:
    assert "s3cret" not in redact("host=h dbname=d password=s3cret")
    assert "s3cret" not in redact("postgresql://u@h/db?password=s3cret")
    assert redact("not a dsn ===") == "<not a valid connection string>"


def test_an_unparseable_connection_string_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="is not a libpq connection string"):
        connect("localhost:55432/storefront")


def test_only_a_vanished_server_counts_as_a_lost_connection() -> None:
    assert is_connection_lost(psycopg2.InterfaceError("connection already closed"))
    assert is_connection_lost(psycopg2.OperationalError("server closed the connection"))
    refused = ConfigError("cannot connect to x: password authentication failed for user")
    refused.__cause__ = psycopg2.OperationalError()
    assert not is_connection_lost(refused)
    assert is_connection_lost(ConnectionLost("cannot connect to x: Connection refused"))
    assert not is_connection_lost(psycopg2.ProgrammingError("syntax error"))


@pytest.mark.docker
def test_a_deadlock_is_not_a_lost_connection(source_url: str) -> None:
    conn = connect(source_url)
    try:
        with conn.cursor() as cur, pytest.raises(psycopg2.OperationalError) as info:
            cur.execute("DO $$ BEGIN RAISE EXCEPTION USING ERRCODE = 'deadlock_detected'; END $$")
        assert info.value.pgcode == "40P01"
        assert not is_connection_lost(info.value)
    finally:
        conn.close()
