"""Translation time per statement, cached and uncached, for a 50-line Redshift model.

The model is written as a team writes a mart on Redshift (DATEADD, DATEDIFF, NVL, LISTAGG,
CONVERT_TIMEZONE, three-part names into the zero-ETL database, QUALIFY). Measured, in the same
run: the uncached translation (parse, refusal rules, rewrite, generation), the cached one (what
every later execution of the statement costs), and the baseline of a catalog query that is
PostgreSQL already (the token scan, then forwarded as written).

  python -m bench.redshift.translate [--repeat 2000]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable

from zetl_redshift.translate import cache_clear, translate

MODEL = """
with lines as (
    select
        l.id as line_id,
        l.transaction_id,
        l.publisher_id,
        l.game_id,
        nvl(l.net_amount, 0) as net_amount,
        nvl(l.fee_amount, 0) as fee_amount,
        l.gross_amount,
        convert_timezone('UTC', t.occurred_at) as occurred_at_utc,
        trunc(convert_timezone('UTC', t.occurred_at)) as revenue_date,
        t.currency,
        t.platform,
        decode(t.transaction_type, 'sale', 1, 'refund', -1, 0) as direction,
        t.updated_at
    from raw_transactions.public.store_transaction_line as l
    inner join raw_transactions.public.store_transaction as t
        on t.id = l.transaction_id
    where t.occurred_at >= dateadd(day, -90, getdate())
),
daily as (
    select
        revenue_date,
        publisher_id,
        game_id,
        platform,
        currency,
        sum(direction * gross_amount) as gross_amount,
        sum(direction * fee_amount) as fee_amount,
        sum(direction * net_amount) as net_amount,
        count(distinct transaction_id) as transactions,
        listagg(distinct platform, ',') within group (order by platform) as platforms,
        max(updated_at) as updated_at,
        datediff(day, min(occurred_at_utc), max(occurred_at_utc)) as active_days
    from lines
    group by revenue_date, publisher_id, game_id, platform, currency
)
select
    d.revenue_date,
    d.publisher_id,
    p.name as publisher_name,
    d.game_id,
    g.title as game_title,
    d.platform,
    d.currency,
    cast(d.gross_amount as numeric(18, 2)) as gross_amount,
    cast(d.net_amount as numeric(18, 2)) as net_amount,
    d.transactions,
    d.platforms,
    d.active_days
from daily as d
inner join raw_transactions.public.publisher as p on p.id = d.publisher_id
inner join raw_transactions.public.game as g on g.id = d.game_id
qualify row_number() over (partition by d.publisher_id order by d.net_amount desc) <= 100
"""
CATALOG_QUERY = (
    "select c.relname, a.attname, format_type(a.atttypid, a.atttypmod), i.indkey[0]"
    " from pg_catalog.pg_class c join pg_catalog.pg_attribute a on a.attrelid = c.oid"
    " left join pg_catalog.pg_index i on i.indrelid = c.oid"
    " where c.relnamespace = $1::regnamespace and a.attnum > 0 order by c.relname, a.attnum"
)


def timings(statement: str, repeat: int, *, cached: bool) -> list[float]:
    """Seconds per translation of ``statement``."""
    seconds = []
    translate(statement, database="dev")
    for _ in range(repeat):
        if not cached:
            cache_clear()
        started = time.perf_counter()
        translate(statement, database="dev")
        seconds.append(time.perf_counter() - started)
    return seconds


def summary(name: str, measure: Callable[[], list[float]]) -> dict[str, object]:
    seconds = sorted(measure())
    return {
        "case": name,
        "runs": len(seconds),
        "p50_ms": round(statistics.median(seconds) * 1000, 4),
        "p99_ms": round(seconds[int(len(seconds) * 0.99) - 1] * 1000, 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2000)
    args = parser.parse_args()
    lines = len(MODEL.strip().splitlines())
    uncached_runs = max(args.repeat // 10, 20)  # parsing is slow: fewer runs
    model = f"model ({lines} lines)"
    results = [
        summary(f"{model}, uncached", lambda: timings(MODEL, uncached_runs, cached=False)),
        summary(f"{model}, cached", lambda: timings(MODEL, args.repeat, cached=True)),
        summary("catalog query (PostgreSQL), uncached",
                lambda: timings(CATALOG_QUERY, args.repeat, cached=False)),
        summary("catalog query (PostgreSQL), cached",
                lambda: timings(CATALOG_QUERY, args.repeat, cached=True)),
    ]  # fmt: skip
    for result in results:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
