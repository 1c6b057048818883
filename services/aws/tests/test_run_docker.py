"""run_docker: the one place zetl calls the docker client (image builds and pushes)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from zetl.aws.images import run_docker
from zetl.errors import ConfigError, DataError


@pytest.fixture
def fake_docker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A `docker` on PATH that records its arguments and stdin, and fails on `push`."""
    log = tmp_path / "calls.log"
    script = tmp_path / "docker"
    script.write_text(
        "#!/bin/sh\n"
        f'echo "args: $*" >> {log}\n'
        f'echo "stdin: $(cat)" >> {log}\n'
        'if [ "$1" = push ]; then echo "denied: not authorized" >&2; exit 1; fi\n'
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    return log


def test_passes_arguments_and_stdin(fake_docker: Path) -> None:
    run_docker(["login", "--password-stdin", "registry"], "s3cret")
    assert fake_docker.read_text() == "args: login --password-stdin registry\nstdin: s3cret\n"


def test_a_failure_is_a_data_error_with_dockers_own_words(fake_docker: Path) -> None:
    with pytest.raises(DataError, match="docker push failed: denied: not authorized"):
        run_docker(["push", "repo:tag"])


def test_no_docker_client_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(ConfigError, match="docker is not installed"):
        run_docker(["version"])
