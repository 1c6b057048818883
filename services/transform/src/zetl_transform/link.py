"""The local cross-database link: the replica database read from `dev` through postgres_fdw.

Postgres has no cross-database queries; Redshift reads the zero-ETL database by three-part
names. Locally the replica's schema ``public`` is imported into the warehouse database as
``<replica>_public`` (``raw_transactions_public``), so dbt's source definition is the only
thing that differs between the targets. Two halves:

- :func:`setup` (a superuser, once, idempotent): extension, foreign server, the read-only
  remote user and the mapping (``sql/setup_replica_link.sql``);
- :func:`refresh` (the transform role, before every run): re-imports the replica's tables so
  new and changed ones appear; unchanged foreign tables are kept, so the views over them are.

Nothing is ever created inside the replica database.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from importlib.resources import files

import psycopg2.extensions
from psycopg2 import sql

from zetl.db import connect
from zetl.errors import ConfigError, first_line

logger = logging.getLogger("zetl.transform")
SERVER = "replica"
REMOTE_SCHEMA = "public"


def import_schema(replica_database: str) -> str:
    """Where the replica's ``public`` lands in the warehouse database."""
    return f"{replica_database}_public"


def setup_sql() -> str:
    return files("zetl_transform").joinpath("sql/setup_replica_link.sql").read_text("utf-8")


def setup(
    url: str,
    replica_database: str,
    grantee: str | None = None,
    remote_host: str = "localhost",
    remote_port: int | None = None,
) -> None:
    """Create or update the link (needs a superuser connection to the warehouse database)."""
    conn = connect(url, application_name="zetl-transform-setup")
    try:
        with conn, conn.cursor() as cur:
            cur.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
            row = cur.fetchone()
            if not (row and row[0]):
                raise ConfigError(
                    "zetl transform setup needs a superuser connection to the warehouse database"
                    " (it creates the postgres_fdw extension, server and user mapping)"
                )
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (replica_database,))
            if cur.fetchone() is None:
                raise ConfigError(
                    f"replica database {replica_database} does not exist yet: run zetl replicate"
                )
            cur.execute(setup_sql())
            cur.execute(
                "SELECT zetl_transform.setup_replica_link(%s, coalesce(%s, current_user), %s, %s)",
                (replica_database, grantee, remote_host, remote_port),
            )
    finally:
        conn.close()
    logger.info("replica link set up", extra={"replica_database": replica_database})


@dataclass
class RefreshReport:
    kept: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)


_COLUMNS = """
SELECT c.relname, string_agg(
    a.attname || ' ' || format_type(a.atttypid, a.atttypmod) || CASE WHEN a.attnotnull
    THEN ' not null' ELSE '' END, ', ' ORDER BY a.attnum)
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE n.nspname = %s AND c.relkind = 'f'
GROUP BY c.relname
"""


def _shapes(cur: psycopg2.extensions.cursor, schema: str) -> dict[str, str]:
    cur.execute(_COLUMNS, (schema,))
    return {name: shape for name, shape in cur.fetchall()}


def refresh(url: str, replica_database: str, *, auto_setup: bool = True) -> RefreshReport:
    """Re-import the replica's tables into ``<replica>_public`` in one transaction.

    Each run imports into a scratch schema and moves over only new tables and tables whose
    columns changed (their old foreign table is dropped with the views over it, which the dbt
    build that follows recreates); unchanged foreign tables stay, and so do the views on them.
    """
    target, scratch = import_schema(replica_database), f"{import_schema(replica_database)}__import"
    conn = connect(url, application_name="zetl-transform")
    report = RefreshReport()
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT EXISTS (SELECT 1 FROM pg_foreign_server WHERE srvname = %s),"
                " (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)",
                (SERVER,),
            )
            exists, superuser = cur.fetchone() or (False, False)
        conn.rollback()
        if not (exists and _schemas_exist(conn, target, scratch)):
            if not (superuser and auto_setup):
                raise ConfigError(
                    "the replica link is not set up in the warehouse database: a superuser runs"
                    " `zetl transform setup` once (or zetl_transform.setup_replica_link(...))"
                )
            conn.close()
            setup(url, replica_database)
            conn = connect(url, application_name="zetl-transform")
        with conn, conn.cursor() as cur:
            _empty(cur, scratch)
            cur.execute(
                sql.SQL("IMPORT FOREIGN SCHEMA {} FROM SERVER {} INTO {}").format(
                    sql.Identifier(REMOTE_SCHEMA), sql.Identifier(SERVER), sql.Identifier(scratch)
                )
            )
            fresh, current = _shapes(cur, scratch), _shapes(cur, target)
            for name, shape in sorted(fresh.items()):
                if current.get(name) == shape:
                    report.kept.append(name)
                    continue
                if name in current:
                    _drop(cur, target, name)
                    report.replaced.append(name)
                else:
                    report.added.append(name)
                cur.execute(
                    sql.SQL("ALTER FOREIGN TABLE {} SET SCHEMA {}").format(
                        sql.Identifier(scratch, name), sql.Identifier(target)
                    )
                )
            for name in sorted(set(current) - set(fresh)):
                _drop(cur, target, name)
                report.dropped.append(name)
            # Emptied, not dropped: the transform role may lack CREATE on the database.
            _empty(cur, scratch)
    except psycopg2.errors.InsufficientPrivilege as exc:
        raise ConfigError(
            f"cannot refresh the replica link: {first_line(exc)}"
            " (a superuser runs `zetl transform setup` to grant it)"
        ) from exc
    finally:
        conn.close()
    logger.info(
        "replica link refreshed",
        extra={k: len(v) for k, v in vars(report).items()} | {"schema": target},
    )
    return report


def _schemas_exist(conn: psycopg2.extensions.connection, *schemas: str) -> bool:
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_namespace WHERE nspname = ANY(%s)", (list(schemas),))
        row = cur.fetchone()
    conn.rollback()
    return bool(row and row[0] == len(schemas))


def _empty(cur: psycopg2.extensions.cursor, schema: str) -> None:
    for name in _shapes(cur, schema):
        _drop(cur, schema, name)


def _drop(cur: psycopg2.extensions.cursor, schema: str, name: str) -> None:
    cur.execute(sql.SQL("DROP FOREIGN TABLE {} CASCADE").format(sql.Identifier(schema, name)))
