"""The page queries: marts in ``analytics`` and the monitoring relations, each with the
relations it needs (absent ones are empty states). Every query aggregates in the database and
returns at most a few thousand rows, so a page costs the same at any replica size. The SQL is
Redshift's (the dashboard reads the warehouse through the Redshift front, Redshift on AWS), so
no DISTINCT ON or aggregate FILTER: the front refuses what Redshift refuses."""

from __future__ import annotations

from typing import NamedTuple


class Query(NamedTuple):
    relations: tuple[str, ...]
    sql: str


DAILY_PUBLISHER_REVENUE = ("analytics.daily_publisher_revenue",)
# The Storefront reads two small marts, never the per-game detail of daily_revenue (about one
# row per sale line on a busy catalogue) but for one publisher's games in the period asked:
# daily_publisher_revenue (day, publisher, platform, currency) for each currency's revenue and
# dates, the days of the period (the window query; its index on currency and day serves it),
# from which the page sums its figures and charts, and game_revenue (game, currency) for the
# top games.
STOREFRONT_CURRENCIES = Query(
    DAILY_PUBLISHER_REVENUE,
    "SELECT currency, coalesce(sum(net_amount), 0) AS net, min(revenue_date) AS earliest,"
    " max(revenue_date) AS latest FROM analytics.daily_publisher_revenue GROUP BY currency"
    " ORDER BY net DESC NULLS LAST, currency",
)
STOREFRONT_WINDOW = Query(
    DAILY_PUBLISHER_REVENUE,
    "SELECT revenue_date, publisher_id, publisher_name, platform, sum(net_amount) AS net_amount,"
    " sum(gross_amount) AS gross_amount, sum(abs(refund_amount)) AS refund_amount,"
    " sum(sale_count) AS sale_count FROM analytics.daily_publisher_revenue"
    " WHERE currency = %s AND revenue_date BETWEEN %s AND %s GROUP BY 1, 2, 3, 4 ORDER BY 1",
)
# Days on which the storefront recorded any sale, in any currency: a day with data. On such a
# day a publisher or platform that sold nothing sold zero; a day without is a gap.
SALE_DAYS = Query(
    DAILY_PUBLISHER_REVENUE,
    "SELECT DISTINCT revenue_date AS day FROM analytics.daily_publisher_revenue"
    " WHERE revenue_date BETWEEN %s AND %s ORDER BY 1",
)
PUBLISHER_GAMES = Query(
    ("analytics.daily_revenue",),
    "SELECT game_title, platform, sum(net_amount) AS net_amount,"
    " sum(gross_amount) AS gross_amount, sum(abs(refund_amount)) AS refund_amount,"
    " sum(sale_count) AS sales FROM analytics.daily_revenue"
    " WHERE currency = %s AND publisher_id = %s AND revenue_date BETWEEN %s AND %s"
    " GROUP BY 1, 2 ORDER BY 3 DESC NULLS LAST, 1, 2",
)
TOP_GAMES = Query(
    ("analytics.game_revenue",),
    "SELECT game_title, sum(net_amount) AS net_amount, sum(sale_count) AS sales"
    " FROM analytics.game_revenue WHERE currency = %s GROUP BY 1"
    " ORDER BY 2 DESC NULLS LAST LIMIT 10",
)

PLAYER_CURRENCIES = Query(
    ("analytics.daily_player_transactions",),
    "SELECT currency, sum(total_deposits) AS net, min(activity_date) AS earliest,"
    " max(activity_date) AS latest FROM analytics.daily_player_transactions"
    " GROUP BY 1 ORDER BY 2 DESC NULLS LAST, 1",
)
DISCORD_DEPOSITS = Query(
    ("analytics.agg_discord_deposits_by_country",),
    "SELECT country_code, deposit_total, deposit_count, player_count"
    " FROM analytics.agg_discord_deposits_by_country WHERE currency = %s"
    " ORDER BY deposit_total DESC NULLS LAST",
)
TOP_DEPOSITORS = Query(
    ("analytics.player_top_three_deposits",),
    "SELECT customer_code, top_deposit_1, top_deposit_2, top_deposit_3"
    " FROM analytics.player_top_three_deposits WHERE currency = %s"
    " ORDER BY top_deposit_1 DESC NULLS LAST, customer_code LIMIT 10",
)
DAILY_WALLET = Query(
    ("analytics.daily_player_transactions",),
    "SELECT activity_date, sum(total_deposits) AS deposits,"
    " sum(abs(total_withdrawals)) AS withdrawals"
    " FROM analytics.daily_player_transactions WHERE currency = %s"
    " AND activity_date BETWEEN %s AND %s GROUP BY 1 ORDER BY 1",
)
# Days with any wallet activity, in any currency (as SALE_DAYS for the Storefront).
WALLET_DAYS = Query(
    ("analytics.daily_player_transactions",),
    "SELECT DISTINCT activity_date AS day FROM analytics.daily_player_transactions"
    " WHERE activity_date BETWEEN %s AND %s ORDER BY 1",
)

RECONCILIATION_SUMMARY = Query(
    ("analytics.transaction_reconciliation",),
    "SELECT count(*) AS transactions, count(CASE WHEN is_mismatched THEN 1 END) AS flagged,"
    " coalesce(sum(CASE WHEN is_mismatched THEN abs(difference) END), 0) AS flagged_difference"
    " FROM analytics.transaction_reconciliation",
)
FLAGGED_BY_DAY = Query(
    ("analytics.transaction_reconciliation",),
    "SELECT (occurred_at AT TIME ZONE 'UTC')::date AS day, transaction_type, count(*) AS flagged"
    " FROM analytics.transaction_reconciliation WHERE is_mismatched GROUP BY 1, 2 ORDER BY 1",
)
FLAGGED = Query(
    ("analytics.transaction_reconciliation",),
    "SELECT transaction_code, transaction_type, occurred_at, currency, header_total,"
    " lines_total, difference, line_count FROM analytics.transaction_reconciliation"
    " WHERE is_mismatched ORDER BY occurred_at DESC LIMIT 200",
)

LAG = Query(
    ("zetl.lag_history",),
    "SELECT sampled_at, lag_seconds FROM zetl.lag_history"
    " WHERE sampled_at > now() - make_interval(mins => %s) ORDER BY sampled_at",
)
CHECKPOINT_LAST = Query(
    ("zetl_dq.checkpoint_result",),
    "SELECT checkpoint, success, finished_at, evaluated, successful, failed FROM ("
    " SELECT *, row_number() OVER (PARTITION BY checkpoint"
    " ORDER BY finished_at DESC NULLS LAST) AS latest FROM zetl_dq.checkpoint_result) runs"
    " WHERE latest = 1 ORDER BY checkpoint",
)
CHECKPOINT_HISTORY = Query(
    ("zetl_dq.checkpoint_result",),
    "SELECT checkpoint, finished_at, CASE WHEN success THEN 'pass' ELSE 'fail' END AS outcome"
    " FROM zetl_dq.checkpoint_result WHERE finished_at IS NOT NULL"
    " ORDER BY finished_at DESC LIMIT 500",
)
# How fresh a business page is: when the marts were last built, and how far the replica they
# read holds the source (the latest lag sample: its time less the lag then).
MARTS_BUILT = Query(
    ("zetl_transform.run_log",),
    "SELECT max(finished_at) AS built_at FROM zetl_transform.run_log WHERE success",
)
REPLICA_APPLIED = Query(
    ("zetl.lag_history",),
    "SELECT sampled_at, lag_seconds FROM zetl.lag_history WHERE lag_seconds IS NOT NULL"
    " ORDER BY sampled_at DESC LIMIT 1",
)
TRANSFORM_LAST = Query(
    ("zetl_transform.run_log",),
    "SELECT started_at, finished_at, success, command, models_ok, models_error,"
    " tests_failed, message FROM zetl_transform.run_log"
    " ORDER BY started_at DESC LIMIT 1",
)
DAG_RUN_LAST = Query(
    ("zetl_orchestration.dag_run",),
    "SELECT dag_id, run_id, started_at, finished_at, outcome, reason"
    " FROM zetl_orchestration.dag_run ORDER BY started_at DESC LIMIT 5",
)
