{{ config(
    materialized='incremental',
    incremental_strategy='zetl_replace_units',
    unit_expression='revenue_date',
    indexes=postgres_indexes([{'columns': ['currency', 'revenue_date']}, {'columns': ['zetl_invocation_id']}]),
    on_schema_change='fail',
) }}
-- daily_revenue summed over games: one row per UTC day, publisher, platform and currency. What
-- the dashboard's Storefront charts and totals read (daily_revenue has about one row per sale
-- line on busy catalogues) and what publisher_payouts sums. Incremental by day, as its parent:
-- a run recomputes the days daily_revenue rewrote since (macros/incremental.sql,
-- zetl_rewritten_units).
{%- if is_incremental() %}
{%- set units = zetl_rewritten_units(ref('daily_revenue'), 'revenue_date') -%}
{%- endif %}

select
    revenue_date,
    publisher_id,
    max(publisher_name) as publisher_name,
    platform,
    currency,
    cast(sum(gross_amount) as numeric(18, 2)) as gross_amount,
    cast(sum(fee_amount) as numeric(18, 2)) as fee_amount,
    cast(sum(net_amount) as numeric(18, 2)) as net_amount,
    cast(sum(refund_amount) as numeric(18, 2)) as refund_amount,
    cast(sum(payout_amount) as numeric(18, 2)) as payout_amount,
    cast(sum(sale_count) as bigint) as sale_count,
    cast(sum(refund_count) as bigint) as refund_count,
    cast(sum(payout_count) as bigint) as payout_count,
    cast(sum(line_count) as bigint) as line_count,
    -- Every row of a day in daily_revenue carries the id of the run that wrote the day.
    cast(max(zetl_invocation_id) as varchar(36)) as source_invocation_id,
    cast('{{ invocation_id }}' as varchar(36)) as zetl_invocation_id
from {{ ref('daily_revenue') }}
{%- if is_incremental() %}
where revenue_date in {{ units }}
{%- endif %}
group by revenue_date, publisher_id, platform, currency
