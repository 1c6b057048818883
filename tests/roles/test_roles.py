"""Each role can do its job and nothing more.

The servers are set up by the same init scripts compose mounts (compose/source,
compose/warehouse), then migrated by the owner, loaded by the app writer and replicated by the
replication role into a replica the replicator role creates; no step runs as a superuser.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg2
import psycopg2.errors
import pytest

from tests.harness import SOURCE_SETTINGS, PostgresServer, running_postgres
from tests.support import running, wait_for
from zetl.schema.migrate import upgrade
from zetl_loader.pipeline import run_load
from zetl_replicator.config import ReplicatorConfig
from zetl_transform.link import refresh

pytestmark = [pytest.mark.docker, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
PASSWORDS = {
    "zetl_owner": "owner-Pw-1",
    "zetl_app": "app-Pw-2",
    "zetl_replication": "replication-Pw-3",
    "zetl_analyst": "analyst-Pw-4",
    "zetl_replicator": "replicator-Pw-5",
    "zetl_transform": "transform-Pw-6",
    "zetl_dq": "dq-Pw-7",
    "zetl_dashboard": "dashboard-Pw-8",
    "zetl_orchestration": "orchestration-Pw-9",
    "zetl_redshift": "redshift-Pw-10",
}
REPLICA = "raw_transactions"
# Where the init scripts are copied in the containers (the postgres user's home in both images).
INIT_DIR = "/var/lib/postgresql"
LINK_SQL = ROOT / "services/transform/src/zetl_transform/sql/setup_replica_link.sql"


@dataclass(frozen=True)
class Servers:
    source: PostgresServer
    warehouse: PostgresServer
    init_output: str

    def url(self, role: str) -> str:
        server, database = (
            (self.source, "storefront")
            if role in ("zetl_owner", "zetl_app", "zetl_replication", "zetl_analyst")
            else (self.warehouse, "dev")
        )
        return f"postgresql://{role}:{PASSWORDS[role]}@{server.host}:{server.port}/{database}"

    def as_role(self, role: str, database: str | None = None) -> psycopg2.extensions.connection:
        url = self.url(role)
        if database is not None:
            url = url.rsplit("/", 1)[0] + f"/{database}"
        conn = psycopg2.connect(url)
        conn.autocommit = True
        return conn


def run_init(server: PostgresServer, which: str, database: str) -> str:
    """Run compose/<which>/10-zetl-roles.sh inside the server's container, as the Postgres
    entrypoint does (socket, superuser), with the passwords in *_FILE files."""
    container = server.container.get_wrapped_container()
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        tar.add(ROOT / "compose" / which, arcname="zetl-init")
        tar.add(ROOT / "compose" / "secrets.bash", arcname="secrets.bash")
        tar.add(LINK_SQL, arcname="zetl-init-link/setup_replica_link.sql")
        for role, password in PASSWORDS.items():
            data = password.encode()
            info = tarfile.TarInfo(f"zetl-secrets/{role}")
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    container.put_archive(INIT_DIR, archive.getvalue())
    env = {
        "POSTGRES_USER": server.user,
        "POSTGRES_DB": database,
        "ZETL_REPLICA_DATABASE": REPLICA,
        "ZETL_REPLICA_LINK_SQL": f"{INIT_DIR}/zetl-init-link/setup_replica_link.sql",
    }
    for role in PASSWORDS:
        env[f"ZETL_{role.removeprefix('zetl_').upper()}_PASSWORD_FILE"] = (
            f"{INIT_DIR}/zetl-secrets/{role}"
        )
    code, output = container.exec_run(
        ["bash", f"{INIT_DIR}/zetl-init/10-zetl-roles.sh"], user="postgres", environment=env
    )
    text = str(output.decode(errors="replace"))
    assert code == 0, text
    return text


@pytest.fixture(scope="module")
def servers() -> Iterator[Servers]:
    """Fresh servers of their own (roles are server-wide), set up, loaded and replicated."""
    with (
        running_postgres(SOURCE_SETTINGS, restartable=True) as source,
        running_postgres({}, restartable=True) as warehouse,
    ):
        source.execute("CREATE DATABASE storefront")
        warehouse.execute("CREATE DATABASE dev")
        output = run_init(source, "source", "storefront")
        output += run_init(warehouse, "warehouse", "dev")
        servers = Servers(source, warehouse, output)
        upgrade(servers.url("zetl_owner"))
        run_load(servers.url("zetl_app"), ROOT / "data" / "raw")
        config = ReplicatorConfig(
            source_url=servers.url("zetl_replication"),
            warehouse_url=servers.url("zetl_replicator"),
            replica_database=REPLICA,
            batch_max_seconds=0.2,
            discovery_interval_seconds=0.5,
        )
        with running(config, timeout=120):
            wait_for(lambda: all_synced(warehouse), "every table Synced", timeout=120)
            yield servers


def all_synced(warehouse: PostgresServer) -> bool:
    try:
        conn = warehouse.connect(REPLICA)
    except psycopg2.OperationalError:
        return False
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT to_regclass('zetl.table_state')")
            if cur.fetchone() == (None,):
                return False
            cur.execute(
                "SELECT count(*), count(*) FILTER (WHERE state = 'Synced') FROM zetl.table_state"
            )
            total, synced = cur.fetchone()  # type: ignore[misc]
            return bool(total >= 8 and total == synced)
    finally:
        conn.close()


def refused(conn: psycopg2.extensions.connection, statement: str) -> bool:
    """True when the server refuses ``statement`` for lack of privilege (42501)."""
    try:
        with conn.cursor() as cur:
            cur.execute(statement)
    except psycopg2.errors.InsufficientPrivilege:
        return True
    return False


def scalar(conn: psycopg2.extensions.connection, statement: str) -> Any:
    with conn.cursor() as cur:
        cur.execute(statement)
        row = cur.fetchone()
        return None if row is None else row[0]


def test_no_password_reaches_the_output_or_the_server_log(servers: Servers) -> None:
    logs = "".join(
        s.container.get_wrapped_container().logs().decode(errors="replace")
        for s in (servers.source, servers.warehouse)
        if s.container is not None
    )
    for password in PASSWORDS.values():
        assert password not in servers.init_output
        assert password not in logs


def test_no_service_role_is_a_superuser(servers: Servers) -> None:
    conn = servers.source.connect("storefront")
    try:
        rows = scalar(
            conn,
            "SELECT string_agg(rolname, ',') FROM pg_roles WHERE rolname LIKE 'zetl\\_%'"
            " AND (rolsuper OR rolcreaterole OR rolbypassrls)",
        )
        assert rows is None
        assert scalar(
            conn, "SELECT rolreplication FROM pg_roles WHERE rolname = 'zetl_replication'"
        )
    finally:
        conn.close()
    warehouse = servers.warehouse.connect("dev")
    try:
        # Not even CREATEDB: the replica database was created for the replicator, owned by it.
        found = scalar(
            warehouse,
            "SELECT string_agg(rolname, ',') FROM pg_roles WHERE rolname LIKE 'zetl\\_%'"
            " AND (rolsuper OR rolcreaterole OR rolcreatedb OR rolreplication)",
        )
        assert found is None
    finally:
        warehouse.close()


def test_the_writer_writes_rows_but_cannot_run_ddl(servers: Servers) -> None:
    conn = servers.as_role("zetl_app")
    try:
        assert refused(conn, "CREATE TABLE public.sneaky (id int PRIMARY KEY)")
        assert refused(conn, "ALTER TABLE customer ADD COLUMN sneaky int")
        assert refused(conn, "DROP TABLE store_transaction_line")
        assert refused(conn, "TRUNCATE publisher CASCADE")
        assert refused(conn, "CREATE SCHEMA sneaky")
        assert refused(conn, "ALTER PUBLICATION zetl_publication DROP TABLE customer")
        with conn.cursor() as cur:  # and it does its job: DML
            cur.execute(
                "UPDATE publisher SET name = name WHERE id = (SELECT min(id) FROM publisher)"
            )
            assert cur.rowcount == 1
    finally:
        conn.close()


def test_the_replication_role_reads_the_source_and_cannot_write_it(servers: Servers) -> None:
    conn = servers.as_role("zetl_replication")
    try:
        assert int(scalar(conn, "SELECT count(*) FROM customer")) > 0
        assert refused(conn, "UPDATE customer SET country_code = 'ZZ'")
        assert refused(conn, "DELETE FROM store_transaction_line")
        assert refused(
            conn,
            "INSERT INTO publisher (publisher_code, name, country_code) VALUES ('X', 'X', 'US')",
        )
        assert refused(conn, "CREATE TABLE public.sneaky (id int PRIMARY KEY)")
        assert refused(conn, "ALTER TABLE customer REPLICA IDENTITY FULL")
        # Membership of the publication through the owner's helpers: every table is in it.
        published = scalar(
            conn, "SELECT count(*) FROM pg_publication_tables WHERE pubname = 'zetl_publication'"
        )
        assert int(published) >= 8
    finally:
        conn.close()


def test_the_analyst_only_reads(servers: Servers) -> None:
    conn = servers.as_role("zetl_analyst")
    try:
        assert int(scalar(conn, "SELECT count(*) FROM store_transaction")) > 0
        assert refused(conn, "UPDATE customer SET country_code = 'ZZ'")
        assert refused(
            conn, "SELECT zetl_publication_admin.drop_table('zetl_publication', 'customer')"
        )
    finally:
        conn.close()


def test_nobody_but_the_replicator_writes_the_replica(servers: Servers) -> None:
    for role in ("zetl_transform", "zetl_dq", "zetl_dashboard"):
        conn = servers.as_role(role, REPLICA)
        try:
            assert int(scalar(conn, "SELECT count(*) FROM public.customer")) > 0
            assert refused(conn, "UPDATE public.customer SET country_code = 'ZZ'"), role
            assert refused(conn, "DELETE FROM public.store_transaction_line"), role
            assert refused(conn, "CREATE TABLE public.sneaky (id int)"), role
            assert refused(conn, "CREATE SCHEMA sneaky"), role
            assert refused(conn, "UPDATE zetl.table_state SET state = 'Failed'"), role
        finally:
            conn.close()
    owner = servers.as_role("zetl_replicator", REPLICA)
    try:
        assert (
            scalar(
                owner,
                "SELECT pg_get_userbyid(datdba) FROM pg_database"
                " WHERE datname = current_database()",
            )
            == "zetl_replicator"
        )
    finally:
        owner.close()


@pytest.fixture(scope="module")
def built(servers: Servers) -> Servers:
    """What transform and dq do, as themselves: refresh the link, build a mart, store a result."""
    # The per-run refresh of the link, as transform runs it: no superuser after the init script.
    refresh(servers.url("zetl_transform"), REPLICA, auto_setup=False)
    transform = servers.as_role("zetl_transform")
    try:
        with transform.cursor() as cur:
            cur.execute(
                "CREATE TABLE analytics.customer_count AS"
                " SELECT count(*) AS customers FROM raw_transactions_public.customer"
            )
    finally:
        transform.close()
    dq = servers.as_role("zetl_dq")
    try:
        with dq.cursor() as cur:
            cur.execute("CREATE SCHEMA zetl_dq")
            cur.execute("CREATE TABLE zetl_dq.result_probe AS SELECT true AS success")
    finally:
        dq.close()
    return servers


def test_transform_reads_the_replica_through_the_link_and_writes_only_its_schemas(
    built: Servers,
) -> None:
    transform = built.as_role("zetl_transform")
    try:
        assert int(scalar(transform, "SELECT customers FROM analytics.customer_count")) > 0
        # The link logs in as the role itself: the replica stays read-only through it too.
        assert refused(transform, "DELETE FROM raw_transactions_public.customer")
        assert refused(transform, "DELETE FROM zetl_dq.result_probe")
    finally:
        transform.close()


def test_dq_reads_everything_and_writes_only_its_results(built: Servers) -> None:
    dq = built.as_role("zetl_dq")
    try:
        assert int(scalar(dq, "SELECT customers FROM analytics.customer_count")) > 0
        assert int(scalar(dq, "SELECT count(*) FROM raw_transactions_public.customer")) > 0
        assert refused(dq, "DELETE FROM analytics.customer_count")
        assert refused(dq, "CREATE TABLE analytics.sneaky (id int)")
        assert scalar(dq, "SELECT success FROM zetl_dq.result_probe") is True
    finally:
        dq.close()


def test_the_dashboard_reads_marts_and_cannot_write_anything(built: Servers) -> None:
    dashboard = built.as_role("zetl_dashboard")
    try:
        assert int(scalar(dashboard, "SELECT customers FROM analytics.customer_count")) > 0
        assert scalar(dashboard, "SELECT success FROM zetl_dq.result_probe") is True
        assert refused(dashboard, "DELETE FROM analytics.customer_count")
        assert refused(dashboard, "UPDATE zetl_dq.result_probe SET success = false")
        assert refused(dashboard, "CREATE SCHEMA sneaky")
        assert refused(dashboard, "CREATE TABLE public.sneaky (id int)")
        # No user mapping: the raw replica is not the dashboard's to read, even through the link.
        with pytest.raises(psycopg2.Error):
            scalar(dashboard, "SELECT count(*) FROM raw_transactions_public.customer")
    finally:
        dashboard.close()


def test_the_front_installs_its_schema_and_reads_no_one_s_data(built: Servers) -> None:
    from zetl_redshift import catalog, history

    front = built.as_role("zetl_redshift")
    try:
        front.autocommit = False
        history.install(front)
        catalog.install(front)
        front.commit()
        front.autocommit = True
        owner = "SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = 'zetl_redshift'"
        assert scalar(front, owner) == "zetl_redshift"
        assert refused(front, "SELECT count(*) FROM analytics.customer_count")
        assert refused(front, "SELECT count(*) FROM zetl_dq.result_probe")
        assert refused(front, "CREATE TABLE analytics.sneaky (id int)")
    finally:
        front.close()
    replica = built.as_role("zetl_redshift", REPLICA)
    try:
        assert refused(replica, "CREATE SCHEMA zetl_redshift")
        assert refused(replica, "UPDATE public.customer SET country_code = 'ZZ'")
    finally:
        replica.close()
    # Every role reads the front's views, as everyone reads Redshift's system views.
    dashboard = built.as_role("zetl_dashboard")
    try:
        assert scalar(dashboard, "SELECT count(*) FROM zetl_redshift.sys_query_history") == 0
    finally:
        dashboard.close()
