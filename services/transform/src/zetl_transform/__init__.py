"""zetl transform: the dbt project runner, the cross-database link and the Redshift check."""
