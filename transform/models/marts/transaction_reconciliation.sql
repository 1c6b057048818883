{{ config(
    materialized='incremental',
    incremental_strategy='zetl_replace_units',
    unit_expression='transaction_id / 1000',
    indexes=postgres_indexes([{'columns': ['transaction_id']}, {'columns': ['zetl_invocation_id']},
             {'columns': ['source_updated_at']}]),
    on_schema_change='fail',
) }}
{#- Incremental unit: a block of 1000 transaction ids (transaction_id / 1000). Changed blocks:
    blocks of changed headers or lines. Drifted blocks: header and line counts or totals differ
    from the replica's (deletes). See README.md. -#}
{%- if is_incremental() %}
  {%- set headers = ref('stg_store_transaction') -%}
  {%- set lines = ref('stg_store_transaction_line') -%}
  {%- set units = zetl_affected_units(
      changed="select transaction_id / 1000 as unit from " ~ headers ~ " where updated_at > __WATERMARK__"
          ~ " union select transaction_id / 1000 from " ~ lines ~ " where updated_at > __WATERMARK__",
      source_fp="select unit, sum(n) as n, sum(total) as total from ("
          ~ "select transaction_id / 1000 as unit, count(*) as n, sum(total_amount) as total from " ~ headers
          ~ " group by transaction_id / 1000 union all "
          ~ "select transaction_id / 1000 as unit, count(*) as n, sum(gross_amount) as total from " ~ lines
          ~ " group by transaction_id / 1000) as fp group by unit",
      target_fp="select transaction_id / 1000 as unit, count(*) + sum(line_count) as n,"
          ~ " sum(header_total) + sum(lines_total) as total from " ~ this ~ " group by transaction_id / 1000",
      source_total="select sum(n) as n, sum(total) as total from ("
          ~ "select count(*) as n, sum(total_amount) as total from " ~ headers ~ " where __UNCHANGED__ union all "
          ~ "select count(*) as n, sum(gross_amount) as total from " ~ lines ~ " where __UNCHANGED__) as fp",
      target_total="select count(*) + sum(line_count) as n, sum(header_total) + sum(lines_total) as total from "
          ~ this ~ " where __UNCHANGED__",
      source_unit="transaction_id / 1000",
  ) -%}
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
    -- A header without lines is a mismatch too; never null.
    case
        when l.line_count is not null and h.total_amount = l.lines_total then false
        else true
    end as is_mismatched,
    case
        when l.updated_at > h.updated_at then l.updated_at else h.updated_at
    end as source_updated_at,
    cast('{{ invocation_id }}' as varchar(36)) as zetl_invocation_id
from headers as h
left join line_totals as l
    on l.transaction_id = h.transaction_id
