"""Loader benchmark: `zetl load` beside a raw COPY of the same rows, in the same run.

For each size (transaction lines), on one throwaway Postgres (POSTGRES_IMAGE, testcontainers):
  1. generate a messy export (`zetl generate export --messy`'s writer; not timed),
  2. baseline: COPY every line of the same files, as is, into an unconstrained one-column text
     table — the cheapest way to get these rows into Postgres,
  3. `zetl load DIR` in a fresh migrated database, as a child process: wall time and peak RSS,
  4. the same load again (idempotent: nothing changes) and its time.
Usage, from the repository root:
  python -m bench.loader.run [--sizes 100000,1000000] [--out results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg2

from tests.harness import SOURCE_SETTINGS, PostgresServer, running_postgres
from zetl.schema.migrate import upgrade
from zetl_generator.export_storefront import StorefrontExport

EXPORT_FILES = ("publisher.csv", "game.csv", "transaction.csv", "transaction_detail.csv")


def data_rows(directory: Path) -> int:
    total = 0
    for name in EXPORT_FILES:
        with (directory / name).open("rb") as f:
            total += sum(1 for _ in f) - 1  # without the header
    return total


def raw_copy_seconds(url: str, directory: Path) -> float:
    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute("CREATE TABLE raw_line (line text)")
            conn.commit()
            started = time.perf_counter()
            for name in EXPORT_FILES:
                with (directory / name).open("rb") as f:
                    f.readline()  # the header, as the loader skips it
                    cur.copy_expert(
                        "COPY raw_line FROM STDIN WITH (FORMAT text, DELIMITER E'\\x1f')", f
                    )
            conn.commit()
            return time.perf_counter() - started
    finally:
        conn.close()


def timed_load(url: str, directory: Path, report: Path) -> tuple[float, int, dict[str, Any]]:
    """Run `zetl load` as a child; its wall time, peak RSS (KiB) and report."""
    env = {**os.environ, "SOURCE_DATABASE_URL": url, "ZETL_LOG_LEVEL": "WARNING"}
    started = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-m", "zetl", "load", str(directory), "--report", str(report)],
        env=env,
        stdout=subprocess.DEVNULL,
    )
    _, status, usage = os.wait4(child.pid, 0)
    elapsed = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode not in (0, 1):
        raise SystemExit(f"zetl load failed with exit code {child.returncode}")
    return elapsed, usage.ru_maxrss, json.loads(report.read_text())


def bench_size(server: PostgresServer, lines: int, workdir: Path) -> dict[str, Any]:
    export = workdir / f"export-{lines}"
    StorefrontExport(seed=7, messy=True).write(export, lines)
    rows = data_rows(export)
    database = server.create_database("bench")
    url = server.url(database)
    try:
        copy_s = raw_copy_seconds(url, export)
        upgrade(url)
        load_s, rss_kib, report = timed_load(url, export, workdir / f"report-{lines}.json")
        reload_s, _, again = timed_load(url, export, workdir / f"report-{lines}-again.json")
    finally:
        server.drop_database(database)
    changed = sum(c["inserted"] + c["updated"] for c in again["entities"].values())
    return {
        "lines": lines,
        "rows": rows,
        "raw_copy_s": round(copy_s, 2),
        "raw_copy_rows_per_s": round(rows / copy_s),
        "load_s": round(load_s, 2),
        "load_rows_per_s": round(rows / load_s),
        "load_vs_copy": round(copy_s / load_s, 3),
        "peak_rss_mib": round(rss_kib / 1024, 1),
        "reload_s": round(reload_s, 2),
        "reload_changed_rows": changed,
        "quarantined": sum(c["quarantined"] for c in report["entities"].values()),
        "balanced": report["balanced"],
        "load_phases_s": report["seconds"],
        "reload_phases_s": again["seconds"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    results = []
    with (
        tempfile.TemporaryDirectory(prefix="zetl-bench-") as tmp,
        running_postgres(SOURCE_SETTINGS) as server,
    ):
        for size in (int(s) for s in args.sizes.split(",")):
            result = bench_size(server, size, Path(tmp))
            results.append(result)
            print(json.dumps(result), flush=True)
    header = f"{'lines':>9} {'rows':>9} {'COPY rows/s':>12} {'load rows/s':>12} {'ratio':>6}"
    print(f"\n{header} {'peak RSS':>9} {'reload s':>9}")
    for r in results:
        print(
            f"{r['lines']:>9} {r['rows']:>9} {r['raw_copy_rows_per_s']:>12} "
            f"{r['load_rows_per_s']:>12} {r['load_vs_copy']:>6} {r['peak_rss_mib']:>6} MiB "
            f"{r['reload_s']:>9}"
        )
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
