-- A single-use referral code from an acquisition channel. Renames and types only.
select
    cast(id as bigint) as affiliate_id,
    cast(affiliate_code as varchar(32)) as affiliate_code,
    cast(origin as varchar(32)) as origin,
    cast(redeemed_at as timestamptz) as redeemed_at,
    cast(created_at as timestamptz) as created_at,
    cast(updated_at as timestamptz) as updated_at
from {{ source('replica', 'affiliate') }}
