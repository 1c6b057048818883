"""The source side: publication, replication slot, exported snapshots, slot health."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import psycopg2
import psycopg2.extensions
import psycopg2.extras
from psycopg2 import sql

from zetl.db import connect, connection_edge
from zetl.errors import ConfigError, first_line
from zetl_replicator.source.pgoutput import str_to_lsn
from zetl_replicator.source.tables import TableInfo
from zetl_replicator.source.types import TEXT_FORMAT_OPTIONS


@dataclass(frozen=True)
class SlotInfo:
    name: str
    active: bool
    wal_status: str | None  # reserved / extended / unreserved / lost
    confirmed_flush_lsn: int | None
    lag_bytes: int | None  # current WAL position minus confirmed flush


@dataclass(frozen=True)
class SnapshotPoint:
    """A consistent point of the source: a snapshot name and the LSN streaming starts from."""

    slot: str
    consistent_point: int
    snapshot: str


def connect_source(url: str, stall_seconds: float | None = None) -> psycopg2.extensions.connection:
    """A connection to the source database; ``stall_seconds``: see ``zetl.db.connect``."""
    conn = connect(url, raise_lost=True, stall_seconds=stall_seconds, options=TEXT_FORMAT_OPTIONS)
    conn.autocommit = True
    return conn


def connect_replication(url: str) -> psycopg2.extras.LogicalReplicationConnection:
    conn = connect(
        url,
        connection_factory=psycopg2.extras.LogicalReplicationConnection,
        options=TEXT_FORMAT_OPTIONS,
    )
    assert isinstance(conn, psycopg2.extras.LogicalReplicationConnection)
    return conn


def check_wal_level(conn: psycopg2.extensions.connection) -> None:
    with conn.cursor() as cur:
        cur.execute("SHOW wal_level")
        row = cur.fetchone()
    if row is None or row[0] != "logical":
        raise ConfigError(
            f"the source has wal_level={row[0] if row else '?'}; logical replication needs"
            " wal_level=logical (RDS: rds.logical_replication=1 in the parameter group)"
        )


def published_tables(conn: psycopg2.extensions.connection, publication: str) -> set[str]:
    with conn.cursor() as cur:
        cur.execute(
            "SELECT schemaname || '.' || tablename FROM pg_publication_tables WHERE pubname = %s",
            (publication,),
        )
        return {str(r[0]) for r in cur.fetchall()}


def ensure_publication(conn: psycopg2.extensions.connection, publication: str) -> None:
    """Create the publication (empty: tables are added one by one once found eligible)."""
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_publication WHERE pubname = %s", (publication,))
        if cur.fetchone() is None:
            cur.execute(sql.SQL("CREATE PUBLICATION {}").format(sql.Identifier(publication)))


def add_to_publication(
    conn: psycopg2.extensions.connection, publication: str, tables: Sequence[TableInfo]
) -> None:
    if not tables:
        return
    with conn.cursor() as cur:
        if _membership_helpers(cur):
            for t in tables:
                cur.execute(
                    f"SELECT {PUBLICATION_ADMIN}.add_table(%s, %s::regclass)",
                    (publication, sql.Identifier(t.schema, t.name).as_string(cur)),
                )
            return
        cur.execute(
            sql.SQL("ALTER PUBLICATION {} ADD TABLE {}").format(
                sql.Identifier(publication),
                sql.SQL(", ").join(sql.Identifier(t.schema, t.name) for t in tables),
            )
        )


# ALTER PUBLICATION ... ADD/DROP TABLE needs ownership of the publication and of the table: a
# replication role that owns neither (least privilege, RDS) changes the membership through
# the owner's SECURITY DEFINER functions in this schema (compose/source/roles.psql).
PUBLICATION_ADMIN = "zetl_publication_admin"


def _membership_helpers(cur: psycopg2.extensions.cursor) -> bool:
    """True when the owner's helpers exist and this role may call them instead of owning."""
    cur.execute(
        "SELECT has_function_privilege(f, 'EXECUTE')"
        f" FROM to_regprocedure('{PUBLICATION_ADMIN}.add_table(name, regclass)') AS f"
        " WHERE f IS NOT NULL AND NOT EXISTS (SELECT 1 FROM pg_roles r WHERE r.rolname ="
        " current_user AND r.rolsuper)"
    )
    row = cur.fetchone()
    return bool(row and row[0])


def publish(
    conn: psycopg2.extensions.connection, publication: str, tables: Sequence[TableInfo]
) -> dict[str, str]:
    """Add ``tables`` to the publication; return the ones the source refused, with its reason.

    All at once first; after a refusal, one at a time, so that one table the source will not
    publish (made unlogged meanwhile, say) does not keep the others out.
    """
    try:
        add_to_publication(conn, publication, tables)
        return {}
    except psycopg2.Error as exc:  # a lost connection is ConnectionLost: not caught here
        if len(tables) == 1:
            return {tables[0].qualified: first_line(exc)}
    refused: dict[str, str] = {}
    for table in tables:
        try:
            add_to_publication(conn, publication, [table])
        except psycopg2.Error as exc:
            refused[table.qualified] = first_line(exc)
    return refused


def drop_from_publication(
    conn: psycopg2.extensions.connection, publication: str, table: TableInfo
) -> None:
    with conn.cursor() as cur:
        cur.execute(
            "SELECT 1 FROM pg_publication_tables"
            " WHERE pubname = %s AND schemaname = %s AND tablename = %s",
            (publication, table.schema, table.name),
        )
        if cur.fetchone() is None:
            return
        if _membership_helpers(cur):
            cur.execute(
                f"SELECT {PUBLICATION_ADMIN}.drop_table(%s, %s::regclass)",
                (publication, sql.Identifier(table.schema, table.name).as_string(cur)),
            )
            return
        cur.execute(
            sql.SQL("ALTER PUBLICATION {} DROP TABLE {}").format(
                sql.Identifier(publication), sql.Identifier(table.schema, table.name)
            )
        )


def slot_info(conn: psycopg2.extensions.connection, slot: str) -> SlotInfo | None:
    with conn.cursor() as cur:
        cur.execute(
            "SELECT slot_name, active, wal_status, confirmed_flush_lsn::text,"
            " pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint"
            " FROM pg_replication_slots WHERE slot_name = %s AND database = current_database()",
            (slot,),
        )
        row = cur.fetchone()
    if row is None:
        return None
    return SlotInfo(
        name=row[0],
        active=bool(row[1]),
        wal_status=row[2],
        confirmed_flush_lsn=str_to_lsn(row[3]) if row[3] else None,
        lag_bytes=int(row[4]) if row[4] is not None else None,
    )


def end_walsender(conn: psycopg2.extensions.connection, slot: str, pid: int) -> bool:
    """End the walsender ``pid`` if it still holds ``slot`` (waiting up to 10 s for it to go);
    whether it did. Only ever a walsender of this replicator's own: a stream the network froze
    goes on holding the slot until the source's wal_sender_timeout, while the replicator has
    already reconnected (a role may end its own backends, on RDS too)."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT pg_terminate_backend(active_pid, 10000) FROM pg_replication_slots"
            " WHERE slot_name = %s AND active_pid = %s",
            (slot, pid),
        )
        row = cur.fetchone()
    return bool(row and row[0])


def drop_slot(conn: psycopg2.extensions.connection, slot: str) -> None:
    with conn.cursor() as cur:
        cur.execute(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots"
            " WHERE slot_name = %s AND database = current_database()",
            (slot,),
        )


def create_slot(
    replication: psycopg2.extras.LogicalReplicationConnection, slot: str, *, temporary: bool
) -> SnapshotPoint:
    """Create a pgoutput slot and export its snapshot.

    The snapshot stays usable until the next command on ``replication``: copy with it first,
    then start streaming (or, for a temporary slot, close the connection).
    """
    command = sql.SQL("CREATE_REPLICATION_SLOT {} {} LOGICAL pgoutput EXPORT_SNAPSHOT").format(
        sql.Identifier(slot), sql.SQL("TEMPORARY" if temporary else "")
    )
    # A replication connection's cursors are psycopg2's own: the edge is drawn here.
    with connection_edge(), replication.cursor() as cur:
        cur.execute(command)
        row = cur.fetchone()
    assert row is not None
    return SnapshotPoint(slot=str(row[0]), consistent_point=str_to_lsn(row[1]), snapshot=row[2])


def server_version(conn: psycopg2.extensions.connection) -> int:
    return int(conn.server_version)
