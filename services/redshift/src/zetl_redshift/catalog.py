"""Redshift's catalog over the warehouse: views and functions in schema ``zetl_redshift``.

:func:`install` creates them, idempotently, in the connected database (the front runs it in each
database it serves, as its own role, which has CREATE there). The translator maps each name in
:data:`CATALOG_VIEWS` (unqualified or ``pg_catalog.``-qualified) to ``zetl_redshift.<name>``, and
calls the functions of ``sql/functions.sql`` for Redshift functions PostgreSQL lacks.

Every object is readable by PUBLIC, as Redshift's catalog is: each view shows only what
PostgreSQL's own catalog lets the reading role see.
"""

from __future__ import annotations

from importlib.resources import files
from typing import Any

SCHEMA = "zetl_redshift"
SQL_FILES = ("functions.sql", "catalog.sql")

CATALOG_VIEWS = frozenset({
    "pg_table_def", "svv_table_info", "svv_tables", "svv_columns", "svv_all_tables",
    "svv_all_columns", "svv_all_schemas", "svv_redshift_databases", "svv_redshift_schemas",
    "svv_redshift_tables", "svv_redshift_columns", "svv_external_schemas",
    "svv_external_tables", "svv_external_columns", "svv_datashares", "sys_query_history",
    "pg_get_late_binding_view_cols", "pg_proc_info",
})  # fmt: skip


def install_sql() -> str:
    """The DDL of the catalog, in the order it must run."""
    package = files("zetl_redshift") / "sql"
    return "\n".join(package.joinpath(name).read_text("utf-8") for name in SQL_FILES)


def install(conn: Any) -> None:
    """Create (or replace) the catalog in the database ``conn`` (a DB-API connection) is open
    on, in one transaction; concurrent installs wait on an advisory lock."""
    with conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(hashtext('zetl_redshift.catalog'))")
        cur.execute(install_sql())
    conn.commit()
