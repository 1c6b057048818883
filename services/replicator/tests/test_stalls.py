"""A frozen network: connections that stay open but carry nothing, in front of the source or
the warehouse (the soak's stalling proxy, bench/soak/proxy.py). The replicator notices by
itself within its stall limit, reconnects, and the replica ends identical."""

from __future__ import annotations

import dataclasses
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from services.replicator.tests.support import Query, execute, zetl
from tests.harness import free_port
from tests.support import running, wait_for
from zetl.db import WATCHDOG
from zetl_replicator.config import ReplicatorConfig
from zetl_replicator.source.receiver import Silence

PROXY = Path(__file__).resolve().parents[3] / "bench" / "soak" / "proxy.py"
STALL_SECONDS = 3.0


@contextmanager
def stalling_proxy(url: str) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """The proxy in front of ``url``'s server: yields the proxied URL and its process."""
    parts = urlsplit(url)
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(PROXY), str(port), f"{parts.hostname}:{parts.port}"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert "listening" in process.stdout.readline()
        netloc = parts.netloc.rsplit("@", 1)
        proxied = parts._replace(netloc=f"{netloc[0]}@127.0.0.1:{port}")
        yield urlunsplit(proxied), process
    finally:
        process.terminate()
        process.wait(timeout=10)


def freeze(process: subprocess.Popen[str]) -> None:
    """Every connection open through the proxy now passes nothing any more; new ones do."""
    assert process.stdout is not None
    process.send_signal(signal.SIGUSR1)
    assert "froze" in process.stdout.readline()


@pytest.mark.parametrize("side", ["source", "warehouse"])
def test_a_frozen_connection_is_noticed_and_replication_goes_on(
    side: str, config: ReplicatorConfig, replica: Query
) -> None:
    execute(config.source_url, "CREATE TABLE t (id int PRIMARY KEY)", "INSERT INTO t VALUES (1)")
    url = config.source_url if side == "source" else config.warehouse_url
    with stalling_proxy(url) as (proxied, proxy):
        stalled = dataclasses.replace(
            config,
            stall_seconds=STALL_SECONDS,
            source_url=proxied if side == "source" else config.source_url,
            warehouse_url=proxied if side == "warehouse" else config.warehouse_url,
        )
        with running(stalled) as replicator:
            wait_for(lambda: replica("SELECT count(*) FROM t") == [(1,)], "the copy")
            broken = WATCHDOG.broken
            freeze(proxy)
            execute(config.source_url, "INSERT INTO t SELECT generate_series(2, 100)")
            # Noticed within twice the limit, then a reconnect; a generous deadline for a
            # busy machine, never a fixed wait.
            wait_for(lambda: replica("SELECT count(*) FROM t") == [(100,)], "the rows", 120)
            assert replicator.metrics.reconnects >= 1
            if side == "warehouse":  # a statement stalled: the watchdog broke it
                assert WATCHDOG.broken > broken
            result = zetl(config, "verify")
            assert result.returncode == 0, result.stdout


def test_a_silent_stream_asks_for_a_keepalive_then_gives_up_on_it() -> None:
    """The stream's silence rule (wal_receiver_timeout's): half the limit without a byte asks
    the source for a keepalive, once; the other half without an answer is a frozen stream.
    Any byte heard starts afresh, so a slow applier never counts as silence."""
    now = [0.0]
    silence = Silence(10.0, clock=lambda: now[0])
    now[0] = 4.9
    assert not silence.ask_now() and not silence.broken()
    now[0] = 5.0
    assert silence.ask_now()
    assert not silence.ask_now()  # asked once per silence
    now[0] = 9.9
    assert not silence.broken()
    silence.heard()  # the keepalive came
    now[0] = 14.0
    assert not silence.broken() and not silence.ask_now()
    now[0] = 15.0
    assert silence.ask_now()
    now[0] = 20.0
    assert silence.broken()
