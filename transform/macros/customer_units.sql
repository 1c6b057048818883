{#- The per-customer side of the incremental rule (incremental.sql), shared by the marts over the
    wallet: daily_player_transactions and player_top_three_deposits. A customer is the unit:
    changed when one of their wallet rows or their customer row changed since the watermark,
    drifted when their wallet rows' count or amount total in the replica differs from the mart's.
      wallet_filter: which wallet rows the mart counts (none: all of them)
      target_n, target_total: the mart's expressions of that count and total on one row -#}
{% macro zetl_customer_units(wallet_filter, target_n, target_total) -%}
  {%- set wallet = ref('stg_wallet_transaction') -%}
  {%- set where_filter = (' where ' ~ wallet_filter) if wallet_filter else '' -%}
  {%- set filter_and = (wallet_filter ~ ' and ') if wallet_filter else '' -%}
  {%- set target_sums = "sum(" ~ target_n ~ ") as n, sum(" ~ target_total ~ ") as total" -%}
  {%- do return(zetl_affected_units(
      changed="select customer_id as unit from " ~ wallet ~ " where updated_at > __WATERMARK__"
          ~ " union select customer_id from " ~ ref('stg_customer') ~ " where updated_at > __WATERMARK__",
      source_fp="select customer_id as unit, count(*) as n, sum(amount) as total from " ~ wallet
          ~ where_filter ~ " group by customer_id",
      target_fp="select customer_id as unit, " ~ target_sums ~ " from " ~ this ~ " group by customer_id",
      source_total="select count(*) as n, sum(amount) as total from " ~ wallet ~ " where "
          ~ filter_and ~ "__UNCHANGED__",
      target_total="select " ~ target_sums ~ " from " ~ this ~ " where __UNCHANGED__",
      source_unit="customer_id",
  )) -%}
{%- endmacro %}

{#- The customers of this run's units (every customer on a full build): code and audit time. -#}
{% macro zetl_unit_customers(units) -%}
    select customer_id, customer_code, updated_at
    from {{ ref('stg_customer') }}
    {%- if is_incremental() %}
    where customer_id in {{ units }}
    {%- endif %}
{%- endmacro %}
