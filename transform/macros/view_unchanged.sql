{#-
  Views on the local warehouse (Postgres) are re-created only when their SQL changed. dbt's own
  view materialization replaces every view on every run (create a new one, rename, drop the old,
  each with catalog work), which on an incremental run costs more than the rows it recomputes.
  A view records the md5 of the SQL it was created from in its comment; a run whose compiled
  SQL has the same md5 leaves it as it is. Postgres binds a view to its tables when it is
  created, and the replica link's refresh drops the views over a foreign table it replaces, so a
  view that exists with the same SQL is the view this run would create. --full-refresh
  re-creates every view. Redshift keeps dbt-redshift's own view materialization (late-binding
  views, nothing to save there).
-#}
{% materialization view, adapter='postgres' %}
  {%- set fingerprint = 'zetl:sql-md5:' ~ local_md5(sql) -%}
  {%- set target = this.incorporate(type='view') -%}
  {%- set existing = load_cached_relation(this) -%}
  {%- if existing is not none and existing.is_view and not should_full_refresh() -%}
    {%- set described -%}
      select d.description
      from pg_catalog.pg_class as c
      join pg_catalog.pg_namespace as n on n.oid = c.relnamespace
      join pg_catalog.pg_description as d
        on d.objoid = c.oid and d.classoid = 'pg_catalog.pg_class'::regclass and d.objsubid = 0
      where n.nspname = '{{ this.schema }}' and c.relname = '{{ this.identifier }}'
    {%- endset -%}
    {%- set found = run_query(described).columns[0].values() -%}
    {%- if found | length == 1 and found[0] == fingerprint -%}
      {%- call statement('main') -%}
        select 'unchanged' as zetl_view
      {%- endcall -%}
      {{ return({'relations': [target]}) }}
    {%- endif -%}
  {%- endif -%}
  {%- set relations = context['materialization_view_default']() -%}
  {%- call statement('zetl_view_fingerprint') -%}
    comment on view {{ target }} is '{{ fingerprint }}'
  {%- endcall -%}
  {{ adapter.commit() }}
  {{ return(relations) }}
{%- endmaterialization %}
