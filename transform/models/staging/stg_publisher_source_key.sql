-- Lineage: a source publisher code and the canonical publisher it was merged into. Renames and
-- types only.
select
    cast(id as bigint) as publisher_source_key_id,
    cast(source_key as varchar(32)) as source_key,
    cast(source_name as varchar(200)) as source_name,
    cast(publisher_id as bigint) as publisher_id,
    cast(created_at as timestamptz) as created_at,
    cast(updated_at as timestamptz) as updated_at
from {{ source('replica', 'publisher_source_key') }}
