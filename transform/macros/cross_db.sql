{#- Expressions whose spelling differs between Postgres and Redshift: one model SQL for both. -#}

{#- The UTC calendar date of a timestamptz. On Postgres the offset is an interval, not the text
    'UTC': postgres_fdw only ships functions whose arguments carry no collation, so this form is
    evaluated on the replica's side (filters and GROUP BYs pushed down) instead of locally. -#}
{% macro utc_date(column) -%}
  {{ return(adapter.dispatch('utc_date', 'zetl')(column)) }}
{%- endmacro %}

{% macro default__utc_date(column) -%}
  cast({{ column }} at time zone interval '0 hours' as date)
{%- endmacro %}

{% macro redshift__utc_date(column) -%}
  cast(convert_timezone('UTC', {{ column }}) as date)
{%- endmacro %}

{#- Indexes for the local (Postgres) warehouse only: Redshift has none (sort keys instead), and
    dbt-redshift's incremental materialization fails on an `indexes` config. -#}
{% macro postgres_indexes(indexes) %}
  {{- return(indexes if target.type == 'postgres' else []) -}}
{% endmacro %}
