"""The soak's stalling proxy: it forwards, freezes the connections open at SIGUSR1 (they stay
open and pass nothing) while new ones still work, and closes the frozen ones at SIGUSR2."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import support
from tests.harness import free_port

PROXY = Path(__file__).resolve().parents[2] / "bench" / "soak" / "proxy.py"


@pytest.fixture
def echo_port() -> Iterator[int]:
    server = socket.create_server(("127.0.0.1", 0))

    def echo(conn: socket.socket) -> None:
        with conn:
            while data := conn.recv(4096):
                conn.sendall(data)

    def accept() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:  # closed: the test is over
                return
            threading.Thread(target=echo, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    yield server.getsockname()[1]
    server.close()


@pytest.fixture
def proxy(echo_port: int) -> Iterator[tuple[subprocess.Popen[str], int]]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(PROXY), str(port), f"127.0.0.1:{echo_port}"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert "listening" in process.stdout.readline()
    yield process, port
    process.terminate()
    process.wait(timeout=10)


def echoed(conn: socket.socket, payload: bytes) -> bytes:
    conn.sendall(payload)
    received = b""
    while len(received) < len(payload):
        chunk = conn.recv(4096)
        if not chunk:
            break
        received += chunk
    return received


def test_frozen_connections_pass_nothing_new_ones_work_and_release_closes_them(
    proxy: tuple[subprocess.Popen[str], int],
) -> None:
    process, port = proxy
    assert process.stdout is not None
    old = socket.create_connection(("127.0.0.1", port), timeout=10)
    assert echoed(old, b"before") == b"before"

    process.send_signal(signal.SIGUSR1)
    assert "froze 1 connection(s)" in process.stdout.readline()
    old.settimeout(1.0)  # nothing may come back: a bounded wait is the only way to see that
    old.sendall(b"during")
    with pytest.raises(TimeoutError):
        old.recv(4096)

    with socket.create_connection(("127.0.0.1", port), timeout=10) as new:
        assert echoed(new, b"new") == b"new"

    process.send_signal(signal.SIGUSR2)
    assert "closing 1 frozen connection(s)" in process.stdout.readline()
    old.settimeout(10)

    def closed() -> bool:
        try:
            return old.recv(4096) == b""
        except ConnectionResetError:
            return True

    support.wait_for(closed, "the frozen connection to be closed", timeout=10)
    old.close()
