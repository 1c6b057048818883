"""``zetl doctor``: check a source database against zero-ETL's requirements before deploying."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import psycopg2.extensions

from zetl.integration import zero_etl_minimum_minors
from zetl_replicator.source import catalog, emulation
from zetl_replicator.source.tables import TableInfo
from zetl_replicator.sync.datafilter import DataFilter


@dataclass(frozen=True)
class Finding:
    severity: str  # "error": zero-ETL will not replicate it; "warning": it will, with a catch;
    # "info": it will, differently (a column's type)
    subject: str
    problem: str
    fix: str


def _setting(conn: psycopg2.extensions.connection, name: str) -> str:
    with conn.cursor() as cur:
        cur.execute("SELECT current_setting(%s)", (name,))
        row = cur.fetchone()
    return str(row[0]) if row else ""


# AWS's minimum minor versions of RDS for PostgreSQL for zero-ETL: the one list, which
# Terraform's source module reads too.
MIN_MINOR = zero_etl_minimum_minors()
AWS_SENDERS = 20  # the max_wal_senders / max_replication_slots AWS's setup page uses


def check_server(conn: psycopg2.extensions.connection) -> list[Finding]:
    """The source parameters AWS's zero-ETL setup page requires, and the engine version."""
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
    role = _setting(conn, "session_replication_role")
    if role != "origin":
        findings.append(
            Finding(
                "error",
                "server",
                f"session_replication_role is {role}: zero-ETL requires origin",
                "set session_replication_role = origin in the parameter group",
            )
        )
    timeout_ms = _milliseconds(conn, "wal_sender_timeout")
    if timeout_ms != 0 and timeout_ms < 20000:
        findings.append(
            Finding(
                "error",
                "server",
                f"wal_sender_timeout is {timeout_ms} ms: zero-ETL requires at least 20000 or 0",
                "set wal_sender_timeout = 20000 (or 0) in the parameter group",
            )
        )
    for name in ("max_replication_slots", "max_wal_senders"):
        value = int(_setting(conn, name))
        if value < 1:
            findings.append(
                Finding("error", "server", f"{name} is 0", f"set {name} to at least 1, restart")
            )
        elif value < AWS_SENDERS:
            findings.append(
                Finding(
                    "warning",
                    "server",
                    f"{name} is {value}; AWS's zero-ETL setup uses {AWS_SENDERS}",
                    f"set {name} = {AWS_SENDERS} (each integration and resync uses one)",
                )
            )
    version = int(conn.server_version)
    major, minor = version // 10000, version % 10000
    if major not in MIN_MINOR:
        findings.append(
            Finding(
                "warning" if major > max(MIN_MINOR) else "error",
                "server",
                f"PostgreSQL {major}.{minor}: RDS zero-ETL supports majors"
                f" {', '.join(map(str, MIN_MINOR))}",
                "use a major that AWS lists for zero-ETL",
            )
        )
    elif minor < MIN_MINOR[major]:
        findings.append(
            Finding(
                "error",
                "server",
                f"PostgreSQL {major}.{minor}: zero-ETL needs {major}.{MIN_MINOR[major]} or later",
                f"upgrade to {major}.{MIN_MINOR[major]}+",
            )
        )
    return findings


def _milliseconds(conn: psycopg2.extensions.connection, name: str) -> int:
    with conn.cursor() as cur:
        cur.execute("SELECT setting::bigint, unit FROM pg_settings WHERE name = %s", (name,))
        row = cur.fetchone()
    if row is None:
        return 0
    factor = {"s": 1000, "min": 60000, "ms": 1}.get(row[1] or "ms", 1)
    return int(row[0]) * factor


def predicted_states(tables: Sequence[TableInfo]) -> list[tuple[str, str, str]]:
    """(table, the state zero-ETL would give it, why) for every table."""
    out = []
    for table in tables:
        reason = table.problem()
        out.append((table.qualified, "Failed" if reason else "Synced", reason or ""))
    return out


def type_changes(tables: Sequence[TableInfo]) -> list[Finding]:
    """Columns that replicate into another type than the source's (AWS's mapping)."""
    findings = []
    for table in tables:
        if table.problem():
            continue
        for column in table.columns:
            target = column.target().type_sql
            if target != column.type_sql:
                findings.append(
                    Finding(
                        "info",
                        f"{table.qualified}.{column.name}",
                        f"replicates as {target} (source: {column.type_sql})",
                        "none needed: SQL on the replica sees Redshift's type",
                    )
                )
    return findings


def check_identity(tables: Sequence[TableInfo]) -> list[Finding]:
    """AWS sets REPLICA IDENTITY FULL on every table (rds.replica_identity_full = 1)."""
    partial = [t.qualified for t in tables if t.replica_identity != "f" and not t.problem()]
    if not partial:
        return []
    return [
        Finding(
            "warning",
            "server",
            f"{len(partial)} table(s) without REPLICA IDENTITY FULL ({', '.join(partial[:5])}"
            f"{', ...' if len(partial) > 5 else ''}): AWS sets it on every table",
            "RDS: rds.replica_identity_full = 1 in the parameter group (locally the primary"
            " key is enough)",
        )
    ]


def check_tables(tables: Sequence[TableInfo]) -> list[Finding]:
    """The eligibility rules (``source.eligibility``, as the replicator applies them) and the
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
    conn: psycopg2.extensions.connection,
    schemas: Sequence[str] | None,
    data_filter: DataFilter | None = None,
) -> list[Finding]:
    tables = catalog.list_tables(conn, schemas, data_filter)
    source = [Finding(*f) for f in emulation.findings(conn)]  # DDL capture, replica identity
    return (
        check_server(conn)
        + source
        + check_identity(tables)
        + check_tables(tables)
        + type_changes(tables)
    )
