"""The target database's options, as ``CREATE / ALTER DATABASE ... INTEGRATION SET`` sets
them on Redshift: kept in ``zetl.integration`` of the replica database."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg2.extensions
from psycopg2 import sql

from zetl.integration import DATABASE_OPTIONS
from zetl_replicator.state.store import PostgresStateStore

OPTIONS = DATABASE_OPTIONS  # name -> its definition (zetl.integration, the one list)


@dataclass(frozen=True)
class DatabaseOptions:
    query_all_states: bool = False
    truncatecolumns: bool = False
    acceptinvchars: bool = False
    refresh_interval: int | None = None
    history_mode: bool = False
    auto_remediation: bool = False


def read_options(conn: psycopg2.extensions.connection, *, commit: bool = True) -> DatabaseOptions:
    with conn.cursor() as cur:
        cur.execute(
            "SELECT query_all_states, truncatecolumns, acceptinvchars, refresh_interval,"
            " history_mode, auto_remediation FROM zetl.integration LIMIT 1"
        )
        row = cur.fetchone()
    if commit:
        conn.commit()
    return DatabaseOptions(*row) if row else DatabaseOptions()


def set_options(conn: psycopg2.extensions.connection, values: dict[str, bool | int | None]) -> None:
    """Change options (``OPTIONS`` keys); visibility follows QUERY_ALL_STATES at once.

    Changing HISTORY_MODE re-copies every replicated table in the new form, as zero-ETL does
    when history mode is turned on or off for existing tables.
    """
    store = PostgresStateStore(conn)
    with store.transaction(), conn.cursor() as cur:  # options and states change together
        if "HISTORY_MODE" in values:
            cur.execute("SELECT history_mode FROM zetl.integration LIMIT 1")
            row = cur.fetchone()
            if row is not None and row[0] != values["HISTORY_MODE"]:
                store.request_resync_of_all("HISTORY_MODE changed")
        for name, value in values.items():
            cur.execute(
                sql.SQL("UPDATE zetl.integration SET {} = %s").format(
                    sql.Identifier(OPTIONS[name].column)
                ),
                (value,),
            )
        store.refresh_visibility()
