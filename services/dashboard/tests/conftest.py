"""A warehouse database shaped as the marts' and monitors' contracts say, empty or filled."""

from __future__ import annotations

import psycopg2
import pytest

CONTRACT = """
CREATE SCHEMA analytics;
CREATE TABLE analytics.daily_revenue (
    revenue_date date, publisher_id bigint, game_id bigint, platform text, currency char(3),
    publisher_name text, game_title text, gross_amount numeric(14,2), fee_amount numeric(14,2),
    net_amount numeric(14,2), refund_amount numeric(14,2), sale_count bigint,
    refund_count bigint);
CREATE TABLE analytics.daily_publisher_revenue (
    revenue_date date, publisher_id bigint, publisher_name text, platform text,
    currency char(3), gross_amount numeric(18,2), fee_amount numeric(18,2),
    net_amount numeric(18,2), refund_amount numeric(18,2), sale_count bigint,
    refund_count bigint);
CREATE TABLE analytics.game_revenue (
    game_id bigint, game_title text, currency char(3), gross_amount numeric(18,2),
    net_amount numeric(18,2), refund_amount numeric(18,2), sale_count bigint,
    refund_count bigint);
CREATE TABLE analytics.daily_player_transactions (
    customer_id bigint, customer_code text, activity_date date, currency char(3),
    total_deposits numeric(14,2), total_withdrawals numeric(14,2), deposit_count bigint,
    withdrawal_count bigint);
CREATE TABLE analytics.agg_discord_deposits_by_country (
    country_code char(2), currency char(3), deposit_total numeric(14,2), deposit_count bigint,
    player_count bigint);
CREATE TABLE analytics.player_top_three_deposits (
    customer_id bigint, currency char(3), customer_code text, top_deposit_1 numeric(12,2),
    top_deposit_2 numeric(12,2), top_deposit_3 numeric(12,2));
CREATE TABLE analytics.transaction_reconciliation (
    transaction_id bigint, transaction_code text, transaction_type text,
    occurred_at timestamptz, currency char(3), header_total numeric(12,2),
    lines_total numeric(12,2), line_count bigint, difference numeric(12,2),
    is_mismatched boolean NOT NULL);
CREATE TABLE public.svv_integration_table_state (
    integration_id text, target_database text, schema_name text, table_name text,
    table_state text, table_last_replicated_checkpoint text, reason text,
    last_updated_timestamp timestamp, table_rows bigint, table_size bigint,
    is_history_mode boolean);
CREATE TABLE public.svv_integration (
    integration_id char(128), target_database char(128), state char(128), current_lag bigint,
    last_replicated_checkpoint char(128), total_tables_replicated bigint,
    total_tables_failed bigint);
CREATE SCHEMA zetl;
CREATE TABLE zetl.lag_history (
    sampled_at timestamptz, lag_seconds double precision, applied_lsn pg_lsn);
CREATE SCHEMA zetl_dq;
CREATE TABLE zetl_dq.checkpoint_result (
    run_id text, checkpoint text, started_at timestamptz, finished_at timestamptz,
    success boolean, evaluated int, successful int, failed int, failed_expectations jsonb,
    report text);
CREATE SCHEMA zetl_transform;
CREATE TABLE zetl_transform.run_log (
    run_id text, started_at timestamptz, finished_at timestamptz, success boolean,
    command text, selector text, full_refresh boolean, models_ok int, models_error int,
    tests_failed int, message text);
"""

ROWS = """
INSERT INTO analytics.daily_revenue
SELECT current_date - d, p, g, plat, 'USD', 'Publisher ' || p, 'Game ' || g,
       100 + d, 30, 70 + d, CASE WHEN d % 5 = 0 THEN -10 ELSE 0 END, 3,
       CASE WHEN d % 5 = 0 THEN 1 ELSE 0 END
FROM generate_series(0, 40) d, generate_series(1, 3) p, generate_series(1, 2) g,
     unnest(ARRAY['PC', 'PS5']) plat;
-- The Storefront's summaries, as dbt builds them from daily_revenue.
INSERT INTO analytics.daily_publisher_revenue
SELECT revenue_date, publisher_id, max(publisher_name), platform, currency, sum(gross_amount),
       sum(fee_amount), sum(net_amount), sum(refund_amount), sum(sale_count), sum(refund_count)
FROM analytics.daily_revenue GROUP BY revenue_date, publisher_id, platform, currency;
INSERT INTO analytics.game_revenue
SELECT game_id, max(game_title), currency, sum(gross_amount), sum(net_amount),
       sum(refund_amount), sum(sale_count), sum(refund_count)
FROM analytics.daily_revenue GROUP BY game_id, currency;
INSERT INTO analytics.daily_player_transactions
SELECT c, 'CUST-' || c, current_date - d, 'EUR', 50, -20, 1, 1
FROM generate_series(1, 20) c, generate_series(0, 30) d;
INSERT INTO analytics.agg_discord_deposits_by_country VALUES
  ('GB', 'EUR', 900, 12, 4), ('DE', 'EUR', 400, 5, 2);
INSERT INTO analytics.player_top_three_deposits VALUES
  (1, 'EUR', 'CUST-1', 100, 100, 50), (2, 'EUR', 'CUST-2', 80, NULL, NULL);
INSERT INTO analytics.transaction_reconciliation VALUES
  (1, 'T1', 'sale', now(), 'USD', 30, 30, 2, 0, false),
  (2, 'T2', 'sale', now(), 'USD', 30, 25, 2, 5, true);
INSERT INTO public.svv_integration_table_state (schema_name, table_name, table_state,
    last_updated_timestamp, table_rows)
VALUES ('public', 'customer', 'Synced', now(), 200), ('public', 'game', 'Synced', now(), 20);
INSERT INTO public.svv_integration VALUES
  ('6a2b1f0e', 'zetl_replica', 'CdcRefreshState', 400, '0/16B3748', 2, 0);
INSERT INTO zetl.lag_history
SELECT now() - make_interval(secs => s * 5), (s % 7) / 10.0, '0/16B3748'
FROM generate_series(0, 100) s;
INSERT INTO zetl_dq.checkpoint_result (run_id, checkpoint, started_at, finished_at, success,
    evaluated, successful, failed)
SELECT r::text, c, now() - make_interval(mins => r), now() - make_interval(mins => r),
       r <> 3, 10, 10 - (r = 3)::int, (r = 3)::int
FROM generate_series(1, 5) r, unnest(ARRAY['source_integrity', 'replica_parity', 'marts']) c;
INSERT INTO zetl_transform.run_log VALUES
  ('r1', now() - interval '1 minute', now(), true, 'build', null, false, 6, 0, 0, 'ok');
"""


def execute(url: str, statements: str) -> None:
    conn = psycopg2.connect(url)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(statements)
    finally:
        conn.close()


@pytest.fixture
def contract_url(warehouse_url: str) -> str:
    """The marts and monitors exist but hold nothing yet."""
    execute(warehouse_url, CONTRACT)
    return warehouse_url


@pytest.fixture
def filled_url(contract_url: str) -> str:
    execute(contract_url, ROWS)
    return contract_url
