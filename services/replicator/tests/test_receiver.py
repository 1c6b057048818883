"""The replication stream as the receiver opens it: a small receive window (so the walsender's
messages travel in full segments) that still carries a message many times its size."""

from __future__ import annotations

import select
import socket
import uuid

import psycopg2
import psycopg2.extras

from services.replicator.tests.support import execute
from tests.support import drop_slots, wait_for
from zetl_replicator.source import pgoutput
from zetl_replicator.source.receiver import RECEIVE_WINDOW_BYTES, start_stream

VALUE_BYTES = 2_000_000  # thirty times the window and more


def test_a_message_far_larger_than_the_receive_window_arrives_whole(source_url: str) -> None:
    tag = uuid.uuid4().hex[:8]
    table, publication, slot = f"wide_{tag}", f"wide_{tag}", f"zetl_wide_{tag}"
    execute(
        source_url,
        f"CREATE TABLE {table} (id int PRIMARY KEY, payload text)",
        f"CREATE PUBLICATION {publication} FOR TABLE {table}",
    )
    replication = psycopg2.connect(
        source_url, connection_factory=psycopg2.extras.LogicalReplicationConnection
    )
    try:
        with replication.cursor() as cur:
            cur.create_replication_slot(slot, output_plugin="pgoutput")
        version = pgoutput.protocol_version(replication.server_version)
        cursor = start_stream(replication, slot, publication, version, 0)
        with socket.socket(fileno=replication.fileno()) as sock:
            window = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
            sock.detach()
        assert window <= 2 * RECEIVE_WINDOW_BYTES  # Linux doubles what it is given
        execute(source_url, f"INSERT INTO {table} VALUES (1, repeat('x', {VALUE_BYTES}))")
        row = first_insert(cursor, replication.fileno())
        assert row[0] == "1" and row[1] == "x" * VALUE_BYTES
    finally:
        replication.close()
        drop_slots(source_url)
        execute(source_url, f"DROP PUBLICATION {publication}", f"DROP TABLE {table}")


def first_insert(
    cursor: psycopg2.extras.ReplicationCursor, fileno: int, timeout: float = 60.0
) -> tuple[pgoutput.Value, ...]:
    """The new row of the first Insert the stream brings, read as the receiver reads."""
    found: list[tuple[pgoutput.Value, ...]] = []

    def an_insert_arrived() -> bool:
        message = cursor.read_message()
        if message is None:
            select.select([fileno], [], [], 0.5)
            return False
        decoded = pgoutput.decode(message.payload)
        if isinstance(decoded, pgoutput.Insert):
            found.append(decoded.new)
        return bool(found)

    wait_for(an_insert_arrived, "an Insert from the stream", timeout)
    return found[0]
