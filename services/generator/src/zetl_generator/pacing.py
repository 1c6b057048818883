"""Holds the generator to a target rate of transactions per second."""

from __future__ import annotations

import time
from collections.abc import Callable

# How far behind schedule the pacer may fall before it forgets the backlog: after a database
# outage the generator resumes at the target rate instead of bursting to catch up.
MAX_BACKLOG_S = 1.0


class Pacer:
    """Spaces calls to ``wait`` 1/rate seconds apart on average; rate None means full speed."""

    def __init__(
        self,
        rate: float | None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.interval = 1.0 / rate if rate else 0.0
        self._clock, self._sleep = clock, sleep
        self._next_due = clock()

    def wait(self) -> None:
        if not self.interval:
            return
        now = self._clock()
        if now < self._next_due:
            self._sleep(self._next_due - now)
        elif now - self._next_due > MAX_BACKLOG_S:
            self._next_due = now
        self._next_due += self.interval
