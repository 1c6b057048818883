{#- dbt's get_where_subquery, with one placeholder: `__this_run__` becomes this invocation's id.
    Tests of the marts carry where: "zetl_invocation_id = __this_run__" (dbt_project.yml), so
    they check the rows this run wrote: every row after a full build or a table rebuild, only
    the recomputed units after an incremental run. That is enough, because a run replaces whole
    units and each mart's grain contains its unit: a duplicate or a bad row can only be among the
    rows just written. Without this, every incremental run would re-test the whole history. -#}
{% macro get_where_subquery(relation) -%}
  {%- set where = config.get('where', '') -%}
  {%- if where -%}
    {%- set where = where | replace('__this_run__', "'" ~ invocation_id ~ "'") -%}
    {%- do return('(select * from ' ~ relation ~ ' where ' ~ where ~ ') dbt_subquery') -%}
  {%- endif -%}
  {%- do return(relation) -%}
{%- endmacro %}
