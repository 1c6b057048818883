-- Every storefront transaction line with its header's business day, type and audit time: the
-- shape daily revenue is aggregated from. A view, so filters on revenue_date reach the replica.
select
    l.transaction_line_id,
    l.transaction_id,
    l.line_number,
    {{ utc_date('h.occurred_at') }} as revenue_date,
    h.transaction_type,
    l.currency,
    l.publisher_id,
    l.game_id,
    l.platform,
    l.gross_amount,
    l.fee_amount,
    l.net_amount,
    case when l.updated_at > h.updated_at then l.updated_at else h.updated_at end as updated_at
from {{ ref('stg_store_transaction_line') }} as l
inner join {{ ref('stg_store_transaction') }} as h
    on h.transaction_id = l.transaction_id
