"""Polling with a deadline: the one loop every wait step uses."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from zetl.errors import DataError

T = TypeVar("T")


@dataclass(frozen=True)
class Deadline:
    """How long a wait may take and how often it looks; ``sleep``/``clock`` are for tests."""

    timeout_s: float
    interval_s: float = 15.0
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic


def poll(look: Callable[[], T | None], deadline: Deadline, waiting_for: str) -> T:
    """Call ``look`` until it returns something other than None, or fail at the deadline.

    ``look`` raises to stop early (a failed state); None means "not yet".
    """
    end = deadline.clock() + deadline.timeout_s
    while True:
        result = look()
        if result is not None:
            return result
        if deadline.clock() + deadline.interval_s > end:
            raise DataError(f"timed out after {deadline.timeout_s:.0f}s waiting for {waiting_for}")
        deadline.sleep(deadline.interval_s)
