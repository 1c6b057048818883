select
    w.customer_id,
    c.customer_code,
    w.activity_date,
    w.currency,
    coalesce(sum(w.amount) filter (where w.transaction_type = 'deposit'), 0) as total_deposits,
    coalesce(sum(w.amount) filter (where w.transaction_type = 'withdrawal'), 0)
        as total_withdrawals,
    count(*) filter (where w.transaction_type = 'deposit') as deposit_count,
    count(*) filter (where w.transaction_type = 'withdrawal') as withdrawal_count
from {{ ref('stg_wallet_transaction') }} as w
join {{ ref('stg_customer') }} as c on c.customer_id = w.customer_id
group by 1, 2, 3, 4
