-- A game sold on a platform under a publisher. Renames and types only.
select
    cast(id as bigint) as game_listing_id,
    cast(game_id as bigint) as game_id,
    cast(platform as varchar(32)) as platform,
    cast(publisher_id as bigint) as publisher_id,
    cast(created_at as timestamptz) as created_at,
    cast(updated_at as timestamptz) as updated_at
from {{ source('replica', 'game_listing') }}
