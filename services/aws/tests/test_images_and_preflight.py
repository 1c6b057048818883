"""Pushing images (moto's ECR; docker replaced by a recorder) and the preflight checks."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import NoCredentialsError
from botocore.stub import Stubber
from moto import mock_aws

from zetl.aws import preflight
from zetl.aws.images import DOCKERFILES, push_images, registry_login
from zetl.errors import ConfigError

from .conftest import REGION, stubbed_client


class DockerRecorder:
    def __init__(self) -> None:
        self.calls: list[tuple[list[str], str | None]] = []

    def __call__(self, args: Sequence[str], stdin: str | None) -> None:
        self.calls.append((list(args), stdin))


@pytest.fixture
def ecr() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("ecr", region_name=REGION)
        for name in ("zetl-dev/loader", "zetl-dev/generator"):
            client.create_repository(repositoryName=name, imageTagMutability="IMMUTABLE")
        yield client


@pytest.fixture
def repo_root(tmp_path: Path) -> Path:
    for image in ("loader", "generator"):
        dockerfile = tmp_path / DOCKERFILES[image]
        dockerfile.parent.mkdir(parents=True)
        dockerfile.write_text("FROM scratch\n")
    return tmp_path


def repositories(ecr: Any) -> dict[str, str]:
    repos = ecr.describe_repositories()["repositories"]
    return {r["repositoryName"].split("/")[1]: r["repositoryUri"] for r in repos}


def test_login_feeds_the_token_password_on_stdin(ecr: Any) -> None:
    docker = DockerRecorder()
    registry = registry_login(ecr, docker)
    (args, stdin) = docker.calls[0]
    assert args[:4] == ["login", "--username", "AWS", "--password-stdin"]
    assert args[4] == registry and not registry.startswith("https://")
    assert stdin and stdin not in " ".join(args)  # the password never is an argument


def test_builds_and_pushes_each_missing_image(ecr: Any, repo_root: Path) -> None:
    docker = DockerRecorder()
    repos = repositories(ecr)
    pushed = push_images(ecr, repos, "abc123", repo_root, {"PYTHON_IMAGE": "py:3.11"}, docker)
    assert pushed == [f"{repos['generator']}:abc123", f"{repos['loader']}:abc123"]
    builds = [args for args, _ in docker.calls if args[0] == "build"]
    assert builds[1] == [
        "build", "-f", "services/loader/Dockerfile", "-t", f"{repos['loader']}:abc123",
        "--build-arg", "PYTHON_IMAGE=py:3.11", str(repo_root),
    ]  # fmt: skip
    assert [args for args, _ in docker.calls if args[0] == "push"] == [["push", p] for p in pushed]


def test_an_existing_tag_is_not_rebuilt(ecr: Any, repo_root: Path) -> None:
    manifest = '{"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json", "config": {}, "layers": []}'  # noqa: E501
    ecr.put_image(repositoryName="zetl-dev/loader", imageManifest=manifest, imageTag="abc123")
    docker = DockerRecorder()
    pushed = push_images(ecr, repositories(ecr), "abc123", repo_root, None, docker)
    assert pushed == [f"{repositories(ecr)['generator']}:abc123"]


def test_a_missing_dockerfile_stops_before_any_build(ecr: Any, tmp_path: Path) -> None:
    docker = DockerRecorder()
    with pytest.raises(ConfigError, match=r"services/loader/Dockerfile.*do not exist"):
        push_images(ecr, repositories(ecr), "abc123", tmp_path, None, docker)
    assert docker.calls == []


def test_credentials_check_names_the_account() -> None:
    with mock_aws():
        check = preflight.check_credentials(boto3.client("sts", region_name=REGION))
    assert check.ok and "account 123456789012" in check.detail


class NoCredentials:
    """An STS client whose credential chain came up empty (botocore raises while signing,
    before any request leaves, so neither moto nor Stubber can play this part)."""

    def get_caller_identity(self) -> dict[str, str]:
        raise NoCredentialsError


def test_missing_credentials_fail_the_check() -> None:
    check = preflight.check_credentials(NoCredentials())
    assert not check.ok and "no AWS credentials" in check.detail and "AWS_PROFILE" in check.detail


def test_tools_and_region_checks() -> None:
    assert preflight.check_tool("terraform", lambda _: None).detail.startswith("terraform is not")
    assert preflight.check_tool("docker", lambda _: "/usr/bin/docker").ok
    assert not preflight.check_region(None).ok
    assert preflight.check_region("eu-west-1").ok


def engine(version: str, supports: bool) -> dict[str, Any]:
    return {"DBEngineVersions": [{"Engine": "postgres", "EngineVersion": version,
                                  "DBParameterGroupFamily": "postgres17",
                                  "SupportsIntegrations": supports}]}  # fmt: skip


def test_a_major_version_is_checked_through_its_default_minor() -> None:
    rds = stubbed_client("rds")
    with Stubber(rds) as stub:
        stub.add_response(
            "describe_db_engine_versions",
            engine("17.5", True),
            {"Engine": "postgres", "DBParameterGroupFamily": "postgres17", "DefaultOnly": True},
        )
        check = preflight.check_engine_version(rds, "17")
    assert check.ok and "17.5 supports integrations" in check.detail


def test_a_version_without_integrations_fails() -> None:
    rds = stubbed_client("rds")
    with Stubber(rds) as stub:
        stub.add_response(
            "describe_db_engine_versions",
            engine("15.4", False),
            {"Engine": "postgres", "EngineVersion": "15.4"},
        )
        check = preflight.check_engine_version(rds, "15.4")
    assert not check.ok and "does not support zero-ETL" in check.detail


def test_preflight_names_a_dockerfile_that_is_not_there_yet(tmp_path: Path) -> None:
    (tmp_path / "services" / "loader").mkdir(parents=True)
    (tmp_path / "services" / "loader" / "Dockerfile").write_text("FROM scratch\n")
    dockerfiles = {"loader": "services/loader/Dockerfile", "transform": "transform/Dockerfile"}
    check = preflight.check_dockerfiles(tmp_path, dockerfiles)
    assert not check.ok and "transform/Dockerfile missing" in check.detail
    assert preflight.check_dockerfiles(tmp_path, {"loader": dockerfiles["loader"]}).ok


def test_preflight_finds_every_dockerfile_of_the_checkout() -> None:
    from zetl.aws.images import DOCKERFILES

    root = Path(__file__).resolve().parents[3]
    check = preflight.check_dockerfiles(root, DOCKERFILES)
    assert check.ok, check.detail
