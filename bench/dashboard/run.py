"""Dashboard pages against marts built from a replica of over a million rows.

The real path end to end: a storefront export of ``--lines`` lines and a players export are
loaded into a source Postgres (zetl load), replicated into the warehouse (the replicator, until
every table is Synced), and the marts are built by dbt (zetl transform's build). Then, per page:

- its queries, uncached, as the dashboard runs them (median of ``--repeat`` runs);
- the whole page rendered by Streamlit's AppTest, first with an empty cache, then cached;
- the baseline, side by side in the same run: the same figures read from the replica's raw
  tables instead of the marts (what a page would cost without them).

  python -m bench.dashboard.run [--lines 1000000] [--players 20000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg2

from bench.replica import COPY_TIMEOUT, replicating
from tests.harness import SOURCE_SETTINGS, running_postgres
from tests.support import wait_for
from zetl.integration import TableState
from zetl.schema.migrate import upgrade

ROOT = Path(__file__).resolve().parents[2]
PAGES = ROOT / "services" / "dashboard" / "src" / "zetl_dashboard" / "screens"
REPLICA = "raw_transactions"
MARTS = (
    "daily_revenue", "daily_publisher_revenue", "game_revenue", "daily_player_transactions",
    "transaction_reconciliation", "player_top_three_deposits", "agg_discord_deposits_by_country",
)  # fmt: skip
# The Storefront's heaviest figure, from the raw replica (through the link) instead of the mart.
RAW_REVENUE_BY_PUBLISHER = """
SELECT (t.occurred_at AT TIME ZONE 'UTC')::date AS day, p.name, sum(l.net_amount)
FROM raw_transactions_public.store_transaction_line l
JOIN raw_transactions_public.store_transaction t ON t.id = l.transaction_id
JOIN raw_transactions_public.publisher p ON p.id = l.publisher_id
WHERE t.currency = %s GROUP BY 1, 2
"""


# The baseline of the Storefront's own figures, side by side in the same run: the page's queries
# as they were before the summary marts, each scanning the per-game detail of daily_revenue.
DETAIL_STOREFRONT = {
    "STOREFRONT_CURRENCIES": (
        "SELECT currency, coalesce(sum(net_amount), 0) AS net, min(revenue_date) AS earliest,"
        " max(revenue_date) AS latest FROM analytics.daily_revenue GROUP BY currency"
        " ORDER BY net DESC NULLS LAST, currency"
    ),
    "STOREFRONT_WINDOW": (
        "SELECT revenue_date, publisher_id, publisher_name, platform,"
        " sum(net_amount) AS net_amount, sum(gross_amount) AS gross_amount,"
        " sum(abs(refund_amount)) AS refund_amount, sum(sale_count) AS sale_count"
        " FROM analytics.daily_revenue WHERE currency = %s AND revenue_date BETWEEN %s AND %s"
        " GROUP BY 1, 2, 3, 4 ORDER BY 1"
    ),
    "TOP_GAMES": (
        "SELECT game_title, sum(net_amount) AS net_amount, sum(sale_count) AS sales"
        " FROM analytics.daily_revenue WHERE currency = %s GROUP BY 1"
        " ORDER BY 2 DESC NULLS LAST LIMIT 10"
    ),
}


def timed(fn: Any, *args: Any) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def median_of(repeat: int, fn: Any, *args: Any) -> float:
    return statistics.median(timed(fn, *args) for _ in range(repeat))


def export(directory: Path, lines: int, players: int) -> None:
    """The generator's exports, through the command line as a person makes them."""
    for args in (
        ["--format", "storefront", "--rows", str(lines)],
        ["--format", "players", "--rows", str(players)],
    ):
        subprocess.run(
            [sys.executable, "-m", "zetl", "generate", "export", *args, "--seed", "3",
             "--out", str(directory)],
            check=True,
            stdout=subprocess.DEVNULL,
        )  # fmt: skip


def replicate(source_url: str, warehouse_url: str) -> float:
    """Seconds until the replicator's initial copy has every table Synced."""

    def synced(replica_url: str) -> bool:
        try:
            with psycopg2.connect(replica_url) as conn, conn.cursor() as cur:
                cur.execute(
                    "SELECT count(*), count(*) FILTER (WHERE state = %s) FROM zetl.table_state",
                    (TableState.SYNCED.value,),
                )
                total, done = cur.fetchone()  # type: ignore[misc]
        except psycopg2.Error:  # the replica database does not exist yet
            return False
        return bool(total >= 8 and total == done)

    start = time.perf_counter()
    with replicating(source_url, warehouse_url, REPLICA) as replica:
        wait_for(lambda: synced(replica.url), "every table Synced", timeout=COPY_TIMEOUT)
        return time.perf_counter() - start


def replica_rows(warehouse_url: str) -> int:
    replica_url = warehouse_url.rsplit("/", 1)[0] + f"/{REPLICA}"
    with psycopg2.connect(replica_url) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT sum(n_live_tup)::bigint FROM pg_stat_user_tables WHERE schemaname = 'public'"
        )
        row = cur.fetchone()
        return int(row[0]) if row and row[0] else 0


def page_queries() -> dict[str, list[Callable[[str], object]]]:
    """Per page, the reads it makes, each given the warehouse URL."""
    from zetl_dashboard import queries as q
    from zetl_dashboard.data import read, read_table_states

    def reading(query: Any, *params: Any) -> Callable[[str], object]:
        return lambda url: read(url, query.relations, query.sql, params)

    return {
        "storefront": [
            reading(q.MARTS_BUILT),
            reading(q.REPLICA_APPLIED),
            reading(q.STOREFRONT_CURRENCIES),
            reading(q.STOREFRONT_WINDOW, "USD", "1900-01-01", "2999-12-31"),
            reading(q.SALE_DAYS, "1900-01-01", "2999-12-31"),
            reading(q.TOP_GAMES, "USD"),
        ],
        "players": [
            reading(q.MARTS_BUILT),
            reading(q.REPLICA_APPLIED),
            reading(q.PLAYER_CURRENCIES),
            reading(q.DISCORD_DEPOSITS, "USD"),
            reading(q.DAILY_WALLET, "USD", "1900-01-01", "2999-12-31"),
            reading(q.WALLET_DAYS, "1900-01-01", "2999-12-31"),
            reading(q.TOP_DEPOSITORS, "USD"),
        ],
        "reconciliation": [
            reading(q.MARTS_BUILT),
            reading(q.REPLICA_APPLIED),
            reading(q.RECONCILIATION_SUMMARY),
            reading(q.FLAGGED_BY_DAY),
            reading(q.FLAGGED),
        ],
        "health": [
            read_table_states,
            reading(q.LAG, 60),
            reading(q.CHECKPOINT_LAST),
            reading(q.CHECKPOINT_HISTORY),
            reading(q.TRANSFORM_LAST),
            reading(q.DAG_RUN_LAST),
        ],
    }


def measure_pages(dev_url: str, repeat: int) -> dict[str, dict[str, float]]:
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    os.environ["WAREHOUSE_DATABASE_URL"] = dev_url
    results: dict[str, dict[str, float]] = {}
    # A served dashboard has imported Streamlit, pandas and altair before anyone asks for a
    # page: one throw-away render does that here, so "uncached" means the data, not Python.
    AppTest.from_file(str(PAGES / "health.py"), default_timeout=120).run()
    for page, queries in page_queries().items():

        def run_queries(batch: list[Callable[[str], object]] = queries) -> None:
            for one in batch:
                one(dev_url)

        st.cache_data.clear()
        app = AppTest.from_file(str(PAGES / f"{page}.py"), default_timeout=120)
        render_cold = timed(app.run)
        if app.exception:
            raise SystemExit(f"{page}: {app.exception[0].message}")
        render_cached = median_of(repeat, app.run)
        results[page] = {
            "queries_uncached_s": round(median_of(repeat, run_queries), 3),
            "page_render_uncached_s": round(render_cold, 3),
            "page_render_cached_s": round(render_cached, 3),
        }
    results["storefront_from_detail"] = storefront_from_detail(dev_url, repeat)
    return results


def storefront_from_detail(dev_url: str, repeat: int) -> dict[str, float]:
    """The baseline: the Storefront rendered and queried as before its summary marts, with its
    three queries pointed back at daily_revenue (same page code, same run)."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from zetl_dashboard import queries as q
    from zetl_dashboard.data import read

    saved = {name: getattr(q, name) for name in DETAIL_STOREFRONT}
    try:
        for name, text in DETAIL_STOREFRONT.items():
            setattr(q, name, q.Query(("analytics.daily_revenue",), text))
        batch = [
            (q.STOREFRONT_CURRENCIES, ()),
            (q.STOREFRONT_WINDOW, ("USD", "1900-01-01", "2999-12-31")),
            (q.TOP_GAMES, ("USD",)),
        ]

        def run_queries() -> None:
            for query, params in batch:
                read(dev_url, query.relations, query.sql, params)

        st.cache_data.clear()
        app = AppTest.from_file(str(PAGES / "storefront.py"), default_timeout=120)
        render_cold = timed(app.run)
        if app.exception:
            raise SystemExit(f"storefront (detail): {app.exception[0].message}")
        return {
            "queries_uncached_s": round(median_of(repeat, run_queries), 3),
            "page_render_uncached_s": round(render_cold, 3),
            "page_render_cached_s": round(median_of(repeat, app.run), 3),
        }
    finally:
        for name, value in saved.items():
            setattr(q, name, value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--players", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    from zetl_loader.pipeline import run_load
    from zetl_transform.link import setup
    from zetl_transform.project import project_dir
    from zetl_transform.runner import build

    report: dict[str, Any] = {"lines": args.lines, "players": args.players}
    with (
        running_postgres(SOURCE_SETTINGS) as source,
        running_postgres({}) as warehouse,
        tempfile.TemporaryDirectory() as tmp,
    ):
        source.execute("CREATE DATABASE storefront")
        warehouse.execute("CREATE DATABASE dev")
        source_url, dev_url = source.url("storefront"), warehouse.url("dev")
        upgrade(source_url)
        export(Path(tmp), args.lines, args.players)
        report["load_s"] = round(timed(run_load, source_url, Path(tmp)), 1)
        print(f"loaded in {report['load_s']} s", file=sys.stderr)
        report["replicate_s"] = round(replicate(source_url, dev_url), 1)
        report["replica_rows"] = replica_rows(dev_url)
        print(
            f"replicated {report['replica_rows']} rows in {report['replicate_s']} s",
            file=sys.stderr,
        )
        setup(dev_url, REPLICA)
        start = time.perf_counter()
        outcome = build(
            project=project_dir(), warehouse_url=dev_url, replica_database=REPLICA,
            target="local", select=[], full_refresh=False,
        )  # fmt: skip
        report["dbt_build_s"] = round(time.perf_counter() - start, 1)
        if not outcome.success:
            raise SystemExit(f"dbt build failed: {outcome.message}")
        with psycopg2.connect(dev_url) as conn, conn.cursor() as cur:
            marts = {}
            for name in MARTS:
                cur.execute(f"SELECT count(*) FROM analytics.{name}")
                marts[name] = int(cur.fetchone()[0])  # type: ignore[index]
            report["mart_rows"] = marts
            cur.execute(
                "SELECT currency FROM analytics.daily_revenue"
                " GROUP BY 1 ORDER BY count(*) DESC LIMIT 1"
            )
            currency = cur.fetchone()[0]  # type: ignore[index]

            def raw() -> None:
                cur.execute(RAW_REVENUE_BY_PUBLISHER, (currency,))
                cur.fetchall()

            def from_mart() -> None:
                cur.execute(
                    "SELECT revenue_date, publisher_name, sum(net_amount)"
                    " FROM analytics.daily_revenue WHERE currency = %s GROUP BY 1, 2",
                    (currency,),
                )
                cur.fetchall()

            report["revenue_by_publisher_all_days"] = {
                "from_mart_s": round(median_of(args.repeat, from_mart), 3),
                "from_raw_replica_s": round(median_of(args.repeat, raw), 3),
            }
        report["pages"] = measure_pages(dev_url, args.repeat)
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
