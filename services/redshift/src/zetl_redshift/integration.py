"""zero-ETL's own SQL, run by the front as the client's role, through the CLI's code path.

- ``CREATE DATABASE name FROM INTEGRATION 'id' [DATABASE source] [SET option = value ...]``:
  locally the replicator creates its target database when it starts (``zetl replicate``), so
  the statement succeeds when ``name`` is that database, and applies its SET options;
- ``ALTER DATABASE name INTEGRATION REFRESH {TABLE[S] s.t, ... | ALL TABLES | INERROR TABLES}
  [IN SCHEMA s, ...]``: the tables are marked for re-copy, as ``zetl refresh`` marks them;
- ``ALTER DATABASE name INTEGRATION SET option [=] value ...``: as ``zetl database set``.

The statements are parsed and carried out by the replicator's own functions (``parse_refresh``,
``parse_options``, ``PostgresStateStore``, ``set_options``), imported here and only here. The
client's own role does the writes: a role that may not change the state store is refused with
PostgreSQL's error, as Redshift refuses a non-owner.
"""

from __future__ import annotations

import re
from typing import Any

import psycopg2

from zetl.errors import ConfigError
from zetl_redshift.translate import Refused
from zetl_redshift.translate.refusals import body
from zetl_replicator.ops.clauses import parse_options, parse_refresh, tables_to_refresh
from zetl_replicator.state.options import set_options
from zetl_replicator.state.store import PostgresStateStore

NAME = r'("[^"]+"|[A-Za-z_][\w$]*)'
CREATE = re.compile(
    rf"create\s+database\s+{NAME}\s+from\s+integration\s+'([^']*)'"
    rf"(?:\s+database\s+{NAME})?(?:\s+set\s+(?P<options>.*?))?\s*;?\s*\Z",
    re.I | re.S,
)
REFRESH = re.compile(
    rf"alter\s+database\s+{NAME}\s+integration\s+refresh\s+(?P<clause>.*?)\s*;?\s*\Z", re.I | re.S
)
SET = re.compile(
    rf"alter\s+database\s+{NAME}\s+integration\s+set\s+(?P<options>.*?)\s*;?\s*\Z", re.I | re.S
)
SYNTAX_ERROR = "42601"
UNDEFINED_DATABASE = "3D000"


def run(statement: str, dsn: str) -> str:
    """Carry out one zero-ETL statement; its command tag. Raises Refused (with PostgreSQL's
    SQLSTATE when the warehouse refused it)."""
    text = body(statement)
    try:
        if match := CREATE.match(text):
            _create(dsn, _name(match.group(1)), match.group("options"))
            return "CREATE DATABASE"
        if match := REFRESH.match(text):
            _refresh(dsn, _name(match.group(1)), match.group("clause"))
            return "ALTER DATABASE"
        if match := SET.match(text):
            _set(dsn, _name(match.group(1)), match.group("options"))
            return "ALTER DATABASE"
    except ConfigError as exc:
        raise Refused(str(exc), SYNTAX_ERROR) from None
    except psycopg2.Error as exc:
        message = (exc.diag.message_primary or str(exc)).strip()
        raise Refused(message, exc.pgcode or "XX000") from None
    raise Refused(
        "not a zero-ETL statement zetl knows: CREATE DATABASE ... FROM INTEGRATION, or ALTER"
        " DATABASE ... INTEGRATION {REFRESH | SET} ...",
        SYNTAX_ERROR,
    )


def _name(identifier: str) -> str:
    return identifier[1:-1] if identifier.startswith('"') else identifier.lower()


def _replica(dsn: str, database: str) -> Any:
    """The zero-ETL database, as the client's role; Refused unless the replicator made it."""
    try:
        conn = psycopg2.connect(dsn, dbname=database)  # a URL or key=value DSN, either
    except psycopg2.OperationalError:
        raise Refused(f'database "{database}" does not exist', UNDEFINED_DATABASE) from None
    with conn.cursor() as cur:
        cur.execute("SELECT to_regclass('zetl.table_state') IS NOT NULL")
        row = cur.fetchone()
    conn.rollback()
    if not (row and row[0]):
        conn.close()
        raise Refused(
            f'database "{database}" is not the target of a zero-ETL integration',
            UNDEFINED_DATABASE,
        )
    return conn


def _create(dsn: str, database: str, options: str | None) -> None:
    conn = _replica(dsn, database)  # the replicator created it: the integration is there
    try:
        if options:
            set_options(conn, parse_options(options.split()))
    finally:
        conn.close()


def _set(dsn: str, database: str, options: str) -> None:
    conn = _replica(dsn, database)
    try:
        set_options(conn, parse_options(options.split()))
    finally:
        conn.close()


def _refresh(dsn: str, database: str, clause: str) -> None:
    kind, names = parse_refresh(clause.split())
    conn = _replica(dsn, database)
    try:
        store = PostgresStateStore(conn)
        chosen = tables_to_refresh(kind, names, store.table_states())
        for name in chosen:
            schema, _, table = name.partition(".")
            store.request_resync(schema, table)
    finally:
        conn.close()
