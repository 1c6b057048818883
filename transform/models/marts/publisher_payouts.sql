-- What each publisher earned (net of fees and refunds) against what it was paid, per currency.
-- Rebuilt on each run from daily_publisher_revenue (daily_revenue summed over games).
with money as (
    select
        publisher_id,
        currency,
        sum(net_amount) as earned_net,
        -sum(payout_amount) as paid_out,
        max(revenue_date) as last_activity_date
    from {{ ref('daily_publisher_revenue') }}
    group by publisher_id, currency
)

select
    m.publisher_id,
    p.publisher_name,
    m.currency,
    cast(m.earned_net as numeric(18, 2)) as earned_net,
    cast(m.paid_out as numeric(18, 2)) as paid_out,
    cast(m.earned_net - m.paid_out as numeric(18, 2)) as balance_due,
    m.last_activity_date,
    cast('{{ invocation_id }}' as varchar(36)) as zetl_invocation_id
from money as m
inner join {{ ref('stg_publisher') }} as p
    on p.publisher_id = m.publisher_id
