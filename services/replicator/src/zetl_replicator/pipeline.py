"""The replicator: setup → initial copy → streaming, reconnecting when a server goes away.

The parts, one concern each: ``source.receiver`` reads and decodes the replication stream
on its own thread; ``apply.loop`` applies whole source transactions in batches to a
``destination`` (committed with the LSN they cover: exactly-once); ``apply.streams`` handles
streamed in-progress transactions; ``sync.tablesync`` copies tables and discovers new ones;
``apply.registry`` knows the replicated tables; ``state.store`` keeps progress and table
states. This module composes them for a session and supervises sessions: a lost connection
(``ConnectionLost``, from any part) ends a session and the next one resumes from the stored
LSN; a change the warehouse refuses fails its table and the others go on.
"""

from __future__ import annotations

import gc
import logging
import queue
import threading
import time
from urllib.parse import urlsplit

import psycopg2.extensions
import psycopg2.extras

from zetl.db import ConnectionLost, redact
from zetl.errors import DataError, first_line
from zetl.integration import ERROR_STATE, TableState
from zetl_replicator.apply.loop import ApplyLoop, Isolation
from zetl_replicator.apply.registry import TableRegistry
from zetl_replicator.config import ReplicatorConfig
from zetl_replicator.destination.ddl import refusal_reason
from zetl_replicator.destination.interface import ApplyError
from zetl_replicator.destination.postgres import PostgresDestination
from zetl_replicator.destination.replica import connect_replica, ensure_replica_database
from zetl_replicator.ops.metrics import Metrics
from zetl_replicator.ops.monitor import Monitor, Sample
from zetl_replicator.source import pgoutput, server
from zetl_replicator.source.receiver import QUEUE_LISTS, QueueItem, Receiver, start_stream
from zetl_replicator.state.store import PostgresStateStore
from zetl_replicator.sync.tablesync import TableSync

log = logging.getLogger(__name__)

GC_THRESHOLD = 200_000  # allocations between young-generation collections (default 700)
MAX_BACKOFF_SECONDS = 30.0
STARTUP_PATIENCE_SECONDS = 60.0


def recovery_command(config: ReplicatorConfig) -> str:
    return f"zetl replicate --reset  (drops slot {config.slot} and re-copies every table)"


class Replicator:
    """One replicator: keeps the replica in step with the publication until ``stop`` is set."""

    def __init__(self, config: ReplicatorConfig, metrics: Metrics | None = None) -> None:
        self.config = config
        self.metrics = metrics or Metrics()
        self.registry = TableRegistry()
        self.isolation = Isolation()
        self.ever_streamed = False
        self.streamed_in_session = False
        # The walsender of this process's last stream: after a frozen network it may still hold
        # the slot (until its wal_sender_timeout), and is ended rather than waited for.
        self.walsender_pid: int | None = None
        self.monitor: Monitor | None = None

    @property
    def truncatecolumns(self) -> bool:
        """The target database's TRUNCATECOLUMNS, as last read."""
        return self.registry.options.truncatecolumns

    @property
    def refresh_interval(self) -> int:
        """The target database's REFRESH_INTERVAL in seconds, as last read (0: none)."""
        return self.registry.options.refresh_interval or 0

    # --- lifecycle ---------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Replicate until ``stop``; reconnect with backoff when either server goes away."""
        config = self.config
        self.monitor = Monitor(
            config.warehouse_url,
            config.replica_database,
            config.slot,
            urlsplit(config.source_url).path.lstrip("/") or "",
            self._sample,
            self._counts,
            stall_seconds=config.stall_seconds,
        )
        self.monitor.start()
        try:
            self._run(stop)
        except BaseException as exc:
            self.metrics.integration_state = ERROR_STATE
            self.metrics.last_error = first_line(exc)
            raise
        finally:
            self.metrics.streaming = False
            # The monitor's last word: nothing replicates from now on, whatever the reason, so
            # the views say ErrorState at once rather than after STALE_SECONDS of silence.
            if self.metrics.integration_state != ERROR_STATE:  # stopped, not failed
                self.metrics.integration_state = ERROR_STATE
                self.metrics.last_error = "the replicator stopped"
            self.monitor.stop()

    def _sample(self) -> Sample:
        m = self.metrics
        return Sample(
            state=m.integration_state,
            lag_seconds=m.current_lag() if m.applied_lsn else None,
            applied_lsn=pgoutput.lsn_to_str(m.applied_lsn) if m.applied_lsn else None,
            last_error=m.last_error,
            refresh_interval=self.registry.options.refresh_interval or None,
            detected_commit_time=m.detected_commit_time,
            shipped_commit_time=m.shipped_commit_time,
        )

    def _counts(self, replicated: int, failed: int) -> None:
        self.metrics.tables_replicated = replicated
        self.metrics.tables_failed_replication = failed
        self.metrics.auto_remediations = self.registry.auto_remediations

    def state_changed(self) -> None:
        if self.monitor is not None:
            self.monitor.poke()

    def _run(self, stop: threading.Event) -> None:
        """Sessions until ``stop``: the one place a lost connection or a refused change ends
        up."""
        delay, started = 0.5, time.monotonic()
        while not stop.is_set():
            try:
                self._session(stop)
                return
            except ApplyError as exc:
                self._apply_failed(exc)
            except ConnectionLost as exc:
                if self.streamed_in_session:  # it worked until now: start the backoff afresh
                    delay, self.streamed_in_session = 0.5, False
                patient = self.ever_streamed or time.monotonic() - started < (
                    STARTUP_PATIENCE_SECONDS
                )
                if not patient:
                    raise
                self.metrics.streaming = False
                self.metrics.integration_state = "PendingDbConnectState"
                self.metrics.reconnects += 1
                self.metrics.last_error = first_line(exc)
                log.warning(
                    "connection lost; reconnecting",
                    extra={"error": self.metrics.last_error, "retry_in_s": delay},
                )
                stop.wait(delay)
                delay = min(delay * 2, MAX_BACKOFF_SECONDS)

    def _apply_failed(self, exc: ApplyError) -> None:
        """The warehouse refused some changes: fail their table (Failed, with the reason and
        the position), so that every other table goes on. The session starts again from the
        last committed position without it. When the refused statements held several tables'
        changes, the next attempt sends them apart to find the one."""
        lsn = pgoutput.lsn_to_str(exc.after_lsn)
        if len(exc.tables) != 1:
            if not exc.tables or self.isolation.until:
                raise DataError(f"the replica refused changes after {lsn}: {exc}") from exc
            self.isolation.until = max(exc.received_lsn, exc.after_lsn + 1)
            log.warning(
                "the replica refused a batch; applying table by table to find the one",
                extra={"tables": sorted(exc.tables), "after_lsn": lsn, "error": str(exc)},
            )
            return
        (name,) = exc.tables
        schema, _, table = name.partition(".")
        reason = (
            f"changes after LSN {lsn} could not be applied: {refusal_reason(exc.error)}."
            f" Re-copy it with: zetl refresh TABLE {name}"
        )
        warehouse = connect_replica(self.config.warehouse_url, self.config.replica_database)
        try:
            PostgresStateStore(warehouse).set_table_state(
                schema, table, TableState.FAILED, reason, apply_failed=True
            )
        finally:
            warehouse.close()
        self.isolation.until = 0
        with self.metrics.lock:
            self.metrics.tables_failed += 1
            self.metrics.last_error = f"{name}: {exc}"
        self.state_changed()
        log.error("table failed", extra={"table": name, "after_lsn": lsn, "reason": str(exc)})

    # --- one session -------------------------------------------------------------------------

    def _session(self, stop: threading.Event) -> None:
        config = self.config
        ensure_replica_database(config.warehouse_url, config.replica_database)
        stall = config.stall_seconds
        warehouse = connect_replica(config.warehouse_url, config.replica_database, stall)
        src = server.connect_source(config.source_url, stall)
        replication = server.connect_replication(config.source_url)
        try:
            store = PostgresStateStore(warehouse)
            table_sync = TableSync(
                config, self.registry, store, src, state_changed=self.state_changed
            )
            server.check_wal_level(src)
            server.ensure_publication(src, config.publication)
            progress = store.progress(config.slot)
            if progress is None:
                self.metrics.integration_state = "SchemaDiscoveryState"
                start_lsn = table_sync.initial_sync(replication)
                self.state_changed()
            else:
                self._check_slot(src, progress.applied_lsn)
                start_lsn = progress.applied_lsn
                table_sync.reload()
            table_sync.read_options()
            destination = PostgresDestination(warehouse, config.slot, self.registry.history)
            destination.isolate = start_lsn < self.isolation.until
            loop = ApplyLoop(
                config=config,
                metrics=self.metrics,
                registry=self.registry,
                destination=destination,
                table_sync=table_sync,
                src=src,
                applied_lsn=start_lsn,
                isolation=self.isolation,
                state_changed=self.state_changed,
            )
            self._stream(loop, src, replication, stop)
        finally:
            for conn in (replication, src, warehouse):
                if not conn.closed:
                    conn.close()

    def _stream(
        self,
        loop: ApplyLoop,
        src: psycopg2.extensions.connection,
        replication: psycopg2.extras.LogicalReplicationConnection,
        stop: threading.Event,
    ) -> None:
        """START_REPLICATION, then the receiver thread feeds the apply loop until ``stop``."""
        # Millions of small tuples pass through per large transaction and none of them forms a
        # reference cycle: the default cyclic-GC thresholds would rescan the live ones over
        # and over (a third of the time on a bulk load), so collect much less often.
        gc.freeze()
        gc.set_threshold(GC_THRESHOLD, 50, 100)
        config = self.config
        version = pgoutput.protocol_version(server.server_version(src))
        if self.walsender_pid is not None and server.end_walsender(
            src, config.slot, self.walsender_pid
        ):
            log.warning(
                "ended this replicator's previous stream, which still held the slot",
                extra={"slot": config.slot, "pid": self.walsender_pid},
            )
        self.walsender_pid = replication.info.backend_pid
        cursor = start_stream(
            replication, config.slot, config.publication, version, loop.applied_lsn
        )
        inbox: queue.Queue[QueueItem] = queue.Queue(maxsize=QUEUE_LISTS)
        receiver = Receiver(
            cursor, inbox, parallel_abort=version >= 4, silence_seconds=config.stall_seconds
        )
        receiver.flush_lsn = loop.durable_lsn  # none yet: flushed ones only
        receiver.start()
        self.metrics.streaming = True
        self.metrics.applied_lsn = loop.applied_lsn
        self.ever_streamed = self.streamed_in_session = True
        log.info(
            "streaming",
            extra={
                "from_lsn": pgoutput.lsn_to_str(loop.applied_lsn),
                "protocol": version,
                "source": redact(config.source_url),
            },
        )
        self.metrics.integration_state = "CdcRefreshState"
        try:
            loop.run(receiver, inbox, stop)
        except ApplyError as exc:
            exc.after_lsn = loop.applied_lsn
            exc.received_lsn = max(receiver.received_lsn, loop.applied_lsn)
            raise
        finally:
            self.metrics.streaming = False
            receiver.stopping.set()
            receiver.join(timeout=5)
            loop.close()

    def _check_slot(self, src: psycopg2.extensions.connection, applied_lsn: int) -> None:
        slot = server.slot_info(src, self.config.slot)
        if slot is None:
            raise DataError(
                f"replication slot {self.config.slot} is missing on the source but the replica"
                f" has applied up to {pgoutput.lsn_to_str(applied_lsn)}: changes since then are"
                f" lost. Recover with: {recovery_command(self.config)}"
            )
        if slot.wal_status == "lost":
            raise DataError(
                f"replication slot {self.config.slot} lost WAL it still needed (wal_status=lost,"
                " max_slot_wal_keep_size exceeded?): the replica cannot catch up."
                f" Recover with: {recovery_command(self.config)}"
            )
        if slot.confirmed_flush_lsn is not None and slot.confirmed_flush_lsn > applied_lsn:
            # Not proof of another consumer: psycopg2 moves the confirmed position on to a
            # keepalive's WAL end once every change sent was confirmed (nothing of ours lies in
            # between), which a source shutdown does before zetl records that position.
            log.warning(
                "slot confirmed beyond the replica's progress",
                extra={
                    "slot": self.config.slot,
                    "confirmed_flush_lsn": pgoutput.lsn_to_str(slot.confirmed_flush_lsn),
                    "applied_lsn": pgoutput.lsn_to_str(applied_lsn),
                },
            )


def reset(config: ReplicatorConfig) -> None:
    """Drop the slot and the stored progress: the next ``zetl replicate`` copies afresh."""
    src = server.connect_source(config.source_url)
    try:
        server.drop_slot(src, config.slot)
    finally:
        src.close()
    ensure_replica_database(config.warehouse_url, config.replica_database)
    warehouse = connect_replica(config.warehouse_url, config.replica_database)
    try:
        PostgresStateStore(warehouse).forget_progress(config.slot)
    finally:
        warehouse.close()
