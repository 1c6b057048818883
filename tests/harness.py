"""The real-Postgres test harness: session-scoped source and warehouse servers in containers.

The source runs with ``wal_level=logical`` like an RDS instance with logical replication on;
the warehouse is a plain server standing in for Redshift Serverless. Both come from
``POSTGRES_IMAGE`` (the official image by default, the offline stand-in where no registry
answers). Tests get a fresh database on either server so they never see each other's tables.

Every server requires TLS as compose's do (and RDS does, ``rds.force_ssl = 1``): ssl on, with a
certificate from zetl.tls, and compose/pg_hba.conf, which refuses unencrypted connections. The
session's clients ask for it too (``PGSSLMODE=require`` unless set), so a test that connects
gets through only over TLS.

Without a Docker engine, tests that need one are skipped with the reason on a laptop and fail
with the same reason in CI (``CI=true``), where a missing engine is a broken pipeline.
"""

from __future__ import annotations

import os
import socket
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import psycopg2
import psycopg2.extensions
import pytest
from psycopg2 import sql

if TYPE_CHECKING:
    from testcontainers.core.container import DockerContainer

from zetl.tls import CA_FILE, CERT_FILE, KEY_FILE, ServerCertificate, ensure_certificates

DEFAULT_POSTGRES_IMAGE = "postgres:17"
# What the source gets beside RDS's own behaviour: DDL capture and rds.replica_identity_full's
# emulation (event triggers: a superuser installs them), as compose's init runs it
ZERO_ETL_SOURCE_SQL = Path(__file__).parents[1] / "compose/source/20-zetl-zero-etl-source.sql"
SOURCE_SETTINGS = {
    "wal_level": "logical",
    "max_replication_slots": "20",
    "max_wal_senders": "20",
}
HBA_FILE = Path(__file__).resolve().parents[1] / "compose" / "pg_hba.conf"
# Copied into the container before it starts. The entrypoint, still root, hands everything
# under /var/run/postgresql to the postgres user, and Postgres reads a key only its owner can.
TLS_DIR_IN_CONTAINER = "/var/run/postgresql/zetl-tls"
HBA_FILE_IN_CONTAINER = "/etc/zetl/pg_hba.conf"
TLS_SETTINGS = {
    "ssl": "on",
    "ssl_cert_file": f"{TLS_DIR_IN_CONTAINER}/{CERT_FILE}",
    "ssl_key_file": f"{TLS_DIR_IN_CONTAINER}/{KEY_FILE}",
    "hba_file": HBA_FILE_IN_CONTAINER,
}


def pytest_configure(config: pytest.Config) -> None:
    # libpq's default (prefer) falls back to plaintext; the servers refuse it anyway, and
    # asking for TLS makes a refusal say so instead of a missing pg_hba.conf entry.
    os.environ.setdefault("PGSSLMODE", "require")


@dataclass(frozen=True)
class PostgresServer:
    """Where a test Postgres listens, and how to reach one of its databases."""

    host: str
    port: int
    user: str
    password: str
    database: str
    container: Any = field(default=None, compare=False, repr=False)

    def url(self, database: str | None = None) -> str:
        return (
            f"postgresql://{self.user}:{self.password}@{self.host}:{self.port}/"
            f"{database or self.database}"
        )

    def connect(self, database: str | None = None) -> psycopg2.extensions.connection:
        conn = psycopg2.connect(self.url(database))
        conn.autocommit = True
        return conn

    def restart(self) -> None:
        """Stop and start the server for real: every connection drops, the data stays."""
        if self.container is None:
            raise RuntimeError("start the server with running_postgres(..., restartable=True)")
        self.container.get_wrapped_container().restart(timeout=5)

    def create_database(self, prefix: str = "test") -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        self.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return name

    def drop_database(self, name: str) -> None:
        self.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )

    def execute(self, statement: sql.Composable | str, database: str | None = None) -> None:
        """Run one statement outside a transaction block (CREATE DATABASE needs that)."""
        conn = self.connect(database)
        try:
            with conn.cursor() as cur:
                cur.execute(statement)
        finally:
            conn.close()


def postgres_image() -> str:
    return os.environ.get("POSTGRES_IMAGE") or DEFAULT_POSTGRES_IMAGE


@cache
def tls_directory() -> Path:
    """The session's CA (``ca.crt``, for clients that verify) and the one certificate every
    test server presents (``server/``), valid for the names tests reach them by."""
    directory = Path(tempfile.mkdtemp(prefix="zetl-test-tls-"))
    server = ServerCertificate(directory / "server", ("localhost", "127.0.0.1"))
    ensure_certificates(directory / CA_FILE, [server])
    return directory


@cache
def docker_unavailable_reason() -> str | None:
    """None when a Docker engine answers, else why not (checked once per session)."""
    try:
        import docker  # testcontainers' own client

        docker.from_env().ping()
    except Exception as exc:
        return f"no Docker engine answers ({type(exc).__name__}: {exc})"
    return None


def require_docker() -> None:
    reason = docker_unavailable_reason()
    if reason is None:
        return
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        pytest.fail(f"{reason}; CI needs Docker (bash .ci/run starts dockerd)", pytrace=False)
    pytest.skip(f"{reason}; start Docker to run this test")


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("docker"):
        require_docker()


Container = TypeVar("Container", bound="DockerContainer")


def with_tls(container: Container, command: str) -> Container:
    """A container of POSTGRES_IMAGE that runs ``command`` (``postgres -c ...``, or just the
    ``-c ...``) requiring TLS, as the harness' and compose's servers do."""
    certificate = tls_directory() / "server"
    tls = " ".join(f"-c {key}={value}" for key, value in TLS_SETTINGS.items())
    return (
        container.with_command(f"{command} {tls}")
        .with_copy_into_container(HBA_FILE, HBA_FILE_IN_CONTAINER, 0o644)
        .with_copy_into_container(certificate / CERT_FILE, f"{TLS_DIR_IN_CONTAINER}/{CERT_FILE}")
        .with_copy_into_container(
            certificate / KEY_FILE, f"{TLS_DIR_IN_CONTAINER}/{KEY_FILE}", 0o600
        )
    )


@contextmanager
def running_postgres(
    settings: dict[str, str], *, restartable: bool = False
) -> Iterator[PostgresServer]:
    """A Postgres container from POSTGRES_IMAGE with these server settings, for as long as
    the block runs (the fixtures below and the benchmarks use it). ``restartable`` binds a
    fixed host port, so ``PostgresServer.restart()`` keeps the server's address."""
    from testcontainers.community.postgres import PostgresContainer

    command = " ".join(f"-c {key}={value}" for key, value in settings.items())
    container = with_tls(
        PostgresContainer(
            postgres_image(), username="zetl", password="zetl-test", dbname="postgres"
        ),
        f"postgres {command}",
    )
    if restartable:
        container = container.with_bind_ports(5432, free_port())
    with container:
        yield PostgresServer(
            host=container.get_container_host_ip(),
            port=int(container.get_exposed_port(5432)),
            user="zetl",
            password="zetl-test",
            database="postgres",
            container=container if restartable else None,
        )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def source_server() -> Iterator[PostgresServer]:
    """The source Postgres (the RDS stand-in), with logical replication on."""
    require_docker()
    with running_postgres(SOURCE_SETTINGS) as server:
        yield server


@pytest.fixture(scope="session")
def warehouse_server() -> Iterator[PostgresServer]:
    """The warehouse Postgres (the Redshift Serverless stand-in)."""
    require_docker()
    with running_postgres({}) as server:
        yield server


def _fresh_database(server: PostgresServer) -> Iterator[str]:
    name = server.create_database()
    try:
        yield server.url(name)
    finally:
        server.drop_database(name)


@pytest.fixture
def source_url(source_server: PostgresServer) -> Iterator[str]:
    """A libpq URL of a new database on the source server, dropped afterwards: empty but for
    the event triggers compose's init installs on the source (DDL capture and the emulation of
    rds.replica_identity_full)."""
    for url in _fresh_database(source_server):
        install_zero_etl_source(url)
        yield url


def install_zero_etl_source(url: str) -> None:
    """Install the source's zero-ETL event triggers in the database at ``url`` (superuser)."""
    conn = psycopg2.connect(url)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(ZERO_ETL_SOURCE_SQL.read_text())
    finally:
        conn.close()


@pytest.fixture
def warehouse_url(warehouse_server: PostgresServer) -> Iterator[str]:
    """A libpq URL of a new, empty database on the warehouse server, dropped afterwards."""
    yield from _fresh_database(warehouse_server)
