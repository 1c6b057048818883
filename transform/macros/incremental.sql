{#-
  The incremental rule of the marts (README.md, "Incremental builds"):

  Each incremental mart is split into units (a customer, a day, a block of transaction ids). A run
  recomputes whole units, never patches single rows:
    1. changed units: units of source rows whose updated_at is newer than the mart's watermark
       (the largest source updated_at it has seen) minus var('zetl_lookback_minutes');
    2. drifted units: units whose row count or amount total in the source differs from what the
       mart holds. Deletes leave no trace in a zero-ETL replica, so this comparison is how they
       (and rows moved from one unit to another) are found, at any age;
    3. the units' rows are deleted from the mart and their recomputed rows inserted, in one
       transaction (strategy `zetl_replace_units` below).
  The unit list is rendered into the model as literals so the replica-side filter is pushed down
  (postgres_fdw ships literals, not a join against a local table).
-#}

{#- The temporary table holding this run's units: created while the model renders, read again
    by the strategy in the same session (dbt compiles and runs a model on one connection). -#}
{% macro zetl_units_relation() -%}
  {{ return(api.Relation.create(identifier='zetl_units__' ~ this.identifier, type='table')) }}
{%- endmacro %}

{#-
  Find the units to recompute and return a SQL list of literals for `unit IN (...)`.
    changed:     SQL selecting column `unit` for rows changed after the timestamp `__WATERMARK__`
    source_fp:   SQL selecting `unit, n, total` per unit from the source
    target_fp:   SQL selecting `unit, n, total` per unit from the mart
  Only called when is_incremental(); offline rendering (the Redshift check) gets a placeholder.
-#}
{% macro zetl_affected_units(changed, source_fp, target_fp) -%}
  {%- if var('zetl_offline_render') or not execute -%}
    {{ return('(0)') }}
  {%- endif -%}
  {%- set watermark_sql -%}
    select max(source_updated_at) - interval '{{ env_var('ZETL_LOOKBACK_MINUTES', var('zetl_lookback_minutes') | string) }} minutes' from {{ this }}
  {%- endset -%}
  {%- set watermark = run_query(watermark_sql).columns[0].values()[0] -%}
  {#- A literal, so the filter on updated_at is shipped to the replica as it is. -#}
  {%- set since = "cast('" ~ (watermark if watermark is not none else '1900-01-01 00:00:00+00') ~ "' as timestamptz)" -%}
  {%- set units = zetl_units_relation() -%}
  {%- set build_units -%}
    drop table if exists {{ units }};
    create temporary table {{ units }} as
    select unit from ({{ changed | replace('__WATERMARK__', since) }}) as changed
    union
    select coalesce(s.unit, t.unit) as unit
    from ({{ source_fp }}) as s
    full outer join ({{ target_fp }}) as t on s.unit = t.unit
    where coalesce(s.n, -1) <> coalesce(t.n, -1) or coalesce(s.total, 0) <> coalesce(t.total, 0)
  {%- endset -%}
  {%- do run_query(build_units) -%}
  {%- set values = run_query('select unit from ' ~ units ~ ' where unit is not null order by unit').columns[0].values() -%}
  {%- do log('zetl: ' ~ this.identifier ~ ' recomputes ' ~ (values | length) ~ ' units', info=True) -%}
  {%- if values | length == 0 -%}
    {{ return('(null)') }}
  {%- endif -%}
  {%- set literals = [] -%}
  {%- for value in values -%}
    {%- if value is number -%}
      {%- do literals.append(value | string) -%}
    {%- else -%}
      {%- do literals.append("'" ~ value ~ "'") -%}
    {%- endif -%}
  {%- endfor -%}
  {{ return('(' ~ (literals | join(', ')) ~ ')') }}
{%- endmacro %}

{#- Custom incremental strategy: replace the units of this run (see the rule above). The mart's
    config names the unit expression over its own columns: unit_expression='customer_id'. -#}
{% macro get_incremental_zetl_replace_units_sql(arg_dict) -%}
  {%- set target = arg_dict['target_relation'] -%}
  {%- set columns = arg_dict['dest_columns'] | map(attribute='quoted') | join(', ') -%}
  delete from {{ target }}
  where {{ config.require('unit_expression') }} in (select unit from {{ zetl_units_relation() }});
  insert into {{ target }} ({{ columns }})
  select {{ columns }} from {{ arg_dict['temp_relation'] }};
  drop table if exists {{ zetl_units_relation() }}
{%- endmacro %}

{#- dbt's is_incremental(), except while `zetl transform check` renders models without a
    connection: then var('zetl_offline_render') says which branch to render ('full' or
    'incremental'), so both branches of every incremental model are checked for Redshift. -#}
{% macro is_incremental() -%}
  {%- if var('zetl_offline_render') -%}
    {{ return(var('zetl_offline_render') == 'incremental') }}
  {%- endif -%}
  {{ return(dbt.is_incremental()) }}
{%- endmacro %}
