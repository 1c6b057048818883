"""The Postgres destination against a real replica database: the batch contract (durable with
its LSN, undone with a rollback, table states inside it), and refusals naming their table
(the SQL it emits is tested as strings in test_statements)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg2
import pytest

from services.replicator.tests.support import T
from tests.harness import PostgresServer
from zetl.integration import TableState
from zetl_replicator.destination.interface import ApplyError, Destination
from zetl_replicator.destination.postgres import COPY_MIN_ROWS, PostgresDestination
from zetl_replicator.destination.replica import connect_replica, ensure_replica_database
from zetl_replicator.source.pgoutput import UNCHANGED_TOAST
from zetl_replicator.state.store import PostgresStateStore

SLOT = "zetl_test"


@pytest.fixture
def replica_conn(
    warehouse_url: str, warehouse_server: PostgresServer
) -> Iterator[psycopg2.extensions.connection]:
    name = f"replica_{uuid.uuid4().hex[:10]}"
    ensure_replica_database(warehouse_url, name)
    conn = connect_replica(warehouse_url, name)
    with conn.cursor() as cur:
        cur.execute(
            "CREATE TABLE public.t (id int PRIMARY KEY, v text, n numeric(12,2) CHECK (n >= 0))"
        )
    conn.commit()
    PostgresStateStore(conn).set_table_state("public", "t", TableState.SYNCED, sync_lsn=1)
    try:
        yield conn
    finally:
        conn.close()
        warehouse_server.drop_database(name)


def rows(conn: psycopg2.extensions.connection) -> list[tuple[object, ...]]:
    with conn.cursor() as cur:
        cur.execute("SELECT id, v, n::text FROM public.t ORDER BY id")
        found = cur.fetchall()
    conn.rollback()
    return found


def destination(conn: psycopg2.extensions.connection) -> Destination:
    """Typed as the interface the apply loop sees."""
    return PostgresDestination(conn, SLOT)


def test_a_batch_is_durable_with_its_lsn_and_counts_its_changes(
    replica_conn: psycopg2.extensions.connection,
) -> None:
    dest = destination(replica_conn)
    dest.insert(T, ("1", "a", "1.00"), 10)
    dest.insert(T, ("2", "b", "2.00"), 10)
    dest.update(T, None, ("1", "A", UNCHANGED_TOAST), 10)
    dest.delete(T, ("2", None, None), 10)
    assert dest.pending_bytes == 40
    counts = dest.commit(1000, None)
    assert counts == {("public", "t"): 4}
    assert rows(replica_conn) == [(1, "A", "1.00")]
    store = PostgresStateStore(replica_conn)
    progress = store.progress(SLOT)
    assert progress is not None and progress.applied_lsn == 1000
    assert store.table_states()["public.t"].rows_applied == 4
    assert dest.pending_bytes == 0


AWKWARD = ["O'Brien", "back\\slash", "'';DROP TABLE t;--", "Zoë 🎮 ü", "%s %(x)s %%", "", None]


def test_text_of_any_kind_arrives_as_it_was_in_every_statement_kind(
    replica_conn: psycopg2.extensions.connection,
) -> None:
    dest = destination(replica_conn)
    for i, value in enumerate(AWKWARD):  # few rows: INSERT ... VALUES, not COPY
        dest.insert(T, (str(i), value, "1.00"), 1)
    dest.commit(100, None)
    assert [r[1] for r in rows(replica_conn)] == AWKWARD
    for i, value in enumerate(AWKWARD):  # UPDATE ... FROM (VALUES ...), then an upsert
        dest.update(T, None, (str(i), value and value[::-1], UNCHANGED_TOAST), 1)
    dest.delete(T, ("0", None, None), 1)
    dest.insert(T, ("0", AWKWARD[0], "2.00"), 1)
    dest.commit(200, None)
    expected = [AWKWARD[0]] + [v and v[::-1] for v in AWKWARD[1:]]
    assert [r[1] for r in rows(replica_conn)] == expected


@pytest.mark.parametrize(
    "odd",
    [None, *AWKWARD, "tab\there", "new\nline", "carriage\rreturn", "\\N"],
    ids=repr,
)
def test_a_copy_brings_every_value_as_it_was(
    replica_conn: psycopg2.extensions.connection, odd: str | None
) -> None:
    """A COPY line is escaped only when one of its values needs it: one odd value among plain
    rows must still arrive as it was."""
    dest = destination(replica_conn)
    plain = [(str(i), f"v{i}", "1.00") for i in range(COPY_MIN_ROWS)]
    for row in plain:
        dest.insert(T, row, 1)
    dest.insert(T, (str(COPY_MIN_ROWS), odd, "1.00"), 1)
    dest.commit(100, None)
    expected = [(int(i), v, n) for i, v, n in plain] + [(COPY_MIN_ROWS, odd, "1.00")]
    assert rows(replica_conn) == expected


def test_net_changes_over_rows_the_replica_has(
    replica_conn: psycopg2.extensions.connection,
) -> None:
    dest = destination(replica_conn)
    for i in range(1, 4):
        dest.insert(T, (str(i), f"v{i}", "1.00"), 1)
    dest.commit(100, None)
    dest.delete(T, ("1", None, None), 1)
    dest.insert(T, ("1", "again", "5.00"), 1)  # delete then insert: an upsert
    dest.update(T, ("2", None, None), ("20", "moved", UNCHANGED_TOAST), 1)  # key change, TOAST
    dest.update(T, None, ("3", UNCHANGED_TOAST, "3.00"), 1)  # v left as the replica has it
    dest.commit(200, None)
    assert rows(replica_conn) == [(1, "again", "5.00"), (3, "v3", "3.00"), (20, "moved", "1.00")]


def test_rollback_undoes_the_batch_and_its_table_state(
    replica_conn: psycopg2.extensions.connection,
) -> None:
    dest = destination(replica_conn)
    dest.insert(T, ("1", "a", "1.00"), 1)
    dest.set_table_state(T, TableState.RESYNC_REQUIRED, "a column type changed")
    dest.rollback()
    assert rows(replica_conn) == []
    store = PostgresStateStore(replica_conn)
    assert store.table_states()["public.t"].state == TableState.SYNCED
    assert store.progress(SLOT) is None
    dest.set_table_state(T, TableState.RESYNC_REQUIRED, "a column type changed")
    dest.commit(300, None)
    status = store.table_states()["public.t"]
    assert (status.state, status.reason) == (TableState.RESYNC_REQUIRED, "a column type changed")


def test_a_savepoint_keeps_what_came_before(replica_conn: psycopg2.extensions.connection) -> None:
    dest = destination(replica_conn)
    dest.insert(T, ("1", "a", "1.00"), 1)
    dest.savepoint("sub")
    dest.insert(T, ("2", "b", "1.00"), 1)
    dest.rollback_to("sub")
    assert dest.commit(400, None) == {("public", "t"): 1}
    assert rows(replica_conn) == [(1, "a", "1.00")]


def test_a_refused_change_names_its_table_and_nothing_is_committed(
    replica_conn: psycopg2.extensions.connection,
) -> None:
    dest = destination(replica_conn)
    dest.insert(T, ("1", "a", "-1.00"), 1)  # the CHECK refuses it
    with pytest.raises(ApplyError) as info:
        dest.commit(500, None)
    assert info.value.tables == {"public.t"}
    dest.rollback()
    assert rows(replica_conn) == []
    assert PostgresStateStore(replica_conn).progress(SLOT) is None


def test_a_copy_refused_in_the_background_fails_the_batch_and_the_next_one_applies(
    replica_conn: psycopg2.extensions.connection,
) -> None:
    dest = PostgresDestination(replica_conn, SLOT)
    for i in range(1, COPY_MIN_ROWS + 1):  # enough rows for COPY; the last one is refused
        dest.insert(T, (str(i), "a", "-1.00" if i == COPY_MIN_ROWS else "1.00"), 1)
    dest.flush()  # the COPY starts: its refusal comes with the next use of the connection
    with pytest.raises(ApplyError) as info:
        dest.commit(500, None)
    assert info.value.tables == {"public.t"}
    dest.rollback()
    assert rows(replica_conn) == []
    for i in range(1, COPY_MIN_ROWS + 1):
        dest.insert(T, (str(i), "a", "1.00"), 1)
    dest.flush()
    dest.insert(T, (str(COPY_MIN_ROWS + 1), "after", "2.00"), 1)  # sent after the COPY
    dest.commit(600, None)
    assert len(rows(replica_conn)) == COPY_MIN_ROWS + 1
    progress = PostgresStateStore(replica_conn).progress(SLOT)
    assert progress is not None and progress.applied_lsn == 600
