-- Lineage: a source game code and the canonical game it was merged into. Renames and types only.
select
    cast(id as bigint) as game_source_key_id,
    cast(source_key as varchar(32)) as source_key,
    cast(source_title as varchar(200)) as source_title,
    cast(game_id as bigint) as game_id,
    cast(created_at as timestamptz) as created_at,
    cast(updated_at as timestamptz) as updated_at
from {{ source('replica', 'game_source_key') }}
