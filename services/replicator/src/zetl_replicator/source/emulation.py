"""What the source runs beside plain Postgres to behave as RDS does for zero-ETL, and whether it
is in force: DDL capture (``apply.captured_ddl``) and the emulation of the parameter
``rds.replica_identity_full``. Both are event triggers installed by a superuser
(``compose/source/20-zetl-zero-etl-source.sql``); on RDS the parameter itself is read."""

from __future__ import annotations

import psycopg2.extensions

from zetl_replicator.apply.captured_ddl import EVENT_TRIGGERS
from zetl_replicator.source.catalog import ddl_capture_installed

REPLICA_IDENTITY_TRIGGER = "zetl_replica_identity_full"
INSTALL = "run compose/source/20-zetl-zero-etl-source.sql in the source database as a superuser"

Finding = tuple[str, str, str, str]  # severity, subject, problem, fix (as ``zetl doctor``'s)


def replica_identity_full(conn: psycopg2.extensions.connection) -> str | None:
    """How rds.replica_identity_full is in force: "parameter" (RDS's own), "emulated" (the
    event trigger), or None (it is not)."""
    with conn.cursor() as cur:
        cur.execute("SELECT current_setting('rds.replica_identity_full', true)")
        row = cur.fetchone()
    if row is not None and str(row[0]).lower() in {"1", "on", "true"}:
        return "parameter"
    return "emulated" if ddl_capture_installed(conn, (REPLICA_IDENTITY_TRIGGER,)) else None


def findings(conn: psycopg2.extensions.connection) -> list[Finding]:
    """Which of the two is in force, for ``zetl doctor``."""
    found: list[Finding] = []
    if ddl_capture_installed(conn, EVENT_TRIGGERS):
        found.append(("info", "server", "DDL capture on: DDL reaches the replica when it runs", ""))
    else:
        found.append(
            (
                "warning",
                "server",
                "DDL capture off: a changed table's shape reaches the replica only with its next"
                " row change (on RDS, zero-ETL reads DDL itself)",
                INSTALL,
            )
        )
    identity = replica_identity_full(conn)
    if identity == "parameter":
        found.append(("info", "server", "rds.replica_identity_full = 1", ""))
    elif identity == "emulated":
        found.append(
            (
                "info",
                "server",
                "rds.replica_identity_full emulated: NOTHING / USING INDEX tables become FULL",
                "",
            )
        )
    else:
        found.append(
            (
                "warning",
                "server",
                "rds.replica_identity_full off: tables with REPLICA IDENTITY NOTHING or USING"
                " INDEX are not replicated",
                f"RDS: rds.replica_identity_full = 1 in the parameter group; locally {INSTALL}",
            )
        )
    return found
