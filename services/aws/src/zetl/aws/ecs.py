"""Run one-off ECS tasks to completion, and scale services."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from zetl.aws.errors import aws_errors
from zetl.aws.waiting import Deadline, poll
from zetl.errors import DataError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Placement:
    """Where Fargate tasks run: the cluster, private subnets and the tasks' security group."""

    cluster: str
    subnets: list[str]
    security_groups: list[str]


def start_task(ecs: Any, placement: Placement, task_definition: str) -> str:
    """Start one Fargate task; return its ARN."""
    with aws_errors(f"starting task {task_definition}"):
        response = ecs.run_task(
            cluster=placement.cluster,
            taskDefinition=task_definition,
            launchType="FARGATE",
            count=1,
            networkConfiguration={
                "awsvpcConfiguration": {
                    "subnets": placement.subnets,
                    "securityGroups": placement.security_groups,
                    "assignPublicIp": "DISABLED",
                }
            },
            startedBy="zetl-deploy",
        )
    failures = response.get("failures") or []
    if failures or not response.get("tasks"):
        reasons = "; ".join(f"{f.get('reason')}: {f.get('detail', '')}" for f in failures)
        raise DataError(f"ECS did not start {task_definition}: {reasons or 'no task returned'}")
    arn: str = response["tasks"][0]["taskArn"]
    logger.info("task started", extra={"task": arn})
    return arn


def wait_for_task(ecs: Any, cluster: str, task_arn: str, deadline: Deadline) -> int:
    """Wait until the task stops; return its exit code, fail when it did not exit 0."""

    def look() -> dict[str, Any] | None:
        with aws_errors(f"describing task {task_arn}"):
            response = ecs.describe_tasks(cluster=cluster, tasks=[task_arn])
        tasks = response.get("tasks") or []
        if not tasks:
            raise DataError(f"task {task_arn} vanished from cluster {cluster}")
        task: dict[str, Any] = tasks[0]
        logger.info("task status", extra={"task": task_arn, "status": task.get("lastStatus")})
        return task if task.get("lastStatus") == "STOPPED" else None

    task = poll(look, deadline, f"task {task_arn} to stop")
    containers = task.get("containers") or []
    codes = [c.get("exitCode") for c in containers]
    if not containers or any(code != 0 for code in codes):
        details = "; ".join(
            f"{c.get('name')}: exit {c.get('exitCode')} {c.get('reason', '')}".strip()
            for c in containers
        )
        raise DataError(
            f"task {task_arn} failed ({task.get('stoppedReason', 'no reason given')}; "
            f"{details or 'no containers'}); its logs are in CloudWatch"
        )
    return 0


def scale_service(ecs: Any, cluster: str, service: str, desired_count: int) -> None:
    if desired_count < 0:
        raise ValueError("desired_count must not be negative")
    with aws_errors(f"scaling service {service} to {desired_count}"):
        ecs.update_service(cluster=cluster, service=service, desiredCount=desired_count)
    logger.info("service scaled", extra={"service": service, "desired_count": desired_count})
