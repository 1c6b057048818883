select id as customer_id, customer_code, country_code from {{ source('raw', 'customer') }}
