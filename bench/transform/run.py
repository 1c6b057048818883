"""Transform benchmark: dbt's cost beside the same SQL run by psql, and incremental vs full.

On a replica of >= 1M wallet and store rows, in one run:
  1. the full `dbt build` (models and their tests, after the replica link refresh);
  2. the same model SQL (dbt's own compiled SELECTs, full branch) run directly with psql into a
     scratch schema: the baseline dbt's overhead is measured against;
  3. 10,000 new generator events, replicated, then an incremental `dbt build` (target: at most
     10% of the full build), after the incremental run that follows every full build (it
     recomputes the lookback window: reported apart);
  4. a second incremental build with nothing new (a no-op: target about dbt's own start), and
     dbt's own start: the same build selecting no node (link refresh, dbt's parse, the run log).

Every step runs in BENCH_ROUNDS rounds (3), each with its own full build, so each round's
ratios are against the full build of that round; the report gives every round and the medians
(the machine is shared: a figure is only comparable with its own round's baseline).

How the data gets there: the generator writes its catalogue and a few players into the source,
then bench/transform/load.sql adds the bulk history with set-based SQL (constraints kept,
audit times in the past), and the replicator's initial copy brings it all to the replica.

Run: make bench-transform (Docker). BENCH_WALLET / BENCH_HEADERS / BENCH_CUSTOMERS size it,
BENCH_NEW_EVENTS the events of an incremental run (10000), BENCH_ROUNDS the rounds.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
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


# A selector that matches no node: the build is dbt's own start and nothing else.
NOTHING = "tag:zetl_bench_selects_nothing"


def timed_build(
    platform: dict[str, str], *, full_refresh: bool, select: list[str] | None = None
) -> dict[str, Any]:
    started = time.monotonic()
    run = build(
        project=project_dir(),
        warehouse_url=platform["warehouse_url"],
        replica_database=platform["replica"],
        target="local",
        select=select or [],
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


def one_round(
    platform: dict[str, str],
    source_url: str,
    wait_replicated: Callable[[str], None],
    new_events: int,
    seed: int,
) -> dict[str, Any]:
    """Full build, the psql baseline, the first incremental build after it, new events, an
    incremental build, a no-op, dbt's start."""
    full = timed_build(platform, full_refresh=True)
    print(f"full dbt build: {full['wall_s']:.1f} s", flush=True)
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as script:
        script.write(psql_baseline_script(project_dir()))
    t0 = time.monotonic()
    psql(platform["warehouse_url"], "-f", script.name)
    psql_s = time.monotonic() - t0
    Path(script.name).unlink()
    print(f"same model SQL in psql: {psql_s:.1f} s", flush=True)

    # A full build forgets the rows the marts had seen (macros/incremental.sql): the first
    # incremental run after it recomputes its whole lookback window, which here holds the
    # events of the earlier rounds. Measured are the runs after that one, as on a schedule.
    settle = timed_build(platform, full_refresh=False)
    print(f"first incremental build after the full build: {settle['wall_s']:.1f} s", flush=True)

    t0 = time.monotonic()
    Workload(source_url, WorkloadOptions(max_events=new_events, seed=seed)).run(threading.Event())
    wait_replicated("the new events to replicate")
    print(f"{new_events:,} new events generated and replicated in"
          f" {time.monotonic() - t0:.1f} s", flush=True)  # fmt: skip
    incremental = timed_build(platform, full_refresh=False)
    noop = timed_build(platform, full_refresh=False)
    start = timed_build(platform, full_refresh=False, select=[NOTHING])
    print(f"incremental {incremental['wall_s']:.2f} s, no-op {noop['wall_s']:.2f} s,"
          f" dbt's start {start['wall_s']:.2f} s", flush=True)  # fmt: skip
    return {
        "full": full,
        "psql_s": psql_s,
        "first_incremental_s": settle["wall_s"],
        "incremental": incremental,
        "noop": noop,
        "start_s": start["wall_s"],
        "incremental_vs_full": incremental["wall_s"] / full["wall_s"],
        "noop_vs_full": noop["wall_s"] / full["wall_s"],
        "noop_vs_start": noop["wall_s"] / start["wall_s"],
    }


def main() -> None:
    new_events = int(os.environ.get("BENCH_NEW_EVENTS", "10000"))
    rounds = int(os.environ.get("BENCH_ROUNDS", "3"))
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
            results = []
            for round_no in range(rounds):
                print(f"--- round {round_no + 1} of {rounds}", flush=True)
                results.append(
                    one_round(platform, source_url, rep.wait_caught_up, new_events, 2 + round_no)
                )
    report(results, new_events)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(
        json.dumps({"rows": counts, "new_events": new_events, "rounds": results}, indent=2)
    )
    print(f"\nresults: {RESULTS}")


def report(results: list[dict[str, Any]], new_events: int) -> None:
    """One column per round and the medians; every ratio is against its own round's full build
    (or, for the no-op, its own round's dbt start)."""

    def seconds(key: str, part: str = "wall_s") -> list[float]:
        return [r[key][part] if isinstance(r[key], dict) else r[key] for r in results]

    rows: list[tuple[str, list[float], str]] = [
        ("full dbt build (models + tests)", seconds("full"), "s"),
        ("  of which model nodes (summed over threads)", seconds("full", "model_s"), "s"),
        ("  of which test nodes (summed over threads)", seconds("full", "test_s"), "s"),
        ("same model SQL with psql", seconds("psql_s"), "s"),
        ("dbt overhead: full build / psql",
         [r["full"]["wall_s"] / r["psql_s"] for r in results], "x"),
        ("first incremental build after the full build", seconds("first_incremental_s"), "s"),
        (f"incremental build after {new_events:,} events", seconds("incremental"), "s"),
        ("  ratio to the full build", seconds("incremental_vs_full"), "%"),
        ("incremental build with no new events (no-op)", seconds("noop"), "s"),
        ("  ratio to the full build", seconds("noop_vs_full"), "%"),
        ("dbt's own start (a build selecting nothing)", seconds("start_s"), "s"),
        ("  no-op / dbt's start", seconds("noop_vs_start"), "x"),
    ]  # fmt: skip
    header = "".join(f"{'round ' + str(i + 1):>10}" for i in range(len(results)))
    print(f"\n{'measure':48}{header}{'median':>10}")
    for name, values, unit in rows:
        shown = [*values, statistics.median(values)]
        cells = "".join(_cell(v, unit) for v in shown)
        print(f"{name:48}{cells}")


def _cell(value: float, unit: str) -> str:
    if unit == "%":
        return f"{value:10.1%}"
    if unit == "x":
        return f"{value:9.2f}x"
    return f"{value:10.2f}"


if __name__ == "__main__":
    main()
