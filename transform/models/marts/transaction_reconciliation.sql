{{ config(
    materialized='incremental',
    incremental_strategy='zetl_replace_units',
    unit_expression='transaction_id / 1000',
    indexes=postgres_indexes([{'columns': ['transaction_id']}, {'columns': ['zetl_invocation_id']},
             {'columns': ['source_updated_at']}]),
    on_schema_change='fail',
    zetl_seen_rows=true,
) }}
{#- Incremental unit: a block of 1000 transaction ids (transaction_id / 1000). Changed blocks:
    blocks of changed headers or lines. Drifted blocks: header and line counts or totals differ
    from the replica's (deletes). See README.md. -#}
{%- if is_incremental() %}
  {%- set units = zetl_incremental_units({
      'changed': [
          {'relation': ref('stg_store_transaction'), 'id': 'transaction_id', 'unit': 'transaction_id / 1000'},
          {'relation': ref('stg_store_transaction_line'), 'id': 'transaction_line_id',
           'unit': 'transaction_id / 1000'},
      ],
      'facts': [
          {'relation': ref('stg_store_transaction'), 'unit': 'transaction_id / 1000', 'measure': 'total_amount'},
          {'relation': ref('stg_store_transaction_line'), 'unit': 'transaction_id / 1000', 'measure': 'gross_amount'},
      ],
      'mart': {'count': '1 + line_count', 'measure': 'header_total + lines_total'},
  }) -%}
{%- endif %}

with headers as (
    select *
    from {{ ref('stg_store_transaction') }}
    {%- if is_incremental() %}
    where transaction_id / 1000 in {{ units }}
    {%- endif %}
),

line_totals as (
    select
        transaction_id,
        sum(gross_amount) as lines_total,
        count(*) as line_count,
        max(updated_at) as updated_at
    from {{ ref('stg_store_transaction_line') }}
    {%- if is_incremental() %}
    where transaction_id / 1000 in {{ units }}
    {%- endif %}
    group by transaction_id
)

select
    h.transaction_id,
    h.transaction_code,
    h.transaction_type,
    h.occurred_at,
    h.currency,
    h.total_amount as header_total,
    cast(coalesce(l.lines_total, 0) as numeric(18, 2)) as lines_total,
    cast(coalesce(l.line_count, 0) as bigint) as line_count,
    cast(h.total_amount - coalesce(l.lines_total, 0) as numeric(18, 2)) as difference,
    -- A header without lines is a mismatch too; never null. (The case reads better than
    -- sqlfluff's not coalesce(..., false).)
    case
        when l.line_count is not null and h.total_amount = l.lines_total then false  -- noqa: ST02
        else true
    end as is_mismatched,
    case
        when l.updated_at > h.updated_at then l.updated_at else h.updated_at
    end as source_updated_at,
    cast('{{ invocation_id }}' as varchar(36)) as zetl_invocation_id
from headers as h
left join line_totals as l
    on l.transaction_id = h.transaction_id
