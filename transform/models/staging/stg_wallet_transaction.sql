-- Money a player moves into (deposit, > 0) or out of (withdrawal, < 0) the wallet. Renames and
-- types only.
select
    cast(id as bigint) as wallet_transaction_id,
    cast(wallet_transaction_code as varchar(32)) as wallet_transaction_code,
    cast(customer_id as bigint) as customer_id,
    cast(transaction_type as varchar(16)) as transaction_type,
    cast(occurred_at as timestamptz) as occurred_at,
    cast(currency as varchar(3)) as currency,
    cast(amount as numeric(12, 2)) as amount,
    cast(created_at as timestamptz) as created_at,
    cast(updated_at as timestamptz) as updated_at
from {{ source('replica', 'wallet_transaction') }}
