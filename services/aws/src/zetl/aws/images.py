"""Build the platform's images and push them to their ECR repositories."""

from __future__ import annotations

import base64
import logging
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from zetl.aws.errors import aws_errors, error_code
from zetl.errors import ConfigError, DataError

logger = logging.getLogger(__name__)

# Where each image's Dockerfile lives; every build runs from the repository root.
DOCKERFILES = {
    "loader": "services/loader/Dockerfile",
    "generator": "services/generator/Dockerfile",
    "transform": "transform/Dockerfile",
}

Runner = Callable[[Sequence[str], str | None], None]


def run_docker(args: Sequence[str], stdin: str | None = None) -> None:
    """Run ``docker <args>``; a failure is a DataError with docker's own last words."""
    try:
        # docker from PATH on purpose: whichever client the deployer uses.
        done = subprocess.run(  # noqa: S603 - fixed program, arguments from our own code
            ["docker", *args],  # noqa: S607
            input=stdin,
            capture_output=True,
            text=True,
            check=False,
        )
    except FileNotFoundError as exc:
        raise ConfigError("docker is not installed (needed to build and push the images)") from exc
    if done.returncode != 0:
        tail = str(done.stderr or done.stdout).strip().splitlines()[-3:]
        raise DataError(f"docker {args[0]} failed: {' / '.join(tail)}")


def registry_login(ecr: Any, run: Runner = run_docker) -> str:
    """Log docker in to the account's ECR registry; return the registry host."""
    with aws_errors("getting an ECR login token"):
        auth = ecr.get_authorization_token()["authorizationData"][0]
    user, password = base64.b64decode(auth["authorizationToken"]).decode().split(":", 1)
    registry = str(auth["proxyEndpoint"]).removeprefix("https://")
    run(["login", "--username", user, "--password-stdin", registry], password)
    return registry


def tag_exists(ecr: Any, repository_url: str, tag: str) -> bool:
    name = repository_url.split("/", 1)[1]
    with aws_errors(f"looking up image {name}:{tag}"):
        try:
            ecr.describe_images(repositoryName=name, imageIds=[{"imageTag": tag}])
        except ClientError as exc:
            if error_code(exc) == "ImageNotFoundException":
                return False
            raise
    return True


def push_images(
    ecr: Any,
    repositories: dict[str, str],
    tag: str,
    root: Path,
    build_args: dict[str, str] | None = None,
    run: Runner = run_docker,
) -> list[str]:
    """Build and push every image whose tag is not in ECR yet; return the pushed references.

    Tags are immutable in these repositories, so an existing tag is left alone (same commit,
    same image).
    """
    unknown = set(repositories) - set(DOCKERFILES)
    if unknown:
        raise ConfigError(f"no Dockerfile known for images {sorted(unknown)}")
    missing = [DOCKERFILES[i] for i in repositories if not (root / DOCKERFILES[i]).is_file()]
    if missing:
        raise ConfigError(f"cannot build images: {', '.join(missing)} do not exist")
    registry_login(ecr, run)
    pushed = []
    for image, url in sorted(repositories.items()):
        reference = f"{url}:{tag}"
        if tag_exists(ecr, url, tag):
            logger.info("image already pushed", extra={"image": reference})
            continue
        args = ["build", "-f", DOCKERFILES[image], "-t", reference]
        for key, value in sorted((build_args or {}).items()):
            args += ["--build-arg", f"{key}={value}"]
        run([*args, str(root)], None)
        run(["push", reference], None)
        logger.info("image pushed", extra={"image": reference})
        pushed.append(reference)
    return pushed
