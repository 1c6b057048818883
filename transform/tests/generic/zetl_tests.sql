{#- The project's own generic tests (no dbt hub packages). Each returns the failing rows. -#}

{#- The grain: no two rows share these columns. -#}
{% test unique_combination(model, columns) %}
select {{ columns | join(', ') }}, count(*) as n_rows
from {{ model }}
group by {{ columns | join(', ') }}
having count(*) > 1
{% endtest %}

{#- A column stays within bounds (null is left to not_null). -#}
{% test accepted_range(model, column_name, min_value=none, max_value=none) %}
select {{ column_name }}
from {{ model }}
where {{ column_name }} is not null
  and (
    {%- if min_value is not none %} {{ column_name }} < {{ min_value }}{% else %} false{% endif %}
    or
    {%- if max_value is not none %} {{ column_name }} > {{ max_value }}{% else %} false{% endif %}
  )
{% endtest %}

{#- A boolean SQL expression over the model's columns holds on every row. -#}
{% test expression_is_true(model, expression) %}
select *
from {{ model }}
where not ({{ expression }})
{% endtest %}

{#- The listed columns never increase from left to right, and a null is never followed by a
    value (top_deposit_1 >= top_deposit_2 >= top_deposit_3, nulls only at the end). -#}
{% test non_increasing(model, columns) %}
select *
from {{ model }}
where
{%- for i in range(columns | length - 1) %}
  {{ 'or ' if not loop.first }}({{ columns[i] }} < {{ columns[i + 1] }}
      or ({{ columns[i] }} is null and {{ columns[i + 1] }} is not null))
{%- endfor %}
{% endtest %}

{#- dbt's relationships test, planned so the parent is read once: the child's distinct keys
    EXCEPT the parent's. dbt's own left join lets the planner pick a nested loop that looks the
    parent up once per child row, and a parent behind postgres_fdw then costs one round trip to
    the replica per row; NOT IN (subquery) is hashed only while the parent's keys fit in
    work_mem, and past that (hundreds of thousands of keys) rescans the parent once per child
    row: hours. EXCEPT hashes or sorts, never loops. Overrides dbt's default for every
    relationships test.
    When the child has few keys (an incremental run's tests see only the rows it wrote), they
    are read first and the parent is read for those keys only, as literals the replica looks up
    by its primary key, rather than the whole parent table through the link. -#}
{% test relationships(model, column_name, to, field) %}
{%- set few = none -%}
{%- if execute and not var('zetl_offline_render') -%}
  {%- set limit = 5000 -%}
  {%- set keys = run_query('select distinct ' ~ column_name ~ ' from ' ~ model ~ ' where '
      ~ column_name ~ ' is not null limit ' ~ (limit + 1)).columns[0].values() -%}
  {%- if keys | length <= limit -%}
    {%- set few = [] -%}
    {%- for key in keys -%}
      {%- do few.append(zetl_literal(key)) -%}
    {%- endfor -%}
  {%- endif -%}
{%- endif %}
with child as (
    select distinct {{ column_name }} as key_value
    from {{ model }}
    where {{ column_name }} is not null
)

{%- if few is none %}
select key_value
from child
except
select {{ field }} from {{ to }} where {{ field }} is not null
{%- elif few | length == 0 %}
select key_value
from child
where 1 = 0
{%- else %}
select key_value
from child
where key_value not in (
    select {{ field }} from {{ to }}
    where {{ field }} in ({{ few | join(', ') }})
)
{%- endif %}
{% endtest %}

{#- Every row rule of a mart in one query, so one test node instead of one per column and rule
    (an incremental run checks only the rows it wrote, so what each node costs is dbt's own
    overhead per node, not the query). `grain`: the columns no two rows may share; `rules`: name
    -> a boolean SQL expression that must hold on every row (a null result passes, as in
    expression_is_true; null checks are rules of their own: `col is not null`). Returns one row
    per broken rule with how many rows break it. -#}
{% test row_rules(model, grain=none, rules=none) %}
{%- set rules = rules or {} %}
with
{%- if grain %}
grain_check as (
    select count(*) as failing_rows
    from (
        select {{ grain | join(', ') }}
        from {{ model }}
        group by {{ grain | join(', ') }}
        having count(*) > 1
    ) as duplicates
),
{%- endif %}
rule_check as (
    select
        count(*) as checked_rows
    {%- for name, expression in rules.items() %},
        sum(case when not ({{ expression }}) then 1 else 0 end) as {{ name }}
    {%- endfor %}
    from {{ model }}
)
{%- if grain %}
select 'grain ({{ grain | join(", ") }}) unique' as broken_rule, failing_rows
from grain_check
where failing_rows > 0
{%- else %}
select cast(null as varchar) as broken_rule, cast(null as bigint) as failing_rows
from rule_check
where 1 = 0
{%- endif %}
{%- for name, expression in rules.items() %}
union all
select '{{ name }}: {{ expression | replace("'", "''") }}', {{ name }}
from rule_check
where {{ name }} > 0
{%- endfor %}
{% endtest %}
