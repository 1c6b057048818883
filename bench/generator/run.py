"""``make bench-generator``: the generator at full speed beside pgbench, same database, same run.

1. pgbench, one client, running ``purchase.sql``: the generator's purchase statement shape;
2. the generator with purchases only (the same work, with every rule enforced);
3. the generator with its default mix, for information.
The ratio (2)/(1) is the figure to read; the target is at least 0.5.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

from tests.harness import SOURCE_SETTINGS, running_postgres
from zetl.schema.migrate import upgrade
from zetl_generator.mix import EventKind, Mix
from zetl_generator.workload import Workload, WorkloadOptions

HERE = Path(__file__).parent
SECONDS = float(os.environ.get("BENCH_SECONDS", "30"))
PGBENCH = os.environ.get("PGBENCH", "/usr/lib/postgresql/15/bin/pgbench")


def only(kind: EventKind) -> Mix:
    return Mix.parse(",".join(f"{k.value}={int(k == kind)}" for k in EventKind))


def generator_rate(url: str, mix: Mix) -> float:
    workload = Workload(url, WorkloadOptions(duration_s=SECONDS, seed=11, mix=mix))
    return workload.run(threading.Event()).rate


def pgbench_rate(url: str) -> float:
    result = subprocess.run(
        [PGBENCH, "-n", "-c", "1", "-T", str(int(SECONDS)), "-f", str(HERE / "purchase.sql"), url],
        capture_output=True,
        text=True,
        check=True,
    )
    match = re.search(r"tps = ([\d.]+)", result.stdout)
    if match is None:
        sys.exit(f"pgbench printed no tps:\n{result.stdout}\n{result.stderr}")
    return float(match.group(1))


def main() -> None:
    with running_postgres(SOURCE_SETTINGS) as server:
        url = server.url(server.create_database("bench"))
        upgrade(url)
        # A starting population: players (most KYC-approved) and the catalogue.
        warmup = Mix.parse(",".join(f"{k.value}=0" for k in EventKind) + ",signup=3,kyc_decision=2")
        Workload(url, WorkloadOptions(max_events=3000, seed=1, mix=warmup)).run(threading.Event())
        baseline = pgbench_rate(url)
        purchases = generator_rate(url, only(EventKind.PURCHASE))
        results = {
            "pgbench_purchase_tps": baseline,
            "generator_purchase_tps": purchases,
            "generator_default_mix_tps": generator_rate(url, Mix.parse(None)),
            "ratio_purchase_vs_pgbench": round(purchases / baseline, 3),
            "seconds_each": SECONDS,
            "postgres_image": os.environ.get("POSTGRES_IMAGE", "postgres:17"),
        }
    out = Path("bench/results/generator.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    for key, value in results.items():
        print(f"{key:28} {value:.1f}" if isinstance(value, float) else f"{key:28} {value}")


if __name__ == "__main__":
    main()
