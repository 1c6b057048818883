{{ config(
    materialized='incremental',
    incremental_strategy='zetl_replace_units',
    unit_expression='customer_id',
    indexes=postgres_indexes([{'columns': ['customer_id']}, {'columns': ['zetl_invocation_id']},
             {'columns': ['source_updated_at']}]),
    on_schema_change='fail',
    zetl_seen_rows=true,
) }}
{#- Top-three rule: per player AND currency, deposits ranked by amount (largest first) with
    row_number(), so equal amounts take separate places (100, 100, 50 -> 100, 100, 50); the
    columns are null where the player made fewer deposits in that currency. Incremental unit:
    one customer. See README.md. -#}
{%- if is_incremental() %}
  {%- set units = zetl_incremental_units({
      'changed': [
          {'relation': ref('stg_wallet_transaction'), 'id': 'wallet_transaction_id', 'unit': 'customer_id'},
          {'relation': ref('stg_customer'), 'id': 'customer_id', 'unit': 'customer_id'},
      ],
      'facts': [
          {'relation': ref('stg_wallet_transaction'), 'unit': 'customer_id', 'measure': 'amount',
           'where': "transaction_type = 'deposit'"},
      ],
      'mart': {'count': 'deposit_count', 'measure': 'deposit_total'},
  }) -%}
{%- endif %}

with deposits as (
    select
        customer_id,
        currency,
        amount,
        updated_at,
        row_number() over (
            partition by customer_id, currency
            order by amount desc, wallet_transaction_id asc
        ) as deposit_rank
    from {{ ref('stg_wallet_transaction') }}
    where
        transaction_type = 'deposit'
        {%- if is_incremental() %}
        and customer_id in {{ units }}
        {%- endif %}
),

customers as (
    {{ zetl_unit_customers(units) }}
),

per_player as (
    select
        customer_id,
        currency,
        max(case when deposit_rank = 1 then amount end) as top_deposit_1,
        max(case when deposit_rank = 2 then amount end) as top_deposit_2,
        max(case when deposit_rank = 3 then amount end) as top_deposit_3,
        count(*) as deposit_count,
        sum(amount) as deposit_total,
        max(updated_at) as updated_at
    from deposits
    group by customer_id, currency
)

select
    p.customer_id,
    c.customer_code,
    p.currency,
    cast(p.top_deposit_1 as numeric(12, 2)) as top_deposit_1,
    cast(p.top_deposit_2 as numeric(12, 2)) as top_deposit_2,
    cast(p.top_deposit_3 as numeric(12, 2)) as top_deposit_3,
    cast(p.deposit_count as bigint) as deposit_count,
    cast(p.deposit_total as numeric(18, 2)) as deposit_total,
    case when c.updated_at > p.updated_at then c.updated_at else p.updated_at end
        as source_updated_at,
    cast('{{ invocation_id }}' as varchar(36)) as zetl_invocation_id
from per_player as p
inner join customers as c
    on c.customer_id = p.customer_id
