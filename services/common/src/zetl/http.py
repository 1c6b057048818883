"""A service's /metrics (Prometheus text) and /healthz endpoints.

The standard library's HTTP server is enough for one scraper; it runs in a daemon thread.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from zetl.errors import ConfigError


def serve_metrics(
    render: Callable[[], str],
    healthy: Callable[[], bool],
    port: int,
    host: str = "0.0.0.0",  # noqa: S104 - inside a container the scraper is on another host
) -> ThreadingHTTPServer:
    """Serve ``render()`` on /metrics and ``healthy()`` on /healthz (200 or 503) on ``port``
    (0 picks a free one: see the returned server's ``server_address``)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/metrics":
                self._send(200, render(), "text/plain; version=0.0.4")
            elif self.path == "/healthz":
                ok = healthy()
                self._send(200 if ok else 503, "ok\n" if ok else "unhealthy\n", "text/plain")
            else:
                self._send(404, "not found\n", "text/plain")

        def _send(self, status: int, body: str, content_type: str) -> None:
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            return  # scrapes are not worth a log line each

    try:
        server = ThreadingHTTPServer((host, port), Handler)
    except (OSError, OverflowError) as exc:  # in use, not permitted, or not a port at all
        raise ConfigError(f"cannot serve /metrics on port {port}: {exc}") from exc
    threading.Thread(target=server.serve_forever, name="metrics-http", daemon=True).start()
    return server
