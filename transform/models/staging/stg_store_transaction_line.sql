-- One line of a storefront transaction. Renames and types only.
select
    cast(id as bigint) as transaction_line_id,
    cast(transaction_id as bigint) as transaction_id,
    cast(line_number as smallint) as line_number,
    cast(transaction_type as varchar(8)) as transaction_type,
    cast(currency as varchar(3)) as currency,
    cast(game_id as bigint) as game_id,
    cast(platform as varchar(32)) as platform,
    cast(publisher_id as bigint) as publisher_id,
    -- `region` is a keyword in Redshift's grammar, and the source column's name.
    cast(region as varchar(16)) as region,  -- noqa: RF04
    cast(gross_amount as numeric(12, 2)) as gross_amount,
    cast(fee_amount as numeric(12, 2)) as fee_amount,
    cast(net_amount as numeric(12, 2)) as net_amount,
    cast(created_at as timestamptz) as created_at,
    cast(updated_at as timestamptz) as updated_at
from {{ source('replica', 'store_transaction_line') }}
