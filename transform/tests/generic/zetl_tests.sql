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
