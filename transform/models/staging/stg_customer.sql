-- A player of the storefront (personal data null after erasure). Renames and types only.
select
    cast(id as bigint) as customer_id,
    cast(customer_code as varchar(32)) as customer_code,
    cast(display_name as varchar(200)) as display_name,
    cast(email as varchar(320)) as email,
    cast(country_code as varchar(2)) as country_code,
    cast(kyc_status as varchar(16)) as kyc_status,
    cast(kyc_approved_at as timestamptz) as kyc_approved_at,
    cast(signed_up_at as timestamptz) as signed_up_at,
    cast(referred_by_affiliate_id as bigint) as referred_by_affiliate_id,
    cast(created_at as timestamptz) as created_at,
    cast(updated_at as timestamptz) as updated_at
from {{ source('replica', 'customer') }}
