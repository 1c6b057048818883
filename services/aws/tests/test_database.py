"""Creating the replica database through the Redshift Data API. moto's statements never
finish (their status stays STARTED), so botocore's Stubber answers with the real shapes."""

from __future__ import annotations

import re
from typing import Any

import pytest
from botocore.stub import ANY, Stubber

from zetl.aws.database import (
    Target,
    alter_database_sql,
    create_database_from_integration,
    create_database_sql,
)
from zetl.aws.waiting import Deadline
from zetl.errors import ConfigError, DataError

from .conftest import INTEGRATION_ID, stubbed_client

TARGET = Target("zetl-dev", "dev", "arn:aws:secretsmanager:us-east-1:123456789012:secret:rs-1")
CREATE = f'CREATE DATABASE "raw_transactions" FROM INTEGRATION \'{INTEGRATION_ID}\' DATABASE "storefront"'  # noqa: E501


def submitted(statement_id: str, sql: str, **extra: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    response = {"Id": statement_id, "WorkgroupName": "zetl-dev", "Database": "dev"}
    request = {
        "WorkgroupName": "zetl-dev",
        "Database": "dev",
        "SecretArn": TARGET.secret_arn,
        "Sql": sql,
        **extra,
    }
    return response, request


def described(statement_id: str, status: str, **extra: Any) -> dict[str, Any]:
    return {"Id": statement_id, "Status": status, "QueryString": "...", **extra}


def stub_exists_check(stub: Stubber, found: bool) -> None:
    response, request = submitted("check-1", ANY, Parameters=[{"name": "name", "value": ANY}])
    stub.add_response("execute_statement", response, request)
    stub.add_response("describe_statement", described("check-1", "STARTED"), {"Id": "check-1"})
    stub.add_response(
        "describe_statement",
        described("check-1", "FINISHED", HasResultSet=True),
        {"Id": "check-1"},
    )
    records = [[{"longValue": 1}]] if found else []
    stub.add_response("get_statement_result", {"Records": records}, {"Id": "check-1"})


def test_creates_the_replica_database_from_the_integration(deadline: Deadline) -> None:
    data_api = stubbed_client("redshift-data")
    with Stubber(data_api) as stub:
        stub_exists_check(stub, found=False)
        response, request = submitted("create-1", CREATE)
        stub.add_response("execute_statement", response, request)
        stub.add_response("describe_statement", described("create-1", "PICKED"), {"Id": "create-1"})
        stub.add_response(
            "describe_statement", described("create-1", "FINISHED"), {"Id": "create-1"}
        )
        created = create_database_from_integration(
            data_api,
            TARGET,
            replica="raw_transactions",
            integration_id=INTEGRATION_ID,
            source_database="storefront",
            deadline=deadline,
        )
        stub.assert_no_pending_responses()
    assert created is True


def test_an_existing_replica_database_is_left_alone(deadline: Deadline) -> None:
    data_api = stubbed_client("redshift-data")
    with Stubber(data_api) as stub:
        stub_exists_check(stub, found=True)
        created = create_database_from_integration(
            data_api,
            TARGET,
            replica="raw_transactions",
            integration_id=INTEGRATION_ID,
            source_database="storefront",
            deadline=deadline,
        )
        stub.assert_no_pending_responses()  # no CREATE was submitted
    assert created is False


def test_a_failed_statement_reports_redshifts_error(deadline: Deadline) -> None:
    data_api = stubbed_client("redshift-data")
    with Stubber(data_api) as stub:
        stub_exists_check(stub, found=False)
        response, request = submitted("create-1", CREATE)
        stub.add_response("execute_statement", response, request)
        error = "ERROR: Source database storefront does not exist in the integration"
        stub.add_response(
            "describe_statement",
            described("create-1", "FAILED", Error=error),
            {"Id": "create-1"},
        )
        with pytest.raises(DataError, match="create-1 FAILED: ERROR: Source database storefront"):
            create_database_from_integration(
                data_api,
                TARGET,
                replica="raw_transactions",
                integration_id=INTEGRATION_ID,
                source_database="storefront",
                deadline=deadline,
            )


def test_access_denied_is_a_config_error(deadline: Deadline) -> None:
    data_api = stubbed_client("redshift-data")
    with Stubber(data_api) as stub:
        stub.add_client_error(
            "execute_statement", "AccessDeniedException", "not authorized", http_status_code=400
        )
        with pytest.raises(ConfigError, match="workgroup zetl-dev: AccessDeniedException"):
            create_database_from_integration(
                data_api,
                TARGET,
                replica="raw_transactions",
                integration_id=INTEGRATION_ID,
                source_database="storefront",
                deadline=deadline,
            )


@pytest.mark.parametrize(
    ("replica", "integration_id", "source", "message"),
    [
        ('x"; drop database dev; --', INTEGRATION_ID, "storefront", "replica database"),
        ("raw_transactions", "' or 1=1 --", "storefront", "not an integration UUID"),
        ("raw_transactions", INTEGRATION_ID, "Store Front", "source database"),
    ],
)
def test_only_plain_identifiers_reach_the_sql(
    replica: str, integration_id: str, source: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        create_database_sql(replica, integration_id, source)


OPTIONS: dict[str, bool | int | None] = {
    "QUERY_ALL_STATES": None,
    "ACCEPTINVCHARS": None,
    "REFRESH_INTERVAL": 60,
    "TRUNCATECOLUMNS": True,
    "AUTO_REMEDIATION": None,
}


def test_create_database_sets_the_options_from_their_one_definition() -> None:
    assert create_database_sql("raw_transactions", INTEGRATION_ID, "storefront", OPTIONS) == (
        CREATE + " SET REFRESH_INTERVAL 60 TRUNCATECOLUMNS = TRUE"
    )
    assert create_database_sql("raw_transactions", INTEGRATION_ID, "storefront", {}) == CREATE
    assert alter_database_sql("raw_transactions", {"QUERY_ALL_STATES": True}) == (
        'ALTER DATABASE "raw_transactions" INTEGRATION SET QUERY_ALL_STATES = TRUE'
    )
    assert alter_database_sql("raw_transactions", {"TRUNCATECOLUMNS": None}) is None


def test_options_aws_would_refuse_are_refused_with_the_reason() -> None:
    with pytest.raises(ConfigError, match=r"HISTORY_MODE cannot be set on AWS: .*RDS for MySQL"):
        create_database_sql(
            "raw_transactions", INTEGRATION_ID, "storefront", {"HISTORY_MODE": True}
        )
    with pytest.raises(ConfigError, match=r"REFRESH_INTERVAL .*0 to 432000"):
        alter_database_sql("raw_transactions", {"REFRESH_INTERVAL": 432_001})
    with pytest.raises(ConfigError, match="unknown option"):
        alter_database_sql("raw_transactions", {"COMPRESSION": True})


def test_an_existing_database_gets_its_options_with_alter_database(deadline: Deadline) -> None:
    data_api = stubbed_client("redshift-data")
    alter = (
        'ALTER DATABASE "raw_transactions" INTEGRATION SET REFRESH_INTERVAL 60'
        " TRUNCATECOLUMNS = TRUE"
    )
    with Stubber(data_api) as stub:
        stub_exists_check(stub, found=True)
        response, request = submitted("alter-1", alter)
        stub.add_response("execute_statement", response, request)
        stub.add_response("describe_statement", described("alter-1", "FINISHED"), {"Id": "alter-1"})
        created = create_database_from_integration(
            data_api,
            TARGET,
            replica="raw_transactions",
            integration_id=INTEGRATION_ID,
            source_database="storefront",
            deadline=deadline,
            options=OPTIONS,
        )
        stub.assert_no_pending_responses()
    assert created is False


def test_terraforms_options_are_the_one_definitions_aws_options() -> None:
    """Terraform's replica_database_options names exactly the options AWS takes."""
    from pathlib import Path

    from zetl.integration import DATABASE_OPTIONS

    text = (Path(__file__).resolve().parents[3] / "infra/terraform/variables.tf").read_text()
    block = text[text.index('variable "replica_database_options"') :]
    block = block[: block.index("default =")]
    names = set(re.findall(r"^\s+([A-Z_]+)\s+=\s+optional", block, re.M))
    assert names == {o.name for o in DATABASE_OPTIONS.values() if not o.local_only}
