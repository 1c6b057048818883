"""Running tasks: moto starts them and scales services (its EC2 knows the subnets); the exit
codes of stopped containers, which moto does not model, come from botocore's Stubber."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from zetl.aws.ecs import Placement, scale_service, start_task, wait_for_task
from zetl.aws.waiting import Deadline
from zetl.errors import ConfigError, DataError

from .conftest import REGION, stubbed_client

TASK_ARN = f"arn:aws:ecs:{REGION}:123456789012:task/zetl-dev/0123456789abcdef"


@pytest.fixture
def moto_cluster() -> Iterator[tuple[Any, Placement, str]]:
    with mock_aws():
        ec2 = boto3.client("ec2", region_name=REGION)
        vpc = ec2.create_vpc(CidrBlock="10.42.0.0/16")["Vpc"]["VpcId"]
        # As modules/network creates it (moto's task ENIs need the DNS host names too).
        ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.42.0.0/24")["Subnet"]["SubnetId"]
        group = ec2.create_security_group(GroupName="tasks", Description="t", VpcId=vpc)
        ecs = boto3.client("ecs", region_name=REGION)
        ecs.create_cluster(clusterName="zetl-dev")
        task_definition = ecs.register_task_definition(
            family="zetl-dev-migrate",
            requiresCompatibilities=["FARGATE"],
            networkMode="awsvpc",
            cpu="256",
            memory="512",
            containerDefinitions=[
                {"name": "migrate", "image": "loader:1", "command": ["migrate"], "memory": 512}
            ],
        )["taskDefinition"]["taskDefinitionArn"]
        yield ecs, Placement("zetl-dev", [subnet], [group["GroupId"]]), task_definition


def test_start_task_runs_on_fargate_in_the_private_subnets(
    moto_cluster: tuple[Any, Placement, str],
) -> None:
    ecs, placement, task_definition = moto_cluster
    arn = start_task(ecs, placement, task_definition)
    task = ecs.describe_tasks(cluster="zetl-dev", tasks=[arn])["tasks"][0]
    assert task["taskDefinitionArn"] == task_definition
    assert task["launchType"] == "FARGATE"
    assert task["startedBy"] == "zetl-deploy"


def test_an_unknown_cluster_is_reported(moto_cluster: tuple[Any, Placement, str]) -> None:
    ecs, placement, task_definition = moto_cluster
    wrong = Placement("no-such-cluster", placement.subnets, placement.security_groups)
    with pytest.raises((ConfigError, DataError), match=r"starting task .*zetl-dev-migrate"):
        start_task(ecs, wrong, task_definition)


def test_scale_service_sets_the_desired_count(moto_cluster: tuple[Any, Placement, str]) -> None:
    ecs, _, task_definition = moto_cluster
    ecs.create_service(
        cluster="zetl-dev", serviceName="generator", taskDefinition=task_definition,
        desiredCount=0, launchType="FARGATE",
    )  # fmt: skip
    scale_service(ecs, "zetl-dev", "generator", 1)
    service = ecs.describe_services(cluster="zetl-dev", services=["generator"])["services"][0]
    assert service["desiredCount"] == 1


def test_capacity_failures_are_reported() -> None:
    ecs = stubbed_client("ecs")
    placement = Placement("zetl-dev", ["subnet-0123456789abcdef0"], ["sg-0123456789abcdef0"])
    with Stubber(ecs) as stub:
        stub.add_response(
            "run_task",
            {"tasks": [], "failures": [{"reason": "RESOURCE:ENI", "detail": "no ENI left"}]},
        )
        with pytest.raises(DataError, match="did not start migrate:1: RESOURCE:ENI: no ENI left"):
            start_task(ecs, placement, "migrate:1")


def described(status: str, exit_code: int | None = None, **extra: Any) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "migrate", "lastStatus": status}
    if exit_code is not None:
        container["exitCode"] = exit_code
    return {"tasks": [{"taskArn": TASK_ARN, "lastStatus": status, "containers": [container],
                       **extra}], "failures": []}  # fmt: skip


EXPECTED = {"cluster": "zetl-dev", "tasks": [TASK_ARN]}


def test_wait_for_task_returns_when_it_exits_zero(deadline: Deadline) -> None:
    ecs = stubbed_client("ecs")
    with Stubber(ecs) as stub:
        for status in ("PROVISIONING", "PENDING", "RUNNING", "DEPROVISIONING"):
            stub.add_response("describe_tasks", described(status), EXPECTED)
        stub.add_response("describe_tasks", described("STOPPED", 0), EXPECTED)
        assert wait_for_task(ecs, "zetl-dev", TASK_ARN, deadline) == 0
        stub.assert_no_pending_responses()


def test_a_non_zero_exit_fails_with_the_stop_reason(deadline: Deadline) -> None:
    ecs = stubbed_client("ecs")
    with Stubber(ecs) as stub:
        stub.add_response(
            "describe_tasks",
            described("STOPPED", 1, stoppedReason="Essential container in task exited"),
            EXPECTED,
        )
        with pytest.raises(DataError, match="Essential container in task exited; migrate: exit 1"):
            wait_for_task(ecs, "zetl-dev", TASK_ARN, deadline)


def test_a_task_that_never_started_its_container_fails(deadline: Deadline) -> None:
    ecs = stubbed_client("ecs")
    reason = "CannotPullContainerError: pull image manifest has been retried"
    with Stubber(ecs) as stub:
        stub.add_response("describe_tasks", described("STOPPED", stoppedReason=reason), EXPECTED)
        with pytest.raises(DataError, match=r"CannotPullContainerError.*migrate: exit None"):
            wait_for_task(ecs, "zetl-dev", TASK_ARN, deadline)


def test_negative_counts_are_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        scale_service(stubbed_client("ecs"), "zetl-dev", "generator", -1)
