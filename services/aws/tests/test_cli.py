"""`zetl aws ...` as the deploy script calls it."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
import typer
from botocore.stub import Stubber
from moto import mock_aws
from typer.testing import CliRunner

from zetl.aws.cli import register
from zetl.errors import ConfigError

from .conftest import REGION, stubbed_client, terraform_outputs


def aws_cli() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def _root() -> None:
        """zetl"""

    register(app)
    return app


def test_endpoints_say_how_to_connect(outputs_file: Path) -> None:
    result = CliRunner().invoke(aws_cli(), ["aws", "endpoints", "--outputs", str(outputs_file)])
    assert result.exit_code == 0, result.output
    assert "zetl-dev-source.abc123.us-east-1.rds.amazonaws.com:5432/storefront" in result.output
    assert "aws redshift-data execute-statement --workgroup-name zetl-dev" in result.output
    assert "raw_transactions.public.<table>" in result.output


def test_scale_service_starts_the_generator(tmp_path: Path) -> None:
    with mock_aws():
        ecs = boto3.client("ecs", region_name=REGION)
        ecs.create_cluster(clusterName="zetl-dev")
        definition = ecs.register_task_definition(
            family="zetl-dev-generator",
            containerDefinitions=[{"name": "generator", "image": "g:1", "memory": 512}],
        )["taskDefinition"]["taskDefinitionArn"]
        ecs.create_service(
            cluster="zetl-dev", serviceName="generator", taskDefinition=definition, desiredCount=0
        )
        outputs = tmp_path / "outputs.json"
        outputs.write_text(json.dumps(terraform_outputs()))
        result = CliRunner().invoke(
            aws_cli(), ["aws", "scale-service", "generator", "1", "--outputs", str(outputs)]
        )
        assert result.exit_code == 0, result.output
        service = ecs.describe_services(cluster="zetl-dev", services=["generator"])["services"][0]
    assert service["desiredCount"] == 1


def test_unknown_service_and_bad_timeouts_are_config_errors(outputs_file: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(
        aws_cli(), ["aws", "scale-service", "loader", "1", "--outputs", str(outputs_file)]
    )
    assert isinstance(result.exception, ConfigError)
    assert "no service 'loader'; services: generator" in str(result.exception)
    result = runner.invoke(
        aws_cli(), ["aws", "wait-integration", "--timeout", "0", "--outputs", str(outputs_file)]
    )
    assert isinstance(result.exception, ConfigError)


def test_commands_without_outputs_explain_how_to_get_them(tmp_path: Path) -> None:
    missing = tmp_path / "nothing.json"
    result = CliRunner().invoke(aws_cli(), ["aws", "create-database", "--outputs", str(missing)])
    assert isinstance(result.exception, ConfigError)
    assert "terraform -chdir=infra/terraform output -json" in str(result.exception)


def test_preflight_lists_every_check_and_fails_on_any(monkeypatch: pytest.MonkeyPatch) -> None:
    rds = stubbed_client("rds")
    stub = Stubber(rds)
    stub.add_response(
        "describe_db_engine_versions",
        {"DBEngineVersions": [{"Engine": "postgres", "EngineVersion": "16.2",
                               "SupportsIntegrations": False}]},
        {"Engine": "postgres", "DBParameterGroupFamily": "postgres16", "DefaultOnly": True},
    )  # fmt: skip
    with mock_aws(), stub:
        sts = boto3.client("sts", region_name=REGION)
        clients = {"sts": sts, "rds": rds}
        monkeypatch.setattr("zetl.aws.cli.client", lambda service, region: clients[service])
        monkeypatch.setattr("zetl.aws.preflight.shutil.which", lambda tool: f"/usr/bin/{tool}")
        result = CliRunner().invoke(
            aws_cli(),
            ["aws", "preflight", "--region", REGION, "--engine-version", "16", "--no-docker"],
        )
    assert isinstance(result.exception, ConfigError)
    assert str(result.exception) == "preflight failed: engine version"
    assert "credentials: account 123456789012" in result.output
    assert "PostgreSQL 16.2 does not support zero-ETL" in result.output
    assert "terraform: /usr/bin/terraform" in result.output
