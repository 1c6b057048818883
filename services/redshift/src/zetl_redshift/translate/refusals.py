"""Statements the front never sends on: Redshift features zetl does not emulate, writes into a
zero-ETL database, and the PostgreSQL-only constructs Redshift refuses (``zetl_redshift.dialect``,
the rules ``zetl transform check`` applies to the models)."""

from __future__ import annotations

import re
from collections.abc import Callable

from sqlglot import exp

from zetl_redshift.dialect import Finding

DOCS = "https://docs.aws.amazon.com/redshift/latest/dg/"
LEADING_COMMENTS = re.compile(r"\A(?:\s+|--[^\n]*(?:\n|\Z)|/\*.*?\*/)*", re.S)

# (statement pattern, what it is, the Redshift page). Each is refused before it is parsed.
NOT_EMULATED = [
    (re.compile(r"unload\b", re.I), "UNLOAD (writes query results to Amazon S3)", "r_UNLOAD.html"),
    (re.compile(r"copy\b.*\bfrom\s+'(s3|dynamodb|emr)://", re.I | re.S),
     "COPY from Amazon S3, DynamoDB or EMR", "r_COPY.html"),
    (re.compile(r"copy\b", re.I), "COPY (Redshift loads only from AWS sources; there is no COPY"
     " FROM STDIN)", "r_COPY.html"),
    (re.compile(r"(create|alter|drop)\s+external\b", re.I),
     "Redshift Spectrum (external schemas and tables)", "r_CREATE_EXTERNAL_SCHEMA.html"),
    (re.compile(r"(create|alter|drop|desc)\s+datashare\b|create\s+database\s+\S+\s+from\s+"
                r"datashare\b|(grant|revoke)\s+usage\s+on\s+datashare\b", re.I),
     "datashares", "r_CREATE_DATASHARE.html"),
    (re.compile(r"create\s+model\b", re.I), "Redshift ML (CREATE MODEL)", "r_CREATE_MODEL.html"),
    (re.compile(r"create\s+library\b", re.I), "CREATE LIBRARY (Python UDF libraries)",
     "r_CREATE_LIBRARY.html"),
]  # fmt: skip
ZERO_ETL = re.compile(
    r"(create\s+database\s+\S+\s+from\s+integration\b|alter\s+database\s+\S+\s+integration\b)",
    re.I,
)
WRITES = (
    exp.Insert, exp.Update, exp.Delete, exp.Merge, exp.Create, exp.Drop, exp.Alter,
    exp.TruncateTable,
)  # fmt: skip


def body(sql: str) -> str:
    """The statement text after its leading comments (dbt starts each with one)."""
    return sql[LEADING_COMMENTS.match(sql).end() :]  # type: ignore[union-attr]


def is_zero_etl(sql: str) -> bool:
    return ZERO_ETL.match(body(sql)) is not None


def not_emulated(sql: str) -> str | None:
    """The refusal message for a Redshift feature zetl does not emulate, or None."""
    text = body(sql)
    for pattern, what, page in NOT_EMULATED:
        if pattern.match(text):
            return f"{what} is not emulated by zetl's local Redshift; see {DOCS}{page}"
    return None


def zero_etl_write(tree: exp.Expr, foreign: Callable[[str], bool]) -> str | None:
    """The refusal message for a statement that writes into a zero-ETL database, or None."""
    if not isinstance(tree, WRITES):
        return None
    targets = [tree.this] if not isinstance(tree, exp.TruncateTable) else tree.expressions
    for target in targets:
        table = target.this if isinstance(target, exp.Schema) else target
        if isinstance(table, exp.Table) and table.catalog and foreign(table.catalog.lower()):
            return (
                f"cannot write into {table.sql('redshift')}: database {table.catalog} is a"
                " zero-ETL integration's target and is read-only"
            )
    return None


def redshift_refusal(findings: list[Finding]) -> str:
    construct, fix = findings[0]
    more = f" (and {len(findings) - 1} more)" if len(findings) > 1 else ""
    return f"{construct} is not supported by Redshift{more}; {fix}"
