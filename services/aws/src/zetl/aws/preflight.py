"""Preflight: everything `make deploy-aws` needs, checked before anything is created."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zetl.aws.errors import aws_errors
from zetl.errors import ZetlError


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def _guard(name: str, probe: Callable[[], str]) -> Check:
    try:
        return Check(name, True, probe())
    except ZetlError as exc:
        return Check(name, False, str(exc))


def check_dockerfiles(root: Path, dockerfiles: dict[str, str]) -> Check:
    """Every image the stack deploys can be built: checked before terraform creates anything
    billable, not half-way through the deploy."""
    missing = sorted(path for path in dockerfiles.values() if not (root / path).is_file())
    if missing:
        return Check(
            "dockerfiles",
            False,
            f"{', '.join(missing)} missing (every image the stack deploys is built from the"
            " checkout: run from the repository root)",
        )
    return Check("dockerfiles", True, ", ".join(sorted(dockerfiles)))


def check_tool(tool: str, which: Callable[[str], str | None] | None = None) -> Check:
    path = (which or shutil.which)(tool)
    if path is None:
        return Check(tool, False, f"{tool} is not on PATH; install it (see docs/aws.md)")
    return Check(tool, True, path)


def check_docker_daemon(run: Callable[..., Any] = subprocess.run) -> Check:
    try:
        done = run(["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True,
                   text=True, check=False, timeout=30)  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Check("docker engine", False, f"docker engine does not answer: {exc}")
    if done.returncode != 0:
        return Check("docker engine", False, "docker engine does not answer; start dockerd")
    return Check("docker engine", True, f"engine {done.stdout.strip()}")


def check_credentials(sts: Any) -> Check:
    def probe() -> str:
        with aws_errors("checking AWS credentials"):
            identity = sts.get_caller_identity()
        return f"account {identity['Account']} as {identity['Arn']}"

    return _guard("credentials", probe)


def check_region(region: str | None) -> Check:
    if not region:
        return Check("region", False, "no region: set AWS_REGION or pass --region")
    return Check("region", True, region)


def check_engine_version(rds: Any, version: str) -> Check:
    """Ask RDS whether the PostgreSQL version (major: its default minor) supports zero-ETL."""

    def probe() -> str:
        request: dict[str, Any] = {"Engine": "postgres"}
        if "." in version:
            request["EngineVersion"] = version
        else:
            request.update(DBParameterGroupFamily=f"postgres{version}", DefaultOnly=True)
        with aws_errors(f"looking up RDS for PostgreSQL {version}"):
            found = rds.describe_db_engine_versions(**request)["DBEngineVersions"]
        if not found:
            raise ZetlError(f"RDS offers no PostgreSQL {version} in this region")
        chosen = found[0]
        if not chosen.get("SupportsIntegrations"):
            raise ZetlError(
                f"PostgreSQL {chosen['EngineVersion']} does not support zero-ETL integrations "
                "here; set source_engine_version to a newer version"
            )
        return f"PostgreSQL {chosen['EngineVersion']} supports integrations"

    return _guard("engine version", probe)
