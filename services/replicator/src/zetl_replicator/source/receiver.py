"""The receiver: a thread that reads the replication stream and decodes it.

It hands lists of decoded messages to the applier over a bounded queue and answers the
server's keepalives even while apply is busy, so that receiving and applying overlap (receiving
a large transaction alone takes about as long as native logical replication takes to apply it).
A stream that ends (a server restart, a failover) is reported as ``ConnectionLost``: the
applier's one place that handles it reconnects from the stored LSN.
"""

from __future__ import annotations

import queue
import select
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import psycopg2.extras

from zetl.db import ConnectionLost, connection_edge
from zetl_replicator.source import pgoutput

QUEUE_LISTS = 64  # lists of up to LIST_SIZE messages between receiver and applier
LIST_SIZE = 512
HOLD_POLL_SECONDS = 0.005  # how often the receiver reads while a large transaction flows
# The replication socket's receive buffer. The walsender sends each message as it is decoded,
# with one send() each; read at once, every message is a TCP segment of its own, and sending
# them costs the walsender about as much CPU as decoding. A small window, read every
# HOLD_POLL_SECONDS while a streamed transaction flows, makes the kernel gather the messages
# into full segments (about four per segment): the walsender then streams a large
# transaction about twice as fast. Enough for the local network this replicator runs on; a
# long round trip would want it larger.
RECEIVE_WINDOW_BYTES = 32 * 1024


@dataclass(frozen=True)
class Idle:
    """The server has sent everything up to ``wal_end`` and no transaction is open."""

    wal_end: int


@dataclass(frozen=True)
class ReceiveFailed:
    error: BaseException


QueueItem = list[pgoutput.Message] | Idle | ReceiveFailed


def start_stream(
    replication: psycopg2.extras.LogicalReplicationConnection,
    slot: str,
    publication: str,
    version: int,
    start_lsn: int,
) -> psycopg2.extras.ReplicationCursor:
    """START_REPLICATION of ``slot`` from ``start_lsn`` with pgoutput protocol ``version``."""
    # messages: the source's DDL capture travels as logical messages (apply/captured_ddl.py)
    options = {
        "proto_version": str(version),
        "publication_names": publication,
        "messages": "true",
    }
    if version >= 2:  # large transactions arrive while they run, not only after commit
        # Protocol 4 (16+) offers 'parallel': the same interleaved streams, and each
        # Stream Abort carries its LSN and time, as RDS's own subscribers receive them.
        options["streaming"] = "parallel" if version >= 4 else "on"
    with connection_edge():
        cursor = replication.cursor()
        cursor.start_replication(
            slot_name=slot,
            decode=False,
            start_lsn=start_lsn,
            status_interval=1,
            options=options,
        )
    with socket.socket(fileno=replication.fileno()) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_WINDOW_BYTES)
        sock.detach()  # the connection keeps its socket
    return cursor


class Silence:
    """How long the source has sent nothing, as Postgres' own subscriber keeps it
    (``wal_receiver_timeout``). The walsender is silent on an idle stream that keeps sending
    feedback, so silence alone proves nothing: after half the limit the receiver asks for a
    keepalive, and the stream is frozen only when none comes within the other half (time the
    receiver spent waiting for the applier does not count: the keepalive is asked first)."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self.clock = clock
        self._heard = clock()
        self._asked: float | None = None

    def heard(self) -> None:
        self._heard, self._asked = self.clock(), None

    def ask_now(self) -> bool:
        """Whether to ask the server for a keepalive now (once per silence)."""
        now = self.clock()
        if self._asked is None and now - self._heard >= self.seconds / 2:
            self._asked = now
            return True
        return False

    def broken(self) -> bool:
        """Whether the keepalive asked for has not come within the other half."""
        return self._asked is not None and self.clock() - self._asked >= self.seconds / 2


class Receiver(threading.Thread):
    """Reads and decodes the stream; answers the server's keepalives even while apply is busy."""

    def __init__(
        self,
        cursor: psycopg2.extras.ReplicationCursor,
        out: queue.Queue[QueueItem],
        *,
        parallel_abort: bool = False,
        silence_seconds: float = 30.0,
    ):
        super().__init__(name="zetl-receiver", daemon=True)
        self.cursor = cursor
        self.out = out
        self.parallel_abort = parallel_abort  # protocol 4, streaming 'parallel'
        self.silence = Silence(silence_seconds)
        self.flush_lsn = 0  # set by the applier once durable; read here (an int: atomic)
        self.received_lsn = 0
        self.stopping = threading.Event()

    def run(self) -> None:
        try:
            with connection_edge(stream=True):
                self._receive()
        except BaseException as exc:  # handed to the applier, which reconnects or stops
            self._put(ReceiveFailed(exc))

    def _receive(self) -> None:
        batch: list[pgoutput.Message] = []
        in_transaction = in_stream = False
        last_idle = idle = 0  # the idle position handed over last, and one not handed over yet
        stream = self.cursor.connection.fileno()
        while not self.stopping.is_set():
            message = self.cursor.read_message()
            if message is None:  # all read for now
                if self.silence.broken():
                    raise ConnectionLost(
                        f"the source sent nothing for {self.silence.seconds:.0f} s, not even"
                        " the keepalive asked for: a frozen connection; reconnecting"
                    )
                if self.silence.ask_now():
                    self._feedback(force=True, reply=True)
                wal_end = int(self.cursor.wal_end)
                if not in_transaction and wal_end > last_idle:
                    idle = wal_end
                # Handed over when the applier has taken everything before, else gathered
                # further: under a trickle of small transactions, a few large lists rather
                # than one wake-up per transaction (and a queue full of tiny lists).
                if (batch or idle) and self.out.empty():
                    if batch:
                        self._put(batch)
                        batch = []
                    if idle:
                        self._put(Idle(idle))
                        last_idle, idle = idle, 0
                self._feedback()
                if batch or idle or in_stream:
                    # Read again shortly rather than wake for each packet (the server sends
                    # one per message): see RECEIVE_WINDOW_BYTES. Only inside a streamed
                    # transaction: between small transactions, polling cost CPU (measured).
                    time.sleep(HOLD_POLL_SECONDS)
                    wait = 0.0
                else:
                    wait = 0.2
                if select.select([stream], [], [], wait)[0]:
                    self.silence.heard()  # bytes from the server: data or a keepalive
                continue
            self.silence.heard()
            decoded = pgoutput.decode(
                message.payload, in_stream=in_stream, parallel_abort=self.parallel_abort
            )
            if type(decoded) is not pgoutput.Insert:  # most are: skip the checks
                if isinstance(decoded, pgoutput.Begin):
                    in_transaction = True
                elif isinstance(decoded, pgoutput.Commit):
                    in_transaction = False
                elif isinstance(decoded, pgoutput.StreamStart):
                    in_stream = True
                elif isinstance(decoded, pgoutput.StreamStop):
                    in_stream = False
            start = message.data_start
            if start > self.received_lsn:
                self.received_lsn = start
            batch.append(decoded)
            if len(batch) >= LIST_SIZE:
                self._put(batch)
                batch = []
                self._feedback()

    def _feedback(self, force: bool = False, reply: bool = False) -> None:
        self.cursor.send_feedback(  # type: ignore[no-untyped-call]  # untyped in the stubs
            write_lsn=self.received_lsn, flush_lsn=self.flush_lsn, force=force, reply=reply
        )

    def _put(self, item: QueueItem) -> None:
        while not self.stopping.is_set():
            try:
                self.out.put(item, timeout=1.0)
                return
            except queue.Full:
                self._feedback(force=True)  # keep the connection alive while apply catches up
