"""Create the replica database from the integration with the Redshift Data API.

Zero-ETL fills a database that exists only once someone runs, on the target,
``CREATE DATABASE <replica> FROM INTEGRATION '<id>' DATABASE <source database> [SET ...]``,
with the target database's options (TRUNCATECOLUMNS, QUERY_ALL_STATES, REFRESH_INTERVAL, ...)
from Terraform's ``replica_database_options``. The step is idempotent: when the database
already exists it sets those options with ``ALTER DATABASE ... INTEGRATION SET ...``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from zetl.aws.errors import aws_errors
from zetl.aws.waiting import Deadline, poll
from zetl.errors import ConfigError, DataError
from zetl.integration import set_clause

logger = logging.getLogger(__name__)

_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_$]{0,126}$")
_INTEGRATION_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
DONE, FAILED = "FINISHED", frozenset({"FAILED", "ABORTED"})


@dataclass(frozen=True)
class Target:
    """Where Data API statements run: a Redshift Serverless workgroup, as its admin."""

    workgroup: str
    database: str
    secret_arn: str


def _identifier(name: str, what: str) -> str:
    if not _IDENTIFIER.match(name):
        raise ConfigError(f"{what} {name!r} is not a plain lowercase Redshift identifier")
    return f'"{name}"'


def _set(options: Mapping[str, bool | int | None]) -> str:
    try:
        return set_clause(dict(options))
    except ValueError as exc:
        raise ConfigError(f"replica_database_options: {exc}") from exc


def create_database_sql(
    replica: str,
    integration_id: str,
    source_database: str,
    options: Mapping[str, bool | int | None] | None = None,
) -> str:
    """``CREATE DATABASE ... FROM INTEGRATION ... DATABASE ... [SET ...]``, the options from the
    one definition (``zetl.integration.DATABASE_OPTIONS``)."""
    if not _INTEGRATION_ID.match(integration_id):
        raise ConfigError(f"integration id {integration_id!r} is not an integration UUID")
    clause = _set(options or {})
    return (
        f"CREATE DATABASE {_identifier(replica, 'replica database')} "
        f"FROM INTEGRATION '{integration_id}' "
        f"DATABASE {_identifier(source_database, 'source database')}"
        + (f" {clause}" if clause else "")
    )


def alter_database_sql(replica: str, options: Mapping[str, bool | int | None]) -> str | None:
    """``ALTER DATABASE ... INTEGRATION SET ...`` for an existing database (None: no option)."""
    clause = _set(options)
    if not clause:
        return None
    return f"ALTER DATABASE {_identifier(replica, 'replica database')} INTEGRATION {clause}"


def run_statement(
    data_api: Any,
    target: Target,
    sql: str,
    deadline: Deadline,
    parameters: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    """Run one statement and wait for it; returns DescribeStatement's answer."""
    request: dict[str, Any] = {
        "WorkgroupName": target.workgroup,
        "Database": target.database,
        "SecretArn": target.secret_arn,
        "Sql": sql,
    }
    if parameters:
        request["Parameters"] = parameters
    with aws_errors(f"submitting a statement to workgroup {target.workgroup}"):
        statement_id = data_api.execute_statement(**request)["Id"]

    def look() -> dict[str, Any] | None:
        with aws_errors(f"checking statement {statement_id}"):
            described: dict[str, Any] = data_api.describe_statement(Id=statement_id)
        status = described["Status"]
        if status == DONE:
            return described
        if status in FAILED:
            raise DataError(f"statement {statement_id} {status}: {described.get('Error', '')}")
        return None

    return poll(look, deadline, f"statement {statement_id} on {target.workgroup}")


def database_exists(data_api: Any, target: Target, name: str, deadline: Deadline) -> bool:
    described = run_statement(
        data_api,
        target,
        "SELECT 1 FROM svv_redshift_databases WHERE database_name = :name",
        deadline,
        parameters=[{"name": "name", "value": name}],
    )
    if not described.get("HasResultSet"):
        return False
    with aws_errors(f"reading the result of statement {described['Id']}"):
        result = data_api.get_statement_result(Id=described["Id"])
    return bool(result.get("Records"))


def create_database_from_integration(
    data_api: Any,
    target: Target,
    *,
    replica: str,
    integration_id: str,
    source_database: str,
    deadline: Deadline,
    options: Mapping[str, bool | int | None] | None = None,
) -> bool:
    """Create ``replica`` from the integration with ``options``; False when it already existed
    (then its options are set with ALTER DATABASE, so that a changed option reaches AWS too)."""
    sql = create_database_sql(replica, integration_id, source_database, options)
    if database_exists(data_api, target, replica, deadline):
        logger.info("replica database exists", extra={"database": replica})
        alter = alter_database_sql(replica, options or {})
        if alter is not None:
            run_statement(data_api, target, alter, deadline)
            logger.info("replica database options set", extra={"database": replica})
        return False
    run_statement(data_api, target, sql, deadline)
    logger.info("replica database created", extra={"database": replica})
    return True
