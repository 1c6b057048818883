"""``zetl aws ...``: the promotion steps `make deploy-aws` and `make destroy-aws` run.

Every command but ``preflight`` reads the stack's coordinates from the file
``terraform output -json`` wrote (``--outputs``, default ``infra/terraform/.zetl/outputs.json``).
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from functools import cache
from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from zetl.aws.outputs import StackOutputs
from zetl.aws.waiting import Deadline
from zetl.errors import ConfigError

# boto3, botocore and rich are imported by the commands that use them (the step modules import
# botocore): every other zetl command starts without paying for them.
if TYPE_CHECKING:
    from rich.console import Console

aws_app = typer.Typer(help="Promote the platform to AWS (used by make deploy-aws / destroy-aws).")

DEFAULT_OUTPUTS = Path("infra/terraform/.zetl/outputs.json")
OutputsOption = Annotated[
    Path,
    typer.Option("--outputs", envvar="ZETL_AWS_OUTPUTS", help="terraform output -json file"),
]


@cache
def console() -> Console:
    from rich.console import Console

    return Console(stderr=True)


def client(service: str, region: str) -> Any:
    """A boto3 client (the tests replace this function with fakes)."""
    from zetl.aws.clients import client as boto3_client

    return boto3_client(service, region)


@contextmanager
def progress(message: str) -> Iterator[None]:
    """A spinner on a terminal; elsewhere the steps' structured logs show progress."""
    with console().status(message) if sys.stderr.isatty() else nullcontext():
        yield


def _deadline(timeout: float, interval: float) -> Deadline:
    if timeout <= 0 or interval <= 0:
        raise ConfigError("--timeout and --interval must be positive")
    return Deadline(timeout_s=timeout, interval_s=interval)


@aws_app.command("preflight")
def preflight_command(
    region: Annotated[str | None, typer.Option(envvar="AWS_REGION")] = None,
    engine_version: Annotated[str, typer.Option(help="source_engine_version to check")] = "17",
    docker: Annotated[bool, typer.Option(help="also require docker")] = True,
) -> None:
    """Check credentials, region, terraform, docker and the engine version before deploying."""
    from zetl.aws import images, preflight

    if not re.fullmatch(r"\d+(\.\d+)?", engine_version):
        raise ConfigError(f"--engine-version {engine_version!r} is not like 17 or 17.5")
    checks = [preflight.check_region(region), preflight.check_tool("terraform")]
    if docker:
        checks.append(preflight.check_dockerfiles(Path(), images.DOCKERFILES))
        checks += [preflight.check_tool("docker"), preflight.check_docker_daemon()]
    if region:
        checks.append(preflight.check_credentials(client("sts", region)))
        checks.append(preflight.check_engine_version(client("rds", region), engine_version))
    for check in checks:
        mark = "[green]ok[/green]" if check.ok else "[red]FAILED[/red]"
        console().print(f"{mark:>24}  {check.name}: {check.detail}")
    failed = [c.name for c in checks if not c.ok]
    if failed:
        raise ConfigError("preflight failed: " + ", ".join(failed))


@aws_app.command("push-images")
def push_images_command(outputs: OutputsOption = DEFAULT_OUTPUTS, root: Path = Path()) -> None:
    """Build the images and push them to ECR with the stack's image tag."""
    from zetl.aws import images

    stack = StackOutputs.load(outputs)
    build_args = {k: os.environ[k] for k in ("PYTHON_IMAGE",) if os.environ.get(k)}
    with progress("building and pushing images"):
        pushed = images.push_images(
            client("ecr", stack.region), stack.ecr_repositories, stack.image_tag, root, build_args
        )
    typer.echo(f"pushed {len(pushed)} image(s) with tag {stack.image_tag}")


@aws_app.command("run-task")
def run_task_command(
    task: str,
    outputs: OutputsOption = DEFAULT_OUTPUTS,
    timeout: Annotated[float, typer.Option(help="seconds")] = 3600,
    interval: Annotated[float, typer.Option(help="seconds between looks")] = 10,
) -> None:
    """Run one task (migrate, loader, transform, ...) on Fargate and wait for exit code 0."""
    from zetl.aws import ecs

    stack = StackOutputs.load(outputs)
    deadline = _deadline(timeout, interval)
    ecs_client = client("ecs", stack.region)
    placement = ecs.Placement(
        stack.ecs_cluster, stack.task_subnet_ids, [stack.task_security_group_id]
    )
    arn = ecs.start_task(ecs_client, placement, stack.task_definition(task))
    with progress(f"running {task}"):
        ecs.wait_for_task(ecs_client, stack.ecs_cluster, arn, deadline)
    typer.echo(f"{task} finished: exit 0 (logs: {stack.log_group}, stream prefix {task})")


@aws_app.command("scale-service")
def scale_service_command(
    service: str, count: int, outputs: OutputsOption = DEFAULT_OUTPUTS
) -> None:
    """Set a service's desired task count (the generator starts at 0)."""
    from zetl.aws import ecs

    stack = StackOutputs.load(outputs)
    if service not in stack.ecs_services:
        raise ConfigError(f"no service {service!r}; services: {', '.join(stack.ecs_services)}")
    if count < 0:
        raise ConfigError("count must not be negative")
    ecs.scale_service(client("ecs", stack.region), stack.ecs_cluster, service, count)
    typer.echo(f"{service}: desired count {count}")


@aws_app.command("wait-integration")
def wait_integration_command(
    outputs: OutputsOption = DEFAULT_OUTPUTS,
    timeout: Annotated[float, typer.Option(help="seconds")] = 5400,
    interval: Annotated[float, typer.Option(help="seconds between looks")] = 30,
) -> None:
    """Wait until the zero-ETL integration is active."""
    from zetl.aws import integration

    stack = StackOutputs.load(outputs)
    with progress("waiting for the zero-ETL integration"):
        integration.wait_until_active(
            client("rds", stack.region), stack.integration_arn, _deadline(timeout, interval)
        )
    typer.echo(f"integration {stack.integration_identifier} is active")


@aws_app.command("create-database")
def create_database_command(
    outputs: OutputsOption = DEFAULT_OUTPUTS,
    timeout: Annotated[float, typer.Option(help="seconds per statement")] = 900,
    interval: Annotated[float, typer.Option(help="seconds between looks")] = 5,
) -> None:
    """Create the replica database from the integration (Redshift Data API); idempotent."""
    from zetl.aws import database

    stack = StackOutputs.load(outputs)
    target = database.Target(
        stack.warehouse_workgroup, stack.warehouse_database, stack.warehouse_secret_arn
    )
    with progress(f"creating {stack.replica_database} from the integration"):
        created = database.create_database_from_integration(
            client("redshift-data", stack.region),
            target,
            replica=stack.replica_database,
            integration_id=stack.integration_identifier,
            source_database=stack.source_database,
            options=stack.replica_database_options,
            deadline=_deadline(timeout, interval),
        )
    state = "created" if created else "already exists"
    typer.echo(f"database {stack.replica_database} {state} on {stack.warehouse_workgroup}")


@aws_app.command("endpoints")
def endpoints_command(outputs: OutputsOption = DEFAULT_OUTPUTS) -> None:
    """Print the endpoints and how to connect."""
    s = StackOutputs.load(outputs)
    typer.echo(
        f"source (RDS for PostgreSQL, private): {s.source_endpoint}:{s.source_port}/"
        f"{s.source_database} as {s.source_username}\n"
        f"  password: aws secretsmanager get-secret-value --secret-id {s.source_secret_arn}\n"
        f"warehouse (Redshift Serverless, private): {s.warehouse_endpoint}:{s.warehouse_port}/"
        f"{s.warehouse_database} as {s.warehouse_username} (workgroup {s.warehouse_workgroup})\n"
        f"  password: aws secretsmanager get-secret-value --secret-id {s.warehouse_secret_arn}\n"
        f"  query without network access: aws redshift-data execute-statement "
        f"--workgroup-name {s.warehouse_workgroup} --database {s.warehouse_database} "
        f"--secret-arn {s.warehouse_secret_arn} --sql 'select count(*) from "
        f"{s.replica_database}.public.<table>'\n"
        f"replica database: {s.replica_database} (integration {s.integration_identifier})\n"
        f"task logs: aws logs tail {s.log_group} --follow\n"
        f"images: {', '.join(sorted(s.ecr_repositories.values()))} (tag {s.image_tag})"
    )


@aws_app.command("leftovers")
def leftovers_command(outputs: OutputsOption = DEFAULT_OUTPUTS) -> None:
    """After `terraform destroy`: say what is left (final snapshot, log groups)."""
    from zetl.aws.errors import aws_errors

    s = StackOutputs.load(outputs)
    left: list[str] = []
    if s.source_final_snapshot:
        rds = client("rds", s.region)
        with aws_errors(f"looking for snapshot {s.source_final_snapshot}"):
            snapshots = rds.describe_db_snapshots(
                DBInstanceIdentifier=s.source_identifier, SnapshotType="manual"
            )["DBSnapshots"]
        left += [
            f"RDS snapshot {snap['DBSnapshotIdentifier']} ({snap.get('AllocatedStorage')} GiB): "
            f"aws rds delete-db-snapshot --db-snapshot-identifier {snap['DBSnapshotIdentifier']}"
            for snap in snapshots
        ]
    logs = client("logs", s.region)
    prefix = s.log_group.rsplit("/", 1)[0]
    with aws_errors(f"looking for log groups under {prefix}"):
        groups = logs.describe_log_groups(logGroupNamePrefix=prefix)["logGroups"]
    left += [f"log group {g['logGroupName']}" for g in groups]
    left.append("KMS keys: scheduled for deletion after their 7-day waiting period (no action)")
    typer.echo("left behind:\n  " + "\n  ".join(left))


def register(app: typer.Typer) -> None:
    """Entry point of the ``zetl.commands`` group: adds ``zetl aws``.

    Without the aws extra, this raises ModuleNotFoundError as an import would, so ``zetl``
    lists the command as unavailable and says what to install, without importing boto3 here.
    """
    for package in ("boto3", "botocore"):
        if find_spec(package) is None:
            raise ModuleNotFoundError(f"No module named {package!r}", name=package)
    app.add_typer(aws_app, name="aws")
