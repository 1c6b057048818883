{{ config(
    indexes=postgres_indexes([{'columns': ['currency']}]),
) }}
-- daily_revenue summed over days, publishers and platforms: one row per game and currency,
-- for the dashboard's top games. Rebuilt on each run from daily_revenue (incremental).
select
    game_id,
    max(game_title) as game_title,
    currency,
    cast(sum(gross_amount) as numeric(18, 2)) as gross_amount,
    cast(sum(net_amount) as numeric(18, 2)) as net_amount,
    cast(sum(refund_amount) as numeric(18, 2)) as refund_amount,
    cast(sum(sale_count) as bigint) as sale_count,
    cast(sum(refund_count) as bigint) as refund_count,
    cast('{{ invocation_id }}' as varchar(36)) as zetl_invocation_id
from {{ ref('daily_revenue') }}
group by game_id, currency
