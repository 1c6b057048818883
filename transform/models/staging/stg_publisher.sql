-- A canonical publisher. Renames and types only.
select
    cast(id as bigint) as publisher_id,
    cast(publisher_code as varchar(32)) as publisher_code,
    cast(name as varchar(200)) as publisher_name,
    cast(country_code as varchar(2)) as country_code,
    cast(created_at as timestamptz) as created_at,
    cast(updated_at as timestamptz) as updated_at
from {{ source('replica', 'publisher') }}
