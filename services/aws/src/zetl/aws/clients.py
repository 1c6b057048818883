"""boto3 clients with the retry and timeout policy every step shares."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

# Adaptive retries absorb throttling of the describe loops; the timeouts bound one call, the
# steps bound the whole wait.
CLIENT_CONFIG = Config(
    retries={"mode": "adaptive", "max_attempts": 8},
    connect_timeout=10,
    read_timeout=60,
    user_agent_extra="zetl",
)


def client(service: str, region: str | None = None) -> Any:
    """A boto3 client for ``service`` (region from the argument, else AWS_REGION / profile)."""
    return boto3.session.Session(region_name=region).client(service, config=CLIENT_CONFIG)
