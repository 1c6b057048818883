"""The continuous workload: events at a steady rate until told to stop, through restarts."""

from __future__ import annotations

import logging
import random
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field

import psycopg2
import psycopg2.errors
import psycopg2.extensions
from faker import Faker

from zetl.db import connect, is_connection_lost
from zetl.errors import ConfigError
from zetl_generator.events import Clock, Storefront, start_clock
from zetl_generator.mix import EventKind, Mix
from zetl_generator.pacing import Pacer

logger = logging.getLogger("zetl.generator")

MAX_BACKOFF_S = 10.0
HEALTHY_WITHIN_S = 30.0  # /healthz fails when no event was written for this long
STATE_FINGERPRINT = """
SELECT (SELECT coalesce(max(id), 0) FROM customer), (SELECT coalesce(max(id), 0) FROM affiliate),
       (SELECT coalesce(max(id), 0) FROM store_transaction),
       (SELECT coalesce(max(id), 0) FROM wallet_transaction)
"""


@dataclass(frozen=True)
class WorkloadOptions:
    rate: float | None = None  # transactions per second; None = as fast as the database goes
    duration_s: float | None = None
    max_events: int | None = None
    seed: int = 0
    mix: Mix = field(default_factory=lambda: Mix.parse(None))
    # Business time: the present, or a simulated clock whose timestamps the seed reproduces.
    simulated_clock: bool = False


@dataclass
class WorkloadStats:
    """What the run did so far; read by the progress display and the metrics endpoint."""

    events: Counter[EventKind] = field(default_factory=Counter)
    reconnects: int = 0
    started: float = field(default_factory=time.monotonic)  # reset when events start flowing
    last_event: float = field(default_factory=time.monotonic)

    @property
    def total(self) -> int:
        return sum(self.events.values())

    @property
    def rate(self) -> float:
        elapsed = time.monotonic() - self.started
        return self.total / elapsed if elapsed > 0 else 0.0

    def summary(self) -> dict[str, object]:
        return {
            "events": self.total,
            "rate_per_s": round(self.rate, 1),
            "reconnects": self.reconnects,
            **{f"events_{kind.value}": count for kind, count in sorted(self.events.items())},
        }


@contextmanager
def stop_on_signals() -> Iterator[threading.Event]:
    """SIGTERM and SIGINT ask the loop to stop after the transaction in flight."""
    stop = threading.Event()
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    for sig in previous:
        signal.signal(sig, lambda *_: stop.set())
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class Workload:
    def __init__(self, url: str, options: WorkloadOptions) -> None:
        self.url, self.options = url, options
        self.rng, self.fake = random.Random(), Faker()  # seeded when the run starts
        self.stats = WorkloadStats()
        self._conn: psycopg2.extensions.connection | None = None
        self._clock: Clock | None = None

    def run(
        self, stop: threading.Event, on_event: Callable[[WorkloadStats], None] = lambda _: None
    ) -> WorkloadStats:
        self._connect_with_backoff(stop)
        self.stats.started = time.monotonic()  # the rate is of events, not of connecting
        pacer = Pacer(self.options.rate)
        deadline = time.monotonic() + self.options.duration_s if self.options.duration_s else None
        while not stop.is_set() and not self._finished(deadline):
            pacer.wait()
            kind = self.options.mix.next_kind(self.rng)
            try:
                written = self._write(kind)
            except (psycopg2.Error, ConfigError) as exc:
                if not is_connection_lost(exc):
                    raise
                self._drop_connection(exc)
                self._connect_with_backoff(stop)
                self.stats.reconnects += 1
                logger.info("reconnected to the source database", extra=self.stats.summary())
                continue
            self.stats.events[written] += 1
            self.stats.last_event = time.monotonic()
            on_event(self.stats)
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        return self.stats

    def healthy(self) -> bool:
        """Connected, and the last event is recent for the rate asked (not stuck in backoff)."""
        patience = max(HEALTHY_WITHIN_S, 10 / self.options.rate if self.options.rate else 0)
        return self._conn is not None and time.monotonic() - self.stats.last_event < patience

    def _finished(self, deadline: float | None) -> bool:
        limit = self.options.max_events
        return (limit is not None and self.stats.total >= limit) or (
            deadline is not None and time.monotonic() >= deadline
        )

    def _write(self, kind: EventKind) -> EventKind:
        """One event in one source transaction: committed whole, or not at all."""
        conn = self._connection()
        with conn, conn.cursor() as cur:
            assert self._clock is not None  # set by _start on the first connection
            return Storefront(cur, self.rng, self.fake, self._clock).apply(kind)

    def _connection(self) -> psycopg2.extensions.connection:
        if self._conn is None:
            conn = connect(self.url, application_name="zetl-generator")
            if self._clock is None:  # the first connection: the run starts from this state
                with conn, conn.cursor() as cur:
                    self._start(cur)
            self._conn = conn
        return self._conn

    def _start(self, cur: psycopg2.extensions.cursor) -> None:
        """Seed from the seed *and* the starting state: the same pair gives the same rows,
        and a second run on top of the first does not repeat its codes."""
        try:
            cur.execute(STATE_FINGERPRINT)
        except psycopg2.errors.UndefinedTable as exc:
            raise ConfigError(
                "the source database has no storefront schema yet: run `zetl migrate` first"
            ) from exc
        run_seed = f"{self.options.seed}:{cur.fetchone()}"
        self.rng.seed(run_seed)
        self.fake.seed_instance(run_seed)
        self._clock = start_clock(cur, self.options.simulated_clock)
        Storefront(cur, self.rng, self.fake, self._clock).ensure_catalog()

    def _drop_connection(self, exc: Exception) -> None:
        logger.warning("lost the source database", extra={"error": str(exc).strip()})
        if self._conn is not None:
            with suppress(psycopg2.Error):
                self._conn.close()
        self._conn = None

    def _connect_with_backoff(self, stop: threading.Event) -> None:
        """Back off until the server answers again (or we are told to stop)."""
        delay = 0.2
        while not stop.is_set():
            try:
                self._connection()
            except (psycopg2.Error, ConfigError) as exc:
                if not is_connection_lost(exc):
                    raise
                stop.wait(delay)
                delay = min(delay * 2, MAX_BACKOFF_S)
                continue
            return
