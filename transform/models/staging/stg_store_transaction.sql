-- A storefront transaction header: sale, refund of an earlier sale, or payout to a publisher.
-- Renames and types only.
select
    cast(id as bigint) as transaction_id,
    cast(transaction_code as varchar(32)) as transaction_code,
    cast(transaction_type as varchar(8)) as transaction_type,
    cast(occurred_at as timestamptz) as occurred_at,
    cast(currency as varchar(3)) as currency,
    cast(total_amount as numeric(12, 2)) as total_amount,
    cast(customer_id as bigint) as customer_id,
    cast(refunded_transaction_id as bigint) as refunded_transaction_id,
    cast(created_at as timestamptz) as created_at,
    cast(updated_at as timestamptz) as updated_at
from {{ source('replica', 'store_transaction') }}
