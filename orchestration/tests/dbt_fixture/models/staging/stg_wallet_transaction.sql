select
    id as wallet_transaction_id,
    customer_id,
    transaction_type,
    (occurred_at at time zone 'UTC')::date as activity_date,
    currency,
    amount
from {{ source('raw', 'wallet_transaction') }}
