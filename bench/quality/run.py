"""Data-quality benchmark: each checkpoint beside the same checks run as plain SQL.

On a replica of >= 1M wallet and store rows (built like bench/transform's: the generator's
catalogue, bench/transform/load.sql's set-based history in the source, the replicator's
initial copy, then `dbt build` for the marts), in one run, per checkpoint:
  - `zetl dq run NAME` in-process (great_expectations already imported: its ~11 s import is
    reported apart), Data Docs and the results row included;
  - the baseline: every check's own plain SQL (``Check.violations_sql``), counted, over one
    connection; for replica_parity the same `zetl verify` comparison first, then the SQL.
Each side runs twice, alternating (checkpoint first); the faster run of each counts.
Target: at most 3x.

Run: make bench-quality (Docker). BENCH_WALLET / BENCH_HEADERS / BENCH_CUSTOMERS size it.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg2

from bench.replica import filled_servers, replicating
from tests.support import build_marts
from zetl_quality.checks import CHECKPOINTS, Datasource, Target
from zetl_replicator.config import ReplicatorConfig

RESULTS = Path(__file__).resolve().parent.parent / "results" / "quality.json"
ROUNDS = 2


def plain_sql(name: str, env: dict[str, str], replica: str) -> tuple[float, int]:
    """The checkpoint's checks as plain SQL: seconds, and how many checks found rows."""
    from zetl_replicator.ops.verify import verify

    started = time.monotonic()
    if name == "replica_parity":
        # The same evidence the checkpoint evaluates: verify at one consistent point.
        verify(ReplicatorConfig.from_env(env))
    assets, checks = CHECKPOINTS[name].build(Target.LOCAL, replica)
    sources = {a.table or a.name: a.datasource for a in assets}
    urls = {
        Datasource.SOURCE: env["SOURCE_DATABASE_URL"],
        Datasource.WAREHOUSE: env["WAREHOUSE_DATABASE_URL"],
    }
    failing = 0
    conns = {kind: psycopg2.connect(url) for kind, url in urls.items()}
    try:
        for check in checks:
            with conns[sources[check.asset]].cursor() as cur:
                cur.execute(f"SELECT count(*) FROM ({check.plain_sql()}) AS v")
                row = cur.fetchone()
                failing += bool(row and row[0])
    finally:
        for conn in conns.values():
            conn.close()
    return time.monotonic() - started, failing


def checkpoint(name: str, env: dict[str, str]) -> tuple[float, bool]:
    from zetl_quality.runner import run

    started = time.monotonic()
    result = run(name, Target.LOCAL, env)
    return time.monotonic() - started, result.success


def main() -> None:
    with filled_servers() as servers, tempfile.TemporaryDirectory() as expectations:
        source_url = servers.source_url
        counts = {"wallet": servers.filled.wallet, "store": servers.filled.store}
        with replicating(source_url, servers.dev_url) as rep:
            config, replica = rep.config, rep.config.replica_database
            rep.wait_caught_up("the initial copy")
            build_marts(config.warehouse_url, replica, full_refresh=True)
            print("replica copied and marts built", flush=True)
            env = {
                **os.environ,
                "SOURCE_DATABASE_URL": source_url,
                "WAREHOUSE_DATABASE_URL": config.warehouse_url,
                "ZETL_REPLICA_DATABASE": replica,
                "ZETL_SLOT": config.slot,
                "ZETL_EXPECTATIONS_DIR": expectations,
            }
            t0 = time.monotonic()
            import great_expectations  # noqa: F401  # its import, timed apart from the runs

            import_s = time.monotonic() - t0
            figures: dict[str, Any] = {}
            for name in CHECKPOINTS:
                gx_runs, sql_runs, passed, failing = [], [], True, 0
                for _ in range(ROUNDS):
                    # The checkpoint first: replica_parity's SQL reads the evidence it stored.
                    seconds, passed = checkpoint(name, env)
                    gx_runs.append(seconds)
                    seconds, failing = plain_sql(name, env, replica)
                    sql_runs.append(seconds)
                figures[name] = {
                    "checks": len(CHECKPOINTS[name].build(Target.LOCAL, replica)[1]),
                    "checkpoint_s": min(gx_runs),
                    "plain_sql_s": min(sql_runs),
                    "ratio": min(gx_runs) / min(sql_runs),
                    "checkpoint_passed": passed,
                    "plain_sql_failing_checks": failing,
                }
                print(f"{name}: checkpoint {min(gx_runs):.2f} s, plain SQL {min(sql_runs):.2f} s",
                      flush=True)  # fmt: skip

    print(f"\n{'checkpoint':18} {'checks':>6} {'gx s':>8} {'sql s':>8}  ratio  passed")
    for name, f in figures.items():
        print(f"{name:18} {f['checks']:6} {f['checkpoint_s']:8.2f} {f['plain_sql_s']:8.2f}"
              f"  {f['ratio']:4.2f}x  {f['checkpoint_passed']}")  # fmt: skip
    print(f"great_expectations import (once per process): {import_s:.1f} s")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(
        json.dumps({"rows": counts, "import_s": import_s, "checkpoints": figures}, indent=2)
    )
    print(f"\nresults: {RESULTS}")


if __name__ == "__main__":
    main()
