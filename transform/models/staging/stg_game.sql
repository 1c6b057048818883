-- A canonical game of the catalogue. Renames and types only.
select
    cast(id as bigint) as game_id,
    cast(game_code as varchar(32)) as game_code,
    cast(title as varchar(200)) as title,
    cast(release_date as date) as release_date,
    cast(genre as varchar(64)) as genre,
    cast(created_at as timestamptz) as created_at,
    cast(updated_at as timestamptz) as updated_at
from {{ source('replica', 'game') }}
