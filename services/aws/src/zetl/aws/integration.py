"""Wait for the zero-ETL integration to become active (RDS DescribeIntegrations)."""

from __future__ import annotations

import logging
from typing import Any

from zetl.aws.errors import aws_errors
from zetl.aws.waiting import Deadline, poll
from zetl.errors import ConfigError, DataError

logger = logging.getLogger(__name__)

# IntegrationStatus values (RDS API): where the integration is heading.
ACTIVE = "active"
IN_PROGRESS = frozenset({"creating", "modifying", "syncing"})
BROKEN = frozenset({"failed", "needs_attention", "deleting"})


def describe_integration(rds: Any, integration_arn: str) -> dict[str, Any]:
    with aws_errors(f"describing integration {integration_arn}"):
        found = rds.describe_integrations(IntegrationIdentifier=integration_arn)["Integrations"]
    if not found:
        raise ConfigError(f"integration {integration_arn} does not exist")
    integration: dict[str, Any] = found[0]
    return integration


def _explain(integration: dict[str, Any]) -> str:
    errors = integration.get("Errors") or []
    details = "; ".join(f"{e.get('ErrorCode')}: {e.get('ErrorMessage')}" for e in errors)
    return details or "no error details from RDS"


def wait_until_active(rds: Any, integration_arn: str, deadline: Deadline) -> dict[str, Any]:
    """Return the integration once ``active``; fail fast on a broken state or at the deadline.

    A new integration takes from a few minutes to tens of minutes (initial snapshot export).
    """

    def look() -> dict[str, Any] | None:
        integration = describe_integration(rds, integration_arn)
        status = str(integration.get("Status", "unknown"))
        logger.info("integration status", extra={"integration": integration_arn, "status": status})
        if status == ACTIVE:
            return integration
        if status in BROKEN:
            raise DataError(
                f"integration {integration_arn} is {status}: {_explain(integration)} "
                "(check the source parameter group and the target's resource policy)"
            )
        if status not in IN_PROGRESS:
            raise DataError(f"integration {integration_arn} has unexpected status {status!r}")
        return None

    return poll(look, deadline, f"integration {integration_arn} to become active")
