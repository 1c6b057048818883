"""The Redshift front's relay cost, beside the same work sent straight to Postgres, in one run.

A warehouse Postgres in a container, the front as its own process (``zetl redshift serve``,
as compose runs it), and the same client (psycopg2) on both sides:

- a 1M-row result (``SELECT * FROM bench_rows``, 4 columns, about 60 MB on the wire), fetched
  whole: through the front without TLS (the same transport as direct: the relay's own cost,
  target at most 1.2x), and with TLS (what redshift_connector's default costs on top);
- 100 concurrent clients, each running short statements (``SELECT $1::int``) on its own
  connection: statements per second through the front against direct.

Rounds alternate direct and front; each figure is the median of ROUNDS rounds, each ratio the
median of the per-round ratios.

  python -m bench.redshift.wire [--rows 1000000] [--clients 100] [--statements 100]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg2

from tests.harness import PostgresServer, free_port, running_postgres

RESULTS = Path(__file__).resolve().parent.parent / "results" / "redshift-wire.json"
ROUNDS = 3
FRONT_ROLE, FRONT_PASSWORD = "zetl_redshift", "bench-front-pw"
CLIENT_ROLE, CLIENT_PASSWORD = "bench_client", "bench-client-pw"


def prepare(server: PostgresServer, rows: int) -> str:
    """The bench database: its table, the front's role and a client role. Its name."""
    database = server.create_database("bench")
    conn = server.connect(database)
    try:
        with conn.cursor() as cur:
            for role, password in ((FRONT_ROLE, FRONT_PASSWORD), (CLIENT_ROLE, CLIENT_PASSWORD)):
                cur.execute(f"CREATE ROLE {role} LOGIN PASSWORD %s", (password,))
            cur.execute(f"GRANT CREATE ON DATABASE {database} TO {FRONT_ROLE}")
            cur.execute(
                "CREATE TABLE bench_rows AS SELECT g AS id, md5(g::text) AS label,"
                " (g * 1.5)::numeric(12, 2) AS amount,"
                " timestamptz '2026-01-01' + g * interval '1 second' AS at"
                " FROM generate_series(1, %s) g",
                (rows,),
            )
            cur.execute(f"GRANT SELECT ON bench_rows TO {CLIENT_ROLE}")
            cur.execute("VACUUM ANALYZE bench_rows")
    finally:
        conn.close()
    return database


@contextmanager
def front_process(server: PostgresServer, database: str) -> Iterator[int]:
    """``zetl redshift serve`` before the server, until the block ends: its port."""
    port = free_port()
    tls_dir = tempfile.mkdtemp(prefix="bench-front-tls-")
    env = {
        **os.environ,
        "WAREHOUSE_DATABASE_URL": (
            f"postgresql://{FRONT_ROLE}:{FRONT_PASSWORD}@{server.host}:{server.port}/{database}"
        ),
        "ZETL_REDSHIFT_TLS_DIR": tls_dir,
        "ZETL_LOG_LEVEL": "WARNING",
    }
    zetl = shutil.which("zetl") or str(Path(sys.executable).with_name("zetl"))
    process = subprocess.Popen([zetl, "redshift", "serve", "--port", str(port)], env=env)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the front did not start") from None
                time.sleep(0.2)
        yield port
    finally:
        process.terminate()
        process.wait(30)
        shutil.rmtree(tls_dir, ignore_errors=True)


def fetch_all(url: str) -> float:
    conn = psycopg2.connect(url)
    try:
        started = time.perf_counter()
        with conn.cursor() as cur:
            cur.execute("SELECT * FROM bench_rows")
            count = len(cur.fetchall())
        elapsed = time.perf_counter() - started
    finally:
        conn.close()
    assert count > 0
    return elapsed


def concurrent(url: str, clients: int, statements: int) -> float:
    """Statements per second of ``clients`` connections, each running ``statements``."""
    conns = [psycopg2.connect(url) for _ in range(clients)]
    for conn in conns:
        conn.autocommit = True
    start = threading.Barrier(clients + 1)

    def run(conn: Any) -> None:
        with conn.cursor() as cur:
            start.wait()
            for n in range(statements):
                cur.execute("SELECT %s::int", (n,))
                cur.fetchone()

    threads = [threading.Thread(target=run, args=(c,)) for c in conns]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    for conn in conns:
        conn.close()
    return clients * statements / elapsed


def rounds(measure: Callable[[str], float], urls: dict[str, str]) -> dict[str, list[float]]:
    found: dict[str, list[float]] = {name: [] for name in urls}
    for _ in range(ROUNDS):
        for name, url in urls.items():
            found[name].append(measure(url))
    return found


def summary(found: dict[str, list[float]], baseline: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, values in found.items():
        out[name] = {"median": statistics.median(values), "rounds": values}
        if name != baseline:
            ratios = [v / b for v, b in zip(values, found[baseline], strict=True)]
            out[name]["ratio_to_direct"] = statistics.median(ratios)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--statements", type=int, default=100)
    args = parser.parse_args()
    with running_postgres({"max_connections": "300"}) as server:
        database = prepare(server, args.rows)
        with front_process(server, database) as port:
            login = f"{CLIENT_ROLE}:{CLIENT_PASSWORD}"
            urls = {
                "direct": f"postgresql://{login}@{server.host}:{server.port}/{database}"
                "?sslmode=disable",
                "front": f"postgresql://{login}@127.0.0.1:{port}/{database}?sslmode=disable",
                "front_tls": f"postgresql://{login}@127.0.0.1:{port}/{database}?sslmode=require",
            }
            fetch_all(urls["front"])  # warm the server's cache and the front's catalog
            result = {
                "rows": args.rows,
                "large_result_seconds": summary(rounds(fetch_all, urls), "direct"),
                "concurrent_statements_per_second": summary(
                    rounds(
                        lambda url: concurrent(url, args.clients, args.statements),
                        {k: urls[k] for k in ("direct", "front")},
                    ),
                    "direct",
                ),
                "clients": args.clients,
                "statements_per_client": args.statements,
            }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    large = result["large_result_seconds"]
    print(f"{args.rows:,}-row result, psycopg2 fetchall (median of {ROUNDS}):")
    for name, figures in large.items():
        ratio = figures.get("ratio_to_direct")
        print(f"  {name:10} {figures['median']:7.2f} s" + (f"  {ratio:.2f}x" if ratio else ""))
    print(f"{args.clients} clients x {args.statements} statements (median of {ROUNDS}):")
    for name, figures in result["concurrent_statements_per_second"].items():
        ratio = figures.get("ratio_to_direct")
        line = f"  {name:10} {figures['median']:9.0f} statements/s"
        print(line + (f"  {ratio:.2f}x of direct" if ratio else ""))
    print(f"results: {RESULTS}")


if __name__ == "__main__":
    main()
