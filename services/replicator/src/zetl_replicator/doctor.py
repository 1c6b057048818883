"""``zetl doctor``: check a source database against zero-ETL's requirements before deploying."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import psycopg2.extensions

from zetl_replicator import catalog


@dataclass(frozen=True)
class Finding:
    severity: str  # "error": zero-ETL will not replicate it; "warning": it will, with a catch
    subject: str
    problem: str
    fix: str


def _setting(conn: psycopg2.extensions.connection, name: str) -> str:
    with conn.cursor() as cur:
        cur.execute("SELECT current_setting(%s)", (name,))
        row = cur.fetchone()
    return str(row[0]) if row else ""


def check_server(conn: psycopg2.extensions.connection) -> list[Finding]:
    findings = []
    if _setting(conn, "wal_level") != "logical":
        findings.append(
            Finding(
                "error",
                "server",
                f"wal_level is {_setting(conn, 'wal_level')}, logical replication needs logical",
                "set wal_level=logical (RDS: rds.logical_replication=1) and restart",
            )
        )
    for name in ("max_replication_slots", "max_wal_senders"):
        if int(_setting(conn, name)) < 1:
            findings.append(
                Finding("error", "server", f"{name} is 0", f"set {name} to at least 1, restart")
            )
    return findings


def check_tables(tables: Sequence[catalog.TableInfo]) -> list[Finding]:
    """The eligibility rules (``TableInfo.problems``, as the replicator applies them) and the
    warnings zero-ETL would still replicate through."""
    findings = []
    for table in tables:
        findings += [
            Finding("error", p.subject, f"{p.reason} (zetl marks the table Failed)", p.fix)
            for p in table.problems()
        ]
        names = [table.schema, table.name, *(c.name for c in table.columns)]
        mixed = [n for n in names if n != n.lower()]
        if mixed:
            findings.append(
                Finding(
                    "warning",
                    table.qualified,
                    "upper-case identifiers " + ", ".join(mixed) + ": Redshift folds case"
                    " unless enable_case_sensitive_identifier is on",
                    "rename to lower case, or turn enable_case_sensitive_identifier on",
                )
            )
    return findings


def run_doctor(
    conn: psycopg2.extensions.connection, schemas: Sequence[str], include: Sequence[str] = ()
) -> list[Finding]:
    return check_server(conn) + check_tables(catalog.list_tables(conn, schemas, include))
