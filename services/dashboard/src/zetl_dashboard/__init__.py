"""zetl dashboard: shows the analytics schema the dbt models build in the warehouse."""
