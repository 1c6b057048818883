{{ config(
    materialized='incremental',
    incremental_strategy='zetl_replace_units',
    unit_expression='customer_id',
    indexes=postgres_indexes([{'columns': ['customer_id']}, {'columns': ['zetl_invocation_id']},
             {'columns': ['source_updated_at']}]),
    on_schema_change='fail',
    zetl_seen_rows=true,
) }}
{#- Incremental unit: one customer (all their days). See README.md, "Incremental builds". -#}
{%- if is_incremental() %}
  {%- set units = zetl_incremental_units({
      'changed': [
          {'relation': ref('stg_wallet_transaction'), 'id': 'wallet_transaction_id', 'unit': 'customer_id'},
          {'relation': ref('stg_customer'), 'id': 'customer_id', 'unit': 'customer_id'},
      ],
      'facts': [
          {'relation': ref('stg_wallet_transaction'), 'unit': 'customer_id', 'measure': 'amount'},
      ],
      'mart': {'count': 'deposit_count + withdrawal_count', 'measure': 'total_deposits + total_withdrawals'},
  }) -%}
{%- endif %}

with wallet as (
    select
        customer_id,
        {{ utc_date('occurred_at') }} as activity_date,
        currency,
        transaction_type,
        amount,
        updated_at
    from {{ ref('stg_wallet_transaction') }}
    {%- if is_incremental() %}
    where customer_id in {{ units }}
    {%- endif %}
),

customers as (
    {{ zetl_unit_customers(units) }}
),

daily as (
    select
        customer_id,
        activity_date,
        currency,
        sum(case when transaction_type = 'deposit' then amount else 0 end) as total_deposits,
        sum(case when transaction_type = 'withdrawal' then amount else 0 end) as total_withdrawals,
        sum(case when transaction_type = 'deposit' then 1 else 0 end) as deposit_count,
        sum(case when transaction_type = 'withdrawal' then 1 else 0 end) as withdrawal_count,
        max(updated_at) as updated_at
    from wallet
    group by customer_id, activity_date, currency
)

select
    d.customer_id,
    c.customer_code,
    d.activity_date,
    d.currency,
    cast(d.total_deposits as numeric(18, 2)) as total_deposits,
    cast(d.total_withdrawals as numeric(18, 2)) as total_withdrawals,
    cast(d.deposit_count as bigint) as deposit_count,
    cast(d.withdrawal_count as bigint) as withdrawal_count,
    case when c.updated_at > d.updated_at then c.updated_at else d.updated_at end
        as source_updated_at,
    cast('{{ invocation_id }}' as varchar(36)) as zetl_invocation_id
from daily as d
inner join customers as c
    on c.customer_id = d.customer_id
