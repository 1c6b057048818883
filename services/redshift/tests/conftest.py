"""The Redshift front, running in-process before the harness's warehouse server.

The front runs in a thread with its own event loop, on a free port, with a certificate made in a
temporary directory. It logs in to its own database as its own role (``zetl_redshift``, CREATE on
that database only), as in compose; clients log in through it as roles the tests create.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import psycopg2
import psycopg2.extensions
import pytest
from psycopg2 import sql

from tests.harness import PostgresServer, require_docker, running_postgres
from zetl_redshift.config import FrontConfig, warehouse_from_url
from zetl_redshift.server import Front
from zetl_redshift.tls import CA_FILE

FRONT_ROLE = "zetl_redshift"
FRONT_PASSWORD = "front-Pw-1"


class FrontThread:
    """A Front serving from a thread of the test process, until :meth:`stop`."""

    def __init__(self, config: FrontConfig) -> None:
        self.config = config
        self.port = 0
        self._started = threading.Event()
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="redshift-front", daemon=True)

    def start(self) -> FrontThread:
        self._thread.start()
        if not self._started.wait(60):
            raise AssertionError("the front did not start within 60 s")
        if self._error is not None:
            raise self._error
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        front = Front(self.config)
        try:
            await front.start()
        except BaseException as exc:
            self._error = exc
            self._started.set()
            return
        self.port = front.port
        self._started.set()
        try:
            await self._stop.wait()
        finally:
            await front.close()


@dataclass(frozen=True)
class RunningFront:
    host: str
    port: int
    database: str  # the front's own database, where the tests' tables live
    ca_file: Path
    warehouse: PostgresServer

    def url(self, user: str, password: str, *, database: str | None = None, **params: str) -> str:
        """A libpq URL through the front (TLS checked against the front's CA by default)."""
        options = {"sslmode": "verify-ca", "sslrootcert": str(self.ca_file), **params}
        query = "&".join(f"{k}={v}" for k, v in options.items())
        return (
            f"postgresql://{user}:{password}@{self.host}:{self.port}/"
            f"{database or self.database}?{query}"
        )

    def connect(self, user: str, password: str, **params: str) -> psycopg2.extensions.connection:
        return psycopg2.connect(self.url(user, password, **params))

    def superuser(self) -> psycopg2.extensions.connection:
        """Straight to the warehouse as its superuser: set-up and checks, never the front."""
        return self.warehouse.connect(self.database)

    def create_role(self, *, privileges: str = "") -> tuple[str, str]:
        """A new login role allowed to connect (and whatever ``privileges`` grants): its name
        and password."""
        name, password = f"analyst_{uuid.uuid4().hex[:8]}", f"pw-{uuid.uuid4().hex[:12]}"
        conn = self.superuser()
        try:
            with conn.cursor() as cur:
                cur.execute(
                    sql.SQL("CREATE ROLE {} LOGIN PASSWORD %s").format(sql.Identifier(name)),
                    (password,),
                )
                if privileges:
                    cur.execute(sql.SQL(privileges).format(role=sql.Identifier(name)))
        finally:
            conn.close()
        return name, password


def create_front_role(warehouse: PostgresServer, database: str) -> str:
    """The front's own role, as compose/warehouse/roles.psql makes it: CREATE on its database."""
    conn = warehouse.connect(database)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (FRONT_ROLE,))
            if cur.fetchone() is None:
                cur.execute(
                    sql.SQL("CREATE ROLE {} LOGIN PASSWORD %s").format(sql.Identifier(FRONT_ROLE)),
                    (FRONT_PASSWORD,),
                )
            cur.execute(
                sql.SQL("GRANT CONNECT, CREATE ON DATABASE {} TO {}").format(
                    sql.Identifier(database), sql.Identifier(FRONT_ROLE)
                )
            )
    finally:
        conn.close()
    return (
        f"postgresql://{FRONT_ROLE}:{FRONT_PASSWORD}@{warehouse.host}:{warehouse.port}/{database}"
    )


@pytest.fixture(scope="session")
def front_warehouse() -> Iterator[PostgresServer]:
    """A warehouse of the front's tests' own: 100 clients at once through the front need more
    than Postgres' default max_connections (100), which the shared warehouse server keeps."""
    require_docker()
    with running_postgres({"max_connections": "300"}) as server:
        yield server


@pytest.fixture(scope="session")
def front(
    front_warehouse: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningFront]:
    database = front_warehouse.create_database("front")
    url = create_front_role(front_warehouse, database)
    tls_dir = tmp_path_factory.mktemp("front-tls")
    try:
        with running_front(url, tls_dir) as port:
            yield RunningFront("127.0.0.1", port, database, tls_dir / CA_FILE, front_warehouse)
    finally:
        front_warehouse.drop_database(database)


@contextmanager
def running_front(url: str, tls_dir: Path, **settings: Any) -> Iterator[int]:
    """A front before the warehouse ``url`` names, for as long as the block runs: its port."""
    config = FrontConfig(
        warehouse=warehouse_from_url(url),
        host="127.0.0.1",
        port=0,
        tls_dir=tls_dir,
        history_flush_seconds=0.2,
    )
    thread = FrontThread(replace(config, **settings)).start()
    try:
        yield thread.port
    finally:
        thread.stop()


def scalar(conn: Any, statement: str, params: Any = None) -> Any:
    with conn.cursor() as cur:
        cur.execute(statement, params)
        row = cur.fetchone()
        return None if row is None else row[0]
