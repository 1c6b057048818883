"""The state store's contract, held by both implementations: Postgres (against a real
replica database) and memory (what unit tests of its users take)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import psycopg2.extensions
import pytest

from tests.harness import PostgresServer
from zetl.integration import TableState
from zetl_replicator.destination.replica import connect_replica, ensure_replica_database
from zetl_replicator.state.store import PostgresStateStore, StateStore
from zetl_replicator.testing import MemoryStateStore

WHEN = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


@pytest.fixture
def postgres_store(
    warehouse_url: str, warehouse_server: PostgresServer
) -> Iterator[PostgresStateStore]:
    replica = f"replica_{uuid.uuid4().hex[:10]}"
    ensure_replica_database(warehouse_url, replica)
    conn = connect_replica(warehouse_url, replica)
    try:
        yield PostgresStateStore(conn)
    finally:
        conn.close()
        warehouse_server.drop_database(replica)


@pytest.fixture(params=["memory", pytest.param("postgres", marks=pytest.mark.docker)])
def store(request: pytest.FixtureRequest) -> StateStore:
    if request.param == "memory":
        return MemoryStateStore()
    postgres: PostgresStateStore = request.getfixturevalue("postgres_store")
    return postgres


def test_progress_is_kept_per_slot_and_keeps_the_last_commit_time(store: StateStore) -> None:
    assert store.progress("s") is None
    store.set_progress("s", 100, WHEN)
    store.set_progress("s", 200, None)  # an idle position: no transaction of ours
    progress = store.progress("s")
    assert progress is not None
    assert (progress.applied_lsn, progress.source_commit_time) == (200, WHEN)
    assert store.progress("other") is None
    store.forget_progress("s")
    assert store.progress("s") is None


def test_table_state_records_and_keeps_what_is_not_given(store: StateStore) -> None:
    store.set_table_state("public", "t", TableState.INITIALIZING)
    store.set_table_state("public", "t", TableState.SYNCED, sync_lsn=42, reset_rows=True)
    store.set_table_state("public", "t", TableState.RESYNC_REQUIRED, "a column type changed")
    status = store.table_states()["public.t"]
    assert status.state == TableState.RESYNC_REQUIRED
    assert status.reason == "a column type changed"
    assert status.sync_lsn == 42  # kept
    assert status.rows_applied == 0
    store.set_table_state("public", "t", TableState.SYNCED, sync_lsn=50, reset_rows=True)
    status = store.table_states()["public.t"]
    assert (status.sync_lsn, status.rows_applied, status.reason) == (50, 0, None)


def test_a_resync_request_is_cleared_by_synced(store: StateStore) -> None:
    assert not store.request_resync("public", "t")  # not known
    store.set_table_state("public", "t", TableState.FAILED, "refused", apply_failed=True)
    assert store.request_resync("public", "t")
    status = store.table_states()["public.t"]
    assert status.resync_requested and not status.apply_failed
    assert status.state == TableState.RESYNC_REQUIRED
    store.set_table_state("public", "t", TableState.SYNCED, sync_lsn=7)
    assert not store.table_states()["public.t"].resync_requested


def test_forget_table(store: StateStore) -> None:
    store.set_table_state("public", "t", TableState.SYNCED, sync_lsn=1)
    store.forget_table("public", "t")
    assert store.table_states() == {}


def test_a_resync_of_every_table_spares_the_failed_ones(store: StateStore) -> None:
    store.set_table_state("public", "a", TableState.SYNCED, sync_lsn=1)
    store.set_table_state("public", "b", TableState.FAILED, "no primary key")
    store.request_resync_of_all("HISTORY_MODE changed")
    states = store.table_states()
    assert (states["public.a"].state, states["public.a"].reason) == (
        TableState.RESYNC_REQUIRED,
        "HISTORY_MODE changed",
    )
    assert states["public.a"].resync_requested
    assert (states["public.b"].state, states["public.b"].reason) == (
        TableState.FAILED,
        "no primary key",
    )


def test_a_transaction_keeps_all_of_its_writes_or_none(store: StateStore) -> None:
    with store.transaction():
        store.set_table_state("public", "a", TableState.INITIALIZING)
        store.set_table_state("public", "b", TableState.FAILED, "no primary key")
        store.set_progress("s", 10, None)
    assert set(store.table_states()) == {"public.a", "public.b"}
    with pytest.raises(RuntimeError), store.transaction():
        store.set_table_state("public", "a", TableState.SYNCED, sync_lsn=20)
        store.set_progress("s", 20, None)
        store.forget_table("public", "b")
        raise RuntimeError("the copy failed")
    states = store.table_states()
    assert states["public.a"].state == TableState.INITIALIZING
    assert "public.b" in states
    progress = store.progress("s")
    assert progress is not None and progress.applied_lsn == 10


def readable(conn: psycopg2.extensions.connection) -> bool:
    """Whether everyone may read public.t (the grant zetl.apply_visibility keeps)."""
    with conn.cursor() as cur:
        cur.execute("SELECT relacl::text FROM pg_class WHERE oid = 'public.t'::regclass")
        row = cur.fetchone()
    conn.rollback()
    return row is not None and row[0] is not None and "=r/" in row[0]


@pytest.mark.docker
def test_postgres_writes_are_durable_and_feed_visibility(
    postgres_store: PostgresStateStore, warehouse_url: str
) -> None:
    """Committed at once outside a transaction (another session sees them), and a table's
    state decides who may read it (Synced tables only)."""
    conn = postgres_store.conn
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE public.t (id int PRIMARY KEY)")
    conn.commit()
    postgres_store.set_table_state("public", "t", TableState.SYNCED, sync_lsn=1)
    other = connect_replica(warehouse_url, conn.info.dbname)
    try:
        assert PostgresStateStore(other).table_states()["public.t"].state == TableState.SYNCED
        assert readable(other)
        postgres_store.set_table_state("public", "t", TableState.RESYNC_REQUIRED, "changed")
        assert not readable(other)
    finally:
        other.close()


@pytest.mark.docker
def test_postgres_writes_in_an_open_transaction_go_with_it(
    postgres_store: PostgresStateStore,
) -> None:
    """``in_open_transaction``: the owner of the transaction (the destination's batch)
    decides; a rollback takes the write back."""
    conn = postgres_store.conn
    with postgres_store.in_open_transaction():
        postgres_store.set_table_state("public", "t", TableState.SYNCED, sync_lsn=1)
    assert conn.info.transaction_status != 0  # still open: nothing committed
    conn.rollback()
    assert postgres_store.table_states() == {}
