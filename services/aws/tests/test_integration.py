"""Waiting for the integration: moto has no RDS integrations, so botocore's Stubber answers
with DescribeIntegrations' real response shape."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.stub import Stubber

from zetl.aws.integration import wait_until_active
from zetl.aws.waiting import Deadline
from zetl.errors import ConfigError, DataError

from .conftest import INTEGRATION_ARN, FakeClock, stubbed_client


def integration(status: str, **extra: Any) -> dict[str, Any]:
    return {
        "Integrations": [
            {
                "SourceArn": "arn:aws:rds:us-east-1:123456789012:db:zetl-dev-source",
                "TargetArn": "arn:aws:redshift-serverless:us-east-1:123456789012:namespace/ns",
                "IntegrationName": "zetl-dev",
                "IntegrationArn": INTEGRATION_ARN,
                "KMSKeyId": "arn:aws:kms:us-east-1:123456789012:key/k",
                "Status": status,
                "DataFilter": "include: storefront.public.*",
                "CreateTime": datetime(2026, 1, 1, tzinfo=UTC),
                **extra,
            }
        ]
    }


EXPECTED = {"IntegrationIdentifier": INTEGRATION_ARN}


def test_waits_through_creating_and_syncing_until_active(
    deadline: Deadline, clock: FakeClock
) -> None:
    rds = stubbed_client("rds")
    with Stubber(rds) as stub:
        for status in ("creating", "creating", "syncing", "active"):
            stub.add_response("describe_integrations", integration(status), EXPECTED)
        result = wait_until_active(rds, INTEGRATION_ARN, deadline)
        stub.assert_no_pending_responses()
    assert result["Status"] == "active"
    assert clock.sleeps == [30, 30, 30]


def test_a_failed_integration_stops_the_wait_with_its_errors(deadline: Deadline) -> None:
    rds = stubbed_client("rds")
    errors = [{"ErrorCode": "InvalidParameterGroup", "ErrorMessage": "rds.logical_replication"}]
    with Stubber(rds) as stub:
        stub.add_response("describe_integrations", integration("creating"), EXPECTED)
        stub.add_response("describe_integrations", integration("failed", Errors=errors), EXPECTED)
        with pytest.raises(DataError, match=r"is failed: InvalidParameterGroup: rds\.logical"):
            wait_until_active(rds, INTEGRATION_ARN, deadline)


def test_needs_attention_is_not_waited_out(deadline: Deadline) -> None:
    rds = stubbed_client("rds")
    with Stubber(rds) as stub:
        stub.add_response("describe_integrations", integration("needs_attention"), EXPECTED)
        with pytest.raises(DataError, match="needs_attention: no error details"):
            wait_until_active(rds, INTEGRATION_ARN, deadline)


def test_an_unknown_integration_is_a_config_error(deadline: Deadline) -> None:
    rds = stubbed_client("rds")
    with Stubber(rds) as stub:
        stub.add_client_error(
            "describe_integrations",
            service_error_code="IntegrationNotFoundFault",
            service_message="Integration not found",
            http_status_code=404,
            expected_params=EXPECTED,
        )
        with pytest.raises(ConfigError, match="IntegrationNotFoundFault: Integration not found"):
            wait_until_active(rds, INTEGRATION_ARN, deadline)


def test_an_integration_that_never_turns_active_times_out(
    deadline: Deadline, clock: FakeClock
) -> None:
    rds = stubbed_client("rds")
    with Stubber(rds) as stub:
        # Looks at 0, 30, ..., 300 s: eleven, then the next would pass the deadline.
        for _ in range(11):
            stub.add_response("describe_integrations", integration("creating"), EXPECTED)
        with pytest.raises(DataError, match="timed out after 300s"):
            wait_until_active(rds, INTEGRATION_ARN, deadline)
        stub.assert_no_pending_responses()
    assert clock.now == 300
