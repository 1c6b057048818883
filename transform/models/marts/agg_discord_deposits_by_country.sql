-- Deposits of KYC-approved players whose referring affiliate came from Discord, by country and
-- currency. Built from the per-player deposit totals of player_top_three_deposits (incremental),
-- so a run costs one row per player, not one per deposit.
with players as (
    select
        c.customer_id,
        c.country_code
    from {{ ref('stg_customer') }} as c
    inner join {{ ref('stg_affiliate') }} as a
        on a.affiliate_id = c.referred_by_affiliate_id
    where
        c.kyc_status = 'approved'
        and a.origin = 'discord'
)

select
    p.country_code,
    t.currency,
    cast(sum(t.deposit_total) as numeric(18, 2)) as deposit_total,
    cast(sum(t.deposit_count) as bigint) as deposit_count,
    cast(count(distinct t.customer_id) as bigint) as player_count,
    cast('{{ invocation_id }}' as varchar(36)) as zetl_invocation_id
from {{ ref('player_top_three_deposits') }} as t
inner join players as p
    on p.customer_id = t.customer_id
group by p.country_code, t.currency
