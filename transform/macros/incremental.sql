{#-
  The incremental rule of the marts (README.md, "Incremental builds"):

  Each incremental mart is split into units (a customer, a day, a block of transaction ids). A run
  recomputes whole units, never patches single rows:
    1. changed units: units of source rows whose updated_at is newer than the mart's watermark
       (the largest source updated_at it has seen) minus var('zetl_lookback_minutes'), and
       that the mart's last run had not read already: that run kept the (row, updated_at) of
       every row in its lookback window (`seen rows`, below), so a run with nothing new
       recomputes nothing, however long the lookback;
    2. drifted units: units whose row count or amount total in the source differs from what the
       mart holds. Deletes leave no trace in a zero-ETL replica, so this comparison is how they
       (and rows moved from one unit to another) are found, at any age. It runs only when one
       count and sum over all the units that did not change differs between source and mart
       (zetl_incremental_units below): most runs see no delete and skip it;
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

{#- The rows of this run's lookback window (source, id, updated_at, unit), a temporary table
    like the units: kept as the mart's seen rows when the strategy writes the mart. -#}
{% macro zetl_window_relation() -%}
  {{ return(api.Relation.create(identifier='zetl_window__' ~ this.identifier, type='table')) }}
{%- endmacro %}

{#-
  Seen rows: the window rows (which source, the row's id, its updated_at) the mart's last
  incremental run read, written with the mart in one transaction (strategy below), beside the
  mart in its schema. A window row is new when its (source, id, updated_at) is not among them:
  a row changes its updated_at on every real change (the source's trigger), so a row already
  seen with the same updated_at is already in the mart. A full build forgets them (pre-hook
  zetl_forget_seen_rows: the next run treats its whole window as new, which is always right).
  Marts using them say so in their config: zetl_seen_rows=true.
-#}
{% macro zetl_seen_relation() -%}
  {{ return(this.incorporate(path={'identifier': this.identifier ~ '__zetl_seen'})) }}
{%- endmacro %}

{#- Pre-hook of the marts (dbt_project.yml): a build that is not incremental drops the seen
    rows of a mart that keeps them (an empty SQL, which dbt skips, otherwise). -#}
{% macro zetl_forget_seen_rows() -%}
  {%- if config.get('zetl_seen_rows') and not var('zetl_offline_render') and not is_incremental() -%}
    drop table if exists {{ zetl_seen_relation() }}
  {%- endif -%}
{%- endmacro %}

{#-
  The unit spec of an incremental mart: what it recomputes by, declared once in the model, and
  turned into the queries of steps 1 and 2 by zetl_incremental_units below. A dict:
    changed:    where changed units come from, a list of sources, each
                  {'relation': r, 'id': r's bigint key, 'unit': the unit's expression over r's
                   columns}: a unit of r's rows whose updated_at is newer than the watermark;
                  'through': {'relation': c, 'key': k, 'id': c's bigint key} instead takes the
                  units of r's rows whose rows in c (joined on k) changed; then `unit` reads r
                  as `parent`
    dimensions: optional, a list of {'relation': d, 'key': k}: the mart's units holding a row of
                d (k is a column of both, d's bigint key) changed since the watermark, e.g. a
                renamed game
    facts:      what the mart counts and sums, in the replica, a list of
                  {'relation': r, 'unit': the unit over r, 'measure': the amount one row adds,
                   'where': optional filter}: n = rows, total = sum(measure), per unit;
                  optional 'all': a relation with the same rows and measure as r but no unit,
                  cheaper to read, for the check over every unit (a run that changed none):
                  the lines alone rather than the lines joined to their headers
    mart:       the same count and total over the mart's own rows: {'count': how many fact rows
                one mart row stands for, 'measure': their amount}
  The mart's own unit is its config's unit_expression (the strategy deletes by it).
  A unit drifted when n or total differ between facts and mart (deletes). The drift comparison
  per unit reads and groups the whole fact table, so it runs only when it can find something:
  when the units that did not change hold, all together, a different n or total in the source
  than in the mart. Outside the changed units a row can only disappear (a delete, or an update
  that moved it to another unit, which is then a changed unit); it cannot appear without a new
  updated_at. So one ungrouped count and sum, which the replica computes and ships back as one
  row, says whether a delete happened anywhere, at any age.
  Returns the units as a SQL list of literals for `unit IN (...)`. Only called when
  is_incremental(); offline rendering (the Redshift check) gets a placeholder.
-#}
{% macro zetl_incremental_units(spec) -%}
  {%- if var('zetl_offline_render') or not execute -%}
    {{ return('(0)') }}
  {%- endif -%}
  {%- set units = zetl_units_relation() -%}
  {%- set window = zetl_window_relation() -%}
  {%- set seen = zetl_seen_relation() -%}
  {%- set build_units -%}
    create table if not exists {{ seen }} (source integer, id bigint, updated_at timestamptz);
    drop table if exists {{ window }};
    create temporary table {{ window }} as
    {{ zetl_window_sql(spec, zetl_watermark()) }};
    drop table if exists {{ units }};
    create temporary table {{ units }} as
    {{ zetl_changed_units_sql(spec, window, seen) }}
  {%- endset -%}
  {%- do run_query(build_units) -%}
  {%- set changed_units = zetl_unit_literals(units) -%}
  {%- set check_sql -%}
    select coalesce(s.n, 0) = coalesce(t.n, 0) and coalesce(s.total, 0) = coalesce(t.total, 0)
    from ({{ zetl_facts_sql(spec['facts'], outside=changed_units) }}) as s
    cross join ({{ zetl_mart_sql(spec['mart'], outside=changed_units) }}) as t
  {%- endset -%}
  {%- set settled = run_query(check_sql).columns[0].values()[0] -%}
  {%- if not settled -%}
    {%- set add_drifted -%}
      insert into {{ units }} (unit)
      select coalesce(s.unit, t.unit) as unit
      from ({{ zetl_facts_sql(spec['facts']) }}) as s
      full outer join ({{ zetl_mart_sql(spec['mart']) }}) as t on s.unit = t.unit
      where coalesce(s.n, -1) <> coalesce(t.n, -1) or coalesce(s.total, 0) <> coalesce(t.total, 0)
    {%- endset -%}
    {%- do run_query(add_drifted) -%}
  {%- endif -%}
  {%- set literals = zetl_unit_literals(units) -%}
  {%- do log('zetl: ' ~ this.identifier ~ ' recomputes ' ~ (literals | length) ~ ' units ('
      ~ ('no delete found' if settled else 'drift compared per unit') ~ ')', info=True) -%}
  {{ return(zetl_unit_list(literals)) }}
{%- endmacro %}

{#- The watermark minus the lookback, as a timestamptz literal (so the filter on updated_at is
    shipped to the replica as it is): the largest source updated_at the mart holds. -#}
{% macro zetl_watermark() -%}
  {%- set watermark_sql -%}
    select max(source_updated_at) - interval '{{ env_var('ZETL_LOOKBACK_MINUTES', var('zetl_lookback_minutes') | string) }} minutes' from {{ this }}
  {%- endset -%}
  {%- set watermark = run_query(watermark_sql).columns[0].values()[0] -%}
  {{ return("cast('" ~ (watermark if watermark is not none else '1900-01-01 00:00:00+00') ~ "' as timestamptz)") }}
{%- endmacro %}

{#- Step 1 of a unit spec, the replica's side: every row of the sources named in `changed` and
    `dimensions` whose updated_at is after `since`, as (source: its place in the spec, id,
    updated_at, unit: the unit it changes, null for a dimension's row). Only these rows cross
    the link. -#}
{% macro zetl_window_sql(spec, since) -%}
  {%- set changed = spec['changed'] -%}
  {%- for source in changed -%}
    {%- if not loop.first %} union all {% endif -%}
    {%- set through = source.get('through') -%}
    {%- if through -%}
      select {{ loop.index0 }} as source, child.{{ through['id'] }} as id, child.updated_at, {{ source['unit'] }} as unit
      from {{ source['relation'] }} as parent
      inner join {{ through['relation'] }} as child on child.{{ through['key'] }} = parent.{{ through['key'] }}
      where child.updated_at > {{ since }}
    {%- else -%}
      select {{ loop.index0 }} as source, {{ source['id'] }} as id, updated_at, {{ source['unit'] }} as unit
      from {{ source['relation'] }} where updated_at > {{ since }}
    {%- endif -%}
  {%- endfor -%}
  {%- for dimension in spec.get('dimensions') or [] %}
    union all select {{ changed | length + loop.index0 }}, {{ dimension['key'] }}, updated_at, null
    from {{ dimension['relation'] }} where updated_at > {{ since }}
  {%- endfor -%}
{%- endmacro %}

{#- Step 1 of a unit spec, the warehouse's side: SQL selecting column `unit` of every unit that
    a window row the mart has not seen changes (for a dimension's row: the mart's units holding
    it). -#}
{% macro zetl_changed_units_sql(spec, window, seen) -%}
  {%- set changed = spec['changed'] | length -%}
  with fresh as (
    select w.source, w.id, w.unit from {{ window }} as w
    where not exists (
      select 1 from {{ seen }} as s
      where s.source = w.source and s.id = w.id and s.updated_at = w.updated_at
    )
  )
  select unit from fresh where source < {{ changed }}
  {%- set dimensions = spec.get('dimensions') or [] %}
  {%- if dimensions %}
  union select {{ config.require('unit_expression') }} from {{ this }} where
    {%- for dimension in dimensions %}
    {{ 'or ' if not loop.first else '' }}{{ dimension['key'] }} in (select id from fresh where source = {{ changed + loop.index0 }})
    {%- endfor -%}
  {%- endif -%}
{%- endmacro %}

{#- Step 2 of a unit spec, the replica's side: `unit, n, total` per unit, or with `outside` (a
    list of unit literals) one row `n, total` over the rows of every other unit. -#}
{% macro zetl_facts_sql(facts, outside=none) -%}
  {%- set several = facts | length > 1 -%}
  {%- if several -%}
    select {{ 'unit, ' if outside is none else '' }}sum(n) as n, sum(total) as total from (
  {%- endif -%}
  {%- for fact in facts -%}
    {%- if not loop.first %} union all {% endif -%}
    {%- set conditions = [fact['where']] if fact.get('where') else [] -%}
    {%- if outside is not none -%}
      {%- do conditions.append(zetl_not_in(fact['unit'], outside)) -%}
    {%- endif -%}
    {%- set relation = fact.get('all', fact['relation']) if outside == [] else fact['relation'] %}
    select {{ fact['unit'] ~ ' as unit, ' if outside is none else '' }}count(*) as n, sum({{ fact['measure'] }}) as total
    from {{ relation }}
    {%- if conditions %} where {{ conditions | join(' and ') }}{% endif -%}
    {%- if outside is none %} group by {{ fact['unit'] }}{% endif -%}
  {%- endfor -%}
  {%- if several -%}
    ) as facts{{ ' group by unit' if outside is none else '' }}
  {%- endif -%}
{%- endmacro %}

{#- Step 2 of a unit spec, the mart's side: the same shape as zetl_facts_sql, from {{ this }}. -#}
{% macro zetl_mart_sql(mart, outside=none) -%}
  {%- set unit = config.require('unit_expression') -%}
  select {{ unit ~ ' as unit, ' if outside is none else '' }}sum({{ mart['count'] }}) as n, sum({{ mart['measure'] }}) as total
  from {{ this }}
  {%- if outside is none %} group by {{ unit }}
  {%- else %} where {{ zetl_not_in(unit, outside) }}
  {%- endif -%}
{%- endmacro %}

{#- The distinct units of the temporary units table, as SQL literals. -#}
{% macro zetl_unit_literals(units) -%}
  {%- set values = run_query('select distinct unit from ' ~ units ~ ' where unit is not null order by unit').columns[0].values() -%}
  {%- set literals = [] -%}
  {%- for value in values -%}
    {%- do literals.append(zetl_literal(value)) -%}
  {%- endfor -%}
  {{ return(literals) }}
{%- endmacro %}

{#- A value as a SQL literal: a number as it is, anything else (a date, a text) quoted, with
    its quotes doubled. -#}
{% macro zetl_literal(value) -%}
  {%- if value is number and value is not boolean -%}
    {{ return(value | string) }}
  {%- endif -%}
  {{ return("'" ~ (value | string | replace("'", "''")) ~ "'") }}
{%- endmacro %}

{#- A list of literals for `unit IN (...)`: `(null)`, which matches no row, when it is empty. -#}
{% macro zetl_unit_list(literals) -%}
  {%- if literals | length == 0 -%}
    {{ return('(null)') }}
  {%- endif -%}
  {{ return('(' ~ (literals | join(', ')) ~ ')') }}
{%- endmacro %}

{#- `expression NOT IN (literals)`, or true when there are none (NOT IN of an empty or null list
    would hold for no row). Literals, so postgres_fdw ships the condition to the replica. -#}
{% macro zetl_not_in(expression, literals) -%}
  {%- if literals | length == 0 -%}
    {{ return('1 = 1') }}
  {%- endif -%}
  {{ return(expression ~ ' not in (' ~ (literals | join(', ')) ~ ')') }}
{%- endmacro %}

{#- Custom incremental strategy: replace the units of this run (see the rule above), and the
    mart's seen rows by this run's window, in the same transaction. The mart's config names the
    unit expression over its own columns: unit_expression='customer_id'. -#}
{% macro get_incremental_zetl_replace_units_sql(arg_dict) -%}
  {%- set target = arg_dict['target_relation'] -%}
  {%- set columns = arg_dict['dest_columns'] | map(attribute='quoted') | join(', ') -%}
  delete from {{ target }}
  where {{ config.require('unit_expression') }} in (select unit from {{ zetl_units_relation() }});
  insert into {{ target }} ({{ columns }})
  select {{ columns }} from {{ arg_dict['temp_relation'] }};
  {%- if config.get('zetl_seen_rows') %}
  delete from {{ zetl_seen_relation() }};
  insert into {{ zetl_seen_relation() }} (source, id, updated_at)
  select source, id, updated_at from {{ zetl_window_relation() }};
  drop table if exists {{ zetl_window_relation() }};
  {%- endif %}
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

{#-
  Units of a summary of an incremental mart (daily_publisher_revenue over daily_revenue): the
  parent replaces whole units, so all its rows of one unit carry the invocation id that wrote
  them, and the summary keeps that id (source_invocation_id). A unit to recompute is one whose
  parent rows carry an id the summary has not absorbed (rewritten since: this run's, or an
  earlier run's whose summary build failed or was skipped), or one the summary holds and the
  parent no longer does (every row of it gone). The parent is read through its unit index for
  the second part only; the first reads its ids, not its amounts. Literals, as
  zetl_incremental_units returns them.
-#}
{% macro zetl_rewritten_units(parent, unit) -%}
  {%- if var('zetl_offline_render') or not execute -%}
    {{ return('(0)') }}
  {%- endif -%}
  {%- set units = zetl_units_relation() -%}
  {%- set build_units -%}
    drop table if exists {{ units }};
    create temporary table {{ units }} as
    select distinct {{ unit }} as unit from {{ parent }}
    where zetl_invocation_id not in (
        select distinct source_invocation_id from {{ this }} where source_invocation_id is not null
    )
    union
    select distinct s.{{ unit }} from {{ this }} as s
    where not exists (select 1 from {{ parent }} as p where p.{{ unit }} = s.{{ unit }})
  {%- endset -%}
  {%- do run_query(build_units) -%}
  {%- set literals = zetl_unit_literals(units) -%}
  {%- do log('zetl: ' ~ this.identifier ~ ' recomputes ' ~ (literals | length) ~ ' units', info=True) -%}
  {{ return(zetl_unit_list(literals)) }}
{%- endmacro %}
