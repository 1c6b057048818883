"""The contract of the official postgres image that the project relies on.

Runs against the image named by ``POSTGRES_IMAGE`` (``postgres:17`` by default): where Docker
Hub answers this checks the official image, and on an offline machine the stand-in built by
``compose/offline/build.sh``. Both must pass the same tests; that is what lets compose files,
init scripts and test fixtures use either one unchanged.

Containers are shared per module where a test only reads from them, to keep the run short.
"""

from __future__ import annotations

import gzip
import lzma
import os
import time
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import psycopg2
import psycopg2.extensions
import psycopg2.extras
import pytest
from testcontainers.community.postgres import PostgresContainer
from testcontainers.core.container import DockerContainer

from tests.harness import with_tls
from tests.support import wait_for

pytestmark = pytest.mark.docker

DEFAULT_IMAGE = "postgres:17"
STARTUP_TIMEOUT_S = 60.0
EXIT_TIMEOUT_S = 30.0

# The superuser of the PostgresContainer-started server (plain POSTGRES_PASSWORD).
PLAIN_USER, PLAIN_PASSWORD, PLAIN_DB = "alice", "alice-pw-1", "shop"
# The superuser of the server configured by files (POSTGRES_PASSWORD_FILE, init scripts).
FILE_USER, FILE_PASSWORD, FILE_DB = "owner", "from-a-file-2", "appdb"


@dataclass(frozen=True)
class Endpoint:
    """Where a started container's Postgres answers on the host."""

    host: str
    port: int

    def connect(self, user: str, password: str, dbname: str) -> psycopg2.extensions.connection:
        conn = psycopg2.connect(
            host=self.host,
            port=self.port,
            user=user,
            password=password,
            dbname=dbname,
            connect_timeout=5,
        )
        conn.autocommit = True
        return conn


def postgres_image() -> str:
    return os.environ.get("POSTGRES_IMAGE") or DEFAULT_IMAGE


def endpoint_of(container: DockerContainer) -> Endpoint:
    return Endpoint(container.get_container_host_ip(), int(container.get_exposed_port(5432)))


def wait_until_accepting(endpoint: Endpoint, user: str, password: str, dbname: str) -> None:
    """Poll over TCP until a login succeeds.

    A TCP login is the right readiness signal for both images: their init phase runs a
    server listening on the socket only, so TCP answers only once init scripts are done.
    """

    def accepting() -> bool:
        endpoint.connect(user, password, dbname).close()
        return True

    wait_for(
        accepting,
        f"{user} to log in over TCP",
        STARTUP_TIMEOUT_S,
        every=0.25,
        ignoring=(psycopg2.OperationalError,),
    )


def scalar(conn: psycopg2.extensions.connection, query: str) -> object:
    with conn.cursor() as cur:
        cur.execute(query)
        row = cur.fetchone()
    assert row is not None, query
    return row[0]


def wait_for_exit(container: DockerContainer) -> int:
    """The container's exit code, failing with its logs if it is still running at the deadline."""
    wrapped = container.get_wrapped_container()
    deadline = time.monotonic() + EXIT_TIMEOUT_S
    while True:
        wrapped.reload()
        if wrapped.status in {"exited", "dead"}:
            return int(wrapped.attrs["State"]["ExitCode"])
        if time.monotonic() > deadline:
            pytest.fail(
                f"container still {wrapped.status} after {EXIT_TIMEOUT_S} s; logs:\n"
                + logs_of(container)
            )
        time.sleep(0.25)


def logs_of(container: DockerContainer) -> str:
    stdout, stderr = container.get_logs()
    return stdout.decode(errors="replace") + stderr.decode(errors="replace")


# ---------------------------------------------------------------------------------------------
# A server configured by environment variables and "-c" arguments, started the way the test
# harness starts its servers (testcontainers' PostgresContainer).


@pytest.fixture(scope="module")
def plain_server() -> Iterator[Endpoint]:
    # A command that starts with "-c" (no "postgres" in front): the entrypoint prepends it.
    container = with_tls(
        PostgresContainer(
            postgres_image(), username=PLAIN_USER, password=PLAIN_PASSWORD, dbname=PLAIN_DB
        ),
        "-c wal_level=logical -c max_replication_slots=7",
    )
    with container:
        yield endpoint_of(container)


def test_custom_user_password_and_database_log_in_over_tcp(plain_server: Endpoint) -> None:
    with closing(plain_server.connect(PLAIN_USER, PLAIN_PASSWORD, PLAIN_DB)) as conn:
        assert scalar(conn, "SELECT current_user") == PLAIN_USER
        assert scalar(conn, "SELECT current_database()") == PLAIN_DB
        assert scalar(conn, "SELECT rolsuper FROM pg_roles WHERE rolname = current_user") is True
        encoding = scalar(
            conn,
            "SELECT pg_encoding_to_char(encoding) FROM pg_database"
            " WHERE datname = current_database()",
        )
        assert encoding == "UTF8"


def test_wrong_password_is_refused_over_tcp(plain_server: Endpoint) -> None:
    with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
        plain_server.connect(PLAIN_USER, "not-the-password", PLAIN_DB)


def test_dash_c_arguments_reach_the_server(plain_server: Endpoint) -> None:
    with closing(plain_server.connect(PLAIN_USER, PLAIN_PASSWORD, PLAIN_DB)) as conn:
        assert scalar(conn, "SHOW wal_level") == "logical"
        assert scalar(conn, "SHOW max_replication_slots") == "7"
        # Other containers and the host reach it: it listens on every interface.
        assert scalar(conn, "SHOW listen_addresses") == "*"


def test_logical_replication_connection_over_tcp(plain_server: Endpoint) -> None:
    """The replicator's connection kind: replication=database, authenticated by password."""
    conn = psycopg2.connect(
        host=plain_server.host,
        port=plain_server.port,
        user=PLAIN_USER,
        password=PLAIN_PASSWORD,
        dbname=PLAIN_DB,
        connection_factory=psycopg2.extras.LogicalReplicationConnection,
        connect_timeout=5,
    )
    with closing(conn), conn.cursor() as cur:
        cur.execute("IDENTIFY_SYSTEM")
        row = cur.fetchone()
    assert row is not None
    system_id, timeline, _xlogpos, dbname = row
    assert str(system_id).isdigit()
    assert int(timeline) >= 1
    assert dbname == PLAIN_DB


def test_server_major_is_the_one_asked_for(plain_server: Endpoint) -> None:
    """POSTGRES_MAJOR (set by the test matrix) names the major POSTGRES_IMAGE must run."""
    expected = os.environ.get("POSTGRES_MAJOR")
    with closing(plain_server.connect(PLAIN_USER, PLAIN_PASSWORD, PLAIN_DB)) as conn:
        version_num = int(str(scalar(conn, "SHOW server_version_num")))
    assert 150000 <= version_num < 190000, version_num
    if expected:
        assert version_num // 10000 == int(expected)


def test_pgoutput_slots_and_postgres_fdw_work(plain_server: Endpoint) -> None:
    """What zetl needs from the server packages: pgoutput (the replicator's slot) and
    postgres_fdw (dbt reads the replica database through it)."""
    with closing(plain_server.connect(PLAIN_USER, PLAIN_PASSWORD, PLAIN_DB)) as conn:
        with conn.cursor() as cur:
            cur.execute("CREATE EXTENSION IF NOT EXISTS postgres_fdw")
            cur.execute("CREATE TABLE IF NOT EXISTS contract_pub (id integer PRIMARY KEY)")
            cur.execute("CREATE PUBLICATION contract_pub FOR TABLE contract_pub")
        try:
            scalar(conn, "SELECT pg_create_logical_replication_slot('contract_slot', 'pgoutput')")
            plugin = scalar(
                conn, "SELECT plugin FROM pg_replication_slots WHERE slot_name = 'contract_slot'"
            )
            assert plugin == "pgoutput"
            changes = scalar(
                conn,
                "SELECT count(*) FROM pg_logical_slot_peek_binary_changes('contract_slot', NULL,"
                " NULL, 'proto_version', '1', 'publication_names', 'contract_pub')",
            )
            assert isinstance(changes, int)
        finally:
            with conn.cursor() as cur:
                cur.execute(
                    "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots"
                    " WHERE slot_name = 'contract_slot'"
                )
                cur.execute("DROP PUBLICATION IF EXISTS contract_pub")
        assert (
            scalar(
                conn, "SELECT count(*) FROM pg_foreign_data_wrapper WHERE fdwname = 'postgres_fdw'"
            )
            == 1
        )


def test_client_programs_are_in_the_image() -> None:
    """psql runs the init scripts; pg_isready is the compose health check."""
    container = DockerContainer(postgres_image()).with_command(
        "bash -c 'psql --version && pg_isready --version && pg_dump --version'"
    )
    with container:
        assert wait_for_exit(container) == 0, logs_of(container)
        assert "psql (PostgreSQL)" in logs_of(container)


# ---------------------------------------------------------------------------------------------
# A server configured by files: the password from POSTGRES_PASSWORD_FILE, objects from
# scripts in /docker-entrypoint-initdb.d (both bind-mounted from the host).

EXEC_SH = """#!/bin/sh
set -e
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" <<'EOSQL'
CREATE ROLE init_sh_role LOGIN;
EOSQL
"""

SOURCED_SH = """# not executable: the entrypoint sources it, so it sees the entrypoint's environment
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \\
    -c "CREATE TABLE init_sourced_marker AS SELECT '$POSTGRES_DB'::text AS db"
"""

PLAIN_SQL = """
CREATE TABLE init_sql_marker (id integer PRIMARY KEY, note text NOT NULL);
INSERT INTO init_sql_marker VALUES (1, 'from 10_schema.sql');
"""

GZIPPED_SQL = "CREATE TABLE init_gz_marker (id integer PRIMARY KEY);\n"
XZ_SQL = "CREATE TABLE init_xz_marker (id integer PRIMARY KEY);\n"


def write_init_dir(directory: Path) -> Path:
    """Init scripts, readable by the container's postgres user (pytest's dirs are 0700)."""
    directory.mkdir()
    directory.chmod(0o755)
    (directory / "10_schema.sql").write_text(PLAIN_SQL)
    (directory / "20_role.sh").write_text(EXEC_SH)
    (directory / "30_sourced.sh").write_text(SOURCED_SH)
    (directory / "40_data.sql.gz").write_bytes(gzip.compress(GZIPPED_SQL.encode()))
    (directory / "50_data.sql.xz").write_bytes(lzma.compress(XZ_SQL.encode()))
    for script in directory.iterdir():
        script.chmod(0o755 if script.name == "20_role.sh" else 0o644)
    return directory


def file_configured_container(tmp: Path) -> DockerContainer:
    secrets = tmp / "secrets"
    secrets.mkdir()
    secrets.chmod(0o755)
    password_file = secrets / "pg_password"
    # A trailing newline, as editors and `echo` leave one: the image strips it.
    password_file.write_text(FILE_PASSWORD + "\n")
    password_file.chmod(0o644)
    init_dir = write_init_dir(tmp / "initdb")
    container = (
        DockerContainer(postgres_image())
        .with_env("POSTGRES_USER", FILE_USER)
        .with_env("POSTGRES_DB", FILE_DB)
        .with_env("POSTGRES_PASSWORD_FILE", "/run/secrets/pg_password")
        .with_volume_mapping(str(secrets), "/run/secrets", "ro")
        .with_volume_mapping(str(init_dir), "/docker-entrypoint-initdb.d", "ro")
        .with_exposed_ports(5432)
    )
    return with_tls(container, "postgres")


@pytest.fixture(scope="module")
def file_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Endpoint]:
    with file_configured_container(tmp_path_factory.mktemp("file_server")) as container:
        endpoint = endpoint_of(container)
        wait_until_accepting(endpoint, FILE_USER, FILE_PASSWORD, FILE_DB)
        yield endpoint


def test_password_file_sets_the_superuser_password(file_server: Endpoint) -> None:
    with closing(file_server.connect(FILE_USER, FILE_PASSWORD, FILE_DB)) as conn:
        assert scalar(conn, "SELECT current_user") == FILE_USER
    with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
        file_server.connect(FILE_USER, FILE_PASSWORD + "\n", FILE_DB)


def test_init_sql_scripts_ran_in_the_configured_database(file_server: Endpoint) -> None:
    with closing(file_server.connect(FILE_USER, FILE_PASSWORD, FILE_DB)) as conn:
        assert scalar(conn, "SELECT note FROM init_sql_marker WHERE id = 1") == "from 10_schema.sql"
        # Compressed scripts are decompressed into psql.
        assert scalar(conn, "SELECT count(*) FROM init_gz_marker") == 0
        assert scalar(conn, "SELECT count(*) FROM init_xz_marker") == 0


def test_init_shell_scripts_ran_executed_and_sourced(file_server: Endpoint) -> None:
    with closing(file_server.connect(FILE_USER, FILE_PASSWORD, FILE_DB)) as conn:
        assert scalar(conn, "SELECT count(*) FROM pg_roles WHERE rolname = 'init_sh_role'") == 1
        assert scalar(conn, "SELECT db FROM init_sourced_marker") == FILE_DB


def test_init_runs_once_and_data_survives_a_restart(tmp_path: Path) -> None:
    with file_configured_container(tmp_path) as container:
        endpoint = endpoint_of(container)
        wait_until_accepting(endpoint, FILE_USER, FILE_PASSWORD, FILE_DB)
        with closing(endpoint.connect(FILE_USER, FILE_PASSWORD, FILE_DB)) as conn:
            scalar(conn, "INSERT INTO init_sql_marker VALUES (2, 'after start') RETURNING id")

        container.get_wrapped_container().restart(timeout=20)
        # The host port may change on restart.
        container.get_wrapped_container().reload()
        endpoint = endpoint_of(container)
        wait_until_accepting(endpoint, FILE_USER, FILE_PASSWORD, FILE_DB)
        with closing(endpoint.connect(FILE_USER, FILE_PASSWORD, FILE_DB)) as conn:
            # Init scripts would fail on a second run (CREATE TABLE, CREATE ROLE).
            assert scalar(conn, "SELECT count(*) FROM init_sql_marker") == 2
        assert "Skipping initialization" in logs_of(container)


# ---------------------------------------------------------------------------------------------
# Misconfiguration: the container exits at once and says why.


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        pytest.param({}, "superuser password is not specified", id="no-password"),
        pytest.param(
            {"POSTGRES_PASSWORD": "a", "POSTGRES_PASSWORD_FILE": "/etc/hostname"},
            "are exclusive",
            id="password-and-password-file",
        ),
    ],
)
def test_misconfiguration_exits_with_a_clear_message(env: dict[str, str], expected: str) -> None:
    container = DockerContainer(postgres_image())
    for key, value in env.items():
        container = container.with_env(key, value)
    with container:
        assert wait_for_exit(container) != 0
        assert expected in logs_of(container)
