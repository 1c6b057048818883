"""Transform benchmark: dbt's cost beside the same SQL run by psql, and incremental vs full.

On a replica of >= 1M wallet and store rows, in one run:
  1. the full `dbt build` (models and their tests, after the replica link refresh);
  2. the same model SQL (dbt's own compiled SELECTs, full branch) run directly with psql into a
     scratch schema: the baseline dbt's overhead is measured against;
  3. 10,000 new generator events, replicated, then an incremental `dbt build` (target: at most
     10% of the full build).

How the data gets there: the generator writes its catalogue and a few players into the source,
then bench/transform/load.sql adds the bulk history with set-based SQL (constraints kept,
audit times in the past), and the replicator's initial copy brings it all to the replica.

Run: make bench-transform (Docker). BENCH_WALLET / BENCH_HEADERS / BENCH_CUSTOMERS size it.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.replica import filled_servers, psql, replicating
from zetl_generator.workload import Workload, WorkloadOptions
from zetl_transform.project import project_dir, work_dir
from zetl_transform.runner import build

HERE = Path(__file__).resolve().parent
RESULTS = HERE.parent / "results" / "transform.json"
MODEL_ORDER = ("staging", "intermediate", "marts")
# Every mart, each after the marts it reads (the contract's six and the Storefront's summaries).
ALL_MARTS = (
    "daily_player_transactions",
    "player_top_three_deposits",
    "agg_discord_deposits_by_country",
    "daily_revenue",
    "daily_publisher_revenue",
    "game_revenue",
    "transaction_reconciliation",
    "publisher_payouts",
)
VIEWS = ("staging", "intermediate")


def psql_baseline_script(project: Path) -> str:
    """dbt's compiled SELECT of every model, as plain CREATE VIEW / CREATE TABLE AS statements
    into schema bench_sql, in dependency order."""
    compiled = work_dir(project) / "target" / "compiled" / "zetl" / "models"
    statements = ["DROP SCHEMA IF EXISTS bench_sql CASCADE;", "CREATE SCHEMA bench_sql;"]
    for folder in MODEL_ORDER:
        files = sorted((compiled / folder).glob("*.sql"))
        if folder == "marts":
            files = [compiled / folder / f"{name}.sql" for name in ALL_MARTS]
        for path in files:
            select = path.read_text("utf-8").replace('"analytics".', '"bench_sql".')
            kind = "VIEW" if folder in VIEWS else "TABLE"
            statements.append(f"CREATE {kind} bench_sql.{path.stem} AS\n{select};")
    return "\n".join(statements) + "\n"


def timed_build(platform: dict[str, str], *, full_refresh: bool) -> dict[str, Any]:
    started = time.monotonic()
    run = build(
        project=project_dir(),
        warehouse_url=platform["warehouse_url"],
        replica_database=platform["replica"],
        target="local",
        select=[],
        full_refresh=full_refresh,
    )
    wall = time.monotonic() - started
    if not run.success:
        raise SystemExit(f"dbt build failed: {run.failures}")
    tests = sum(v for k, v in run.node_seconds.items() if not _is_model(k))
    models = sum(v for k, v in run.node_seconds.items() if _is_model(k))
    return {
        "wall_s": wall,
        "model_s": models,
        "test_s": tests,
        "nodes": len(run.node_seconds),
        # Where the time goes: each node's execution time, slowest first.
        "node_seconds": dict(sorted(run.node_seconds.items(), key=lambda kv: -kv[1])),
    }


def _is_model(name: str) -> bool:
    return name.startswith(("stg_", "int_")) or name in ALL_MARTS


def main() -> None:
    new_events = int(os.environ.get("BENCH_NEW_EVENTS", "10000"))
    with filled_servers() as servers:
        source_url = servers.source_url
        counts = {"wallet": servers.filled.wallet, "store": servers.filled.store}
        t0 = time.monotonic()
        with replicating(source_url, servers.dev_url) as rep:
            platform = {
                "warehouse_url": rep.config.warehouse_url,
                "replica": rep.config.replica_database,
            }
            rep.wait_caught_up("the initial copy")
            print(f"replica: initial copy by the replicator in {time.monotonic() - t0:.1f} s",
                  flush=True)  # fmt: skip

            full = timed_build(platform, full_refresh=True)
            print(f"full dbt build: {full['wall_s']:.1f} s", flush=True)
            with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as script:
                script.write(psql_baseline_script(project_dir()))
            t0 = time.monotonic()
            psql(platform["warehouse_url"], "-f", script.name)
            psql_s = time.monotonic() - t0
            Path(script.name).unlink()
            print(f"same model SQL in psql: {psql_s:.1f} s", flush=True)

            t0 = time.monotonic()
            Workload(source_url, WorkloadOptions(max_events=new_events, seed=2)).run(
                threading.Event()
            )
            rep.wait_caught_up("the new events to replicate")
            print(f"{new_events:,} new events generated and replicated in"
                  f" {time.monotonic() - t0:.1f} s", flush=True)  # fmt: skip
            incremental = timed_build(platform, full_refresh=False)
            noop = timed_build(platform, full_refresh=False)

    rows = [
        ("full dbt build (models + tests)", full["wall_s"], "1.00"),
        ("  of which model nodes", full["model_s"], ""),
        ("  of which test nodes", full["test_s"], ""),
        ("same model SQL with psql", psql_s, ""),
        ("dbt overhead: full build / psql", None, f"{full['wall_s'] / psql_s:.2f}x"),
        ("dbt models only / psql", None, f"{full['model_s'] / psql_s:.2f}x"),
        (f"incremental build after {new_events:,} events", incremental["wall_s"],
         f"{incremental['wall_s'] / full['wall_s']:.1%} of full"),
        ("  of which model nodes", incremental["model_s"],
         f"{incremental['model_s'] / full['model_s']:.1%} of full models"),
        ("  of which test nodes", incremental["test_s"], ""),
        ("incremental build with no new events", noop["wall_s"],
         f"{noop['wall_s'] / full['wall_s']:.1%} of full"),
    ]  # fmt: skip
    print(f"\n{'measure':48} {'seconds':>9}  ratio")
    for name, seconds, ratio in rows:
        shown = f"{seconds:9.2f}" if seconds is not None else " " * 9
        print(f"{name:48} {shown}  {ratio}")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "rows": counts,
                "full": full,
                "psql_s": psql_s,
                "incremental": incremental,
                "noop": noop,
                "new_events": new_events,
            },
            indent=2,
        )
    )
    print(f"\nresults: {RESULTS}")


if __name__ == "__main__":
    main()
