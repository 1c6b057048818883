{#- The customers of this run's units (every customer on a full build): code and audit time.
    Shared by the marts whose unit is a customer: daily_player_transactions and
    player_top_three_deposits. -#}
{% macro zetl_unit_customers(units) -%}
    select customer_id, customer_code, updated_at
    from {{ ref('stg_customer') }}
    {%- if is_incremental() %}
    where customer_id in {{ units }}
    {%- endif %}
{%- endmacro %}
