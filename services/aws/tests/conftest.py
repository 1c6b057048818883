"""AWS tests run against moto (where it implements the API) or botocore's Stubber (real
request and response shapes, checked by botocore); never against AWS."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from zetl.aws.waiting import Deadline

REGION = "us-east-1"
INTEGRATION_ID = "3c1b2a9e-7f44-4a0c-9a7e-0d5c2f1e8b21"
INTEGRATION_ARN = f"arn:aws:rds:{REGION}:123456789012:integration:{INTEGRATION_ID}"


@pytest.fixture(autouse=True)
def fake_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Credentials that work only with moto: nothing here can reach a real account."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


def stubbed_client(service: str) -> Any:
    return boto3.client(service, region_name=REGION)


class FakeClock:
    """A clock that advances only when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def deadline(clock: FakeClock) -> Deadline:
    return Deadline(timeout_s=300, interval_s=30, sleep=clock.sleep, clock=clock)


def terraform_outputs(**overrides: Any) -> dict[str, Any]:
    """What `terraform output -json` prints for a deployed stack (values as in outputs.tf)."""
    values: dict[str, Any] = {
        "region": REGION,
        "source_endpoint": "zetl-dev-source.abc123.us-east-1.rds.amazonaws.com",
        "source_port": 5432,
        "source_database": "storefront",
        "source_username": "zetl",
        "source_secret_arn": f"arn:aws:secretsmanager:{REGION}:123456789012:secret:rds!db-1",
        "source_identifier": "zetl-dev-source",
        "source_arn": f"arn:aws:rds:{REGION}:123456789012:db:zetl-dev-source",
        "source_final_snapshot": "zetl-dev-source-final",
        "warehouse_endpoint": "zetl-dev.123456789012.us-east-1.redshift-serverless.amazonaws.com",
        "warehouse_port": 5439,
        "warehouse_database": "dev",
        "warehouse_workgroup": "zetl-dev",
        "warehouse_namespace": "zetl-dev",
        "warehouse_namespace_arn": f"arn:aws:redshift-serverless:{REGION}:123456789012:namespace/x",
        "warehouse_username": "zetl_admin",
        "warehouse_secret_arn": f"arn:aws:secretsmanager:{REGION}:123456789012:secret:rs-1",
        "replica_database": "raw_transactions",
        "integration_arn": INTEGRATION_ARN,
        "integration_identifier": INTEGRATION_ID,
        "ecr_repositories": {
            "loader": f"123456789012.dkr.ecr.{REGION}.amazonaws.com/zetl-dev/loader",
            "generator": f"123456789012.dkr.ecr.{REGION}.amazonaws.com/zetl-dev/generator",
        },
        "image_tag": "0a1b2c3d4e5f",
        "ecs_cluster": "zetl-dev",
        "task_definitions": {
            "migrate": f"arn:aws:ecs:{REGION}:123456789012:task-definition/zetl-dev-migrate:1",
            "loader": f"arn:aws:ecs:{REGION}:123456789012:task-definition/zetl-dev-loader:1",
        },
        "task_images": {"migrate": "loader", "loader": "loader"},
        "ecs_services": ["generator"],
        "task_subnet_ids": ["subnet-0123456789abcdef0"],
        "task_security_group_id": "sg-0123456789abcdef0",
        "log_group": "/zetl/zetl-dev/ecs",
    }
    values.update(overrides)
    return {k: {"sensitive": False, "type": "string", "value": v} for k, v in values.items()}


@pytest.fixture
def outputs_file(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(terraform_outputs()), encoding="utf-8")
    yield path
