"""zero-ETL statements run as the client's role, through the replicator's own functions."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg2
import pytest

from services.redshift.tests.conftest import RunningFront
from tests.harness import PostgresServer
from zetl.db import with_database
from zetl.integration import TableState
from zetl_redshift.integration import run
from zetl_redshift.translate import Refused, ZeroEtlCommand, translate
from zetl_replicator.destination.replica import ensure_replica_database
from zetl_replicator.state.options import read_options
from zetl_replicator.state.store import PostgresStateStore

pytestmark = pytest.mark.docker


@pytest.fixture
def replica(warehouse_server: PostgresServer) -> Iterator[str]:
    """A replica database as the replicator leaves it: state store, two synced tables."""
    name = f"zeroetl_{uuid.uuid4().hex[:8]}"
    ensure_replica_database(warehouse_server.url(), name)
    conn = psycopg2.connect(warehouse_server.url(name))
    with conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE public.customer (id int); CREATE TABLE public.game (id int)")
    store = PostgresStateStore(conn)
    for table in ("customer", "game"):
        store.set_table_state("public", table, TableState.SYNCED)
    conn.close()
    yield name
    warehouse_server.drop_database(name)


def states(server: PostgresServer, database: str) -> dict[str, bool]:
    conn = psycopg2.connect(server.url(database))
    try:
        return {n: s.resync_requested for n, s in PostgresStateStore(conn).table_states().items()}
    finally:
        conn.close()


def test_refresh_marks_the_named_tables(warehouse_server: PostgresServer, replica: str) -> None:
    statement = f"ALTER DATABASE {replica} INTEGRATION REFRESH TABLES public.customer"
    assert translate(statement) == ZeroEtlCommand(statement)
    assert run(statement, warehouse_server.url()) == "ALTER DATABASE"
    assert states(warehouse_server, replica) == {"public.customer": True, "public.game": False}
    run(f"alter database {replica} integration refresh all tables in schema public;",
        warehouse_server.url())  # fmt: skip
    assert states(warehouse_server, replica) == {"public.customer": True, "public.game": True}


def test_set_and_create_apply_options(warehouse_server: PostgresServer, replica: str) -> None:
    assert run(f"ALTER DATABASE {replica} INTEGRATION SET QUERY_ALL_STATES = TRUE",
               warehouse_server.url()) == "ALTER DATABASE"  # fmt: skip
    assert run(f"CREATE DATABASE {replica} FROM INTEGRATION '{uuid.uuid4()}' DATABASE source"
               " SET REFRESH_INTERVAL 60", warehouse_server.url()) == "CREATE DATABASE"  # fmt: skip
    conn = psycopg2.connect(warehouse_server.url(replica))
    try:
        options = read_options(conn)
    finally:
        conn.close()
    assert options.query_all_states is True
    assert options.refresh_interval == 60


def test_errors_are_postgres_and_redshift_ones(
    warehouse_server: PostgresServer, replica: str
) -> None:
    with pytest.raises(Refused, match=r"not tables of the integration: public\.nope") as refused:
        run(
            f"ALTER DATABASE {replica} INTEGRATION REFRESH TABLE public.nope",
            warehouse_server.url(),
        )
    assert refused.value.sqlstate == "42601"
    with pytest.raises(Refused, match='database "absent_db" does not exist'):
        run("ALTER DATABASE absent_db INTEGRATION REFRESH ALL TABLES", warehouse_server.url())
    role = f"reader_{uuid.uuid4().hex[:6]}"
    warehouse_server.execute(f"CREATE ROLE {role} LOGIN PASSWORD 'pw'")
    try:
        dsn = with_database(warehouse_server.url(), replica)
        dsn = dsn.replace(f"{warehouse_server.user}:{warehouse_server.password}@", f"{role}:pw@")
        with pytest.raises(Refused, match="permission denied") as denied:
            run(f"ALTER DATABASE {replica} INTEGRATION REFRESH ALL TABLES", dsn)
        assert denied.value.sqlstate == "42501"
    finally:
        warehouse_server.execute(f"DROP ROLE {role}")


def test_through_the_front_as_the_clients_role(front: RunningFront) -> None:
    """A client's ALTER DATABASE ... INTEGRATION REFRESH is carried out by the front."""
    replica = f"zeroetl_{uuid.uuid4().hex[:8]}"
    server = front.warehouse
    ensure_replica_database(server.url(), replica)
    try:
        conn = psycopg2.connect(server.url(replica))
        with conn, conn.cursor() as cur:
            cur.execute("CREATE TABLE public.customer (id int)")
        PostgresStateStore(conn).set_table_state("public", "customer", TableState.SYNCED)
        conn.close()
        client = front.connect(server.user, server.password)
        client.autocommit = True
        with client.cursor() as cur:
            cur.execute(f"ALTER DATABASE {replica} INTEGRATION REFRESH TABLES public.customer")
            assert cur.statusmessage == "ALTER DATABASE"
        client.close()
        assert states(server, replica) == {"public.customer": True}
    finally:
        server.drop_database(replica)
