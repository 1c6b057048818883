"""The deploy driver refuses bad setups before it touches terraform or AWS."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.infra.terraform import ROOT

SCRIPT = ROOT.parent / "scripts" / "aws.sh"


def run(*args: str, tf_dir: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "TF_VAR_"))}
    environ.update(ZETL_TF_DIR=str(tf_dir), ZETL="/bin/false", **env)
    return subprocess.run(
        ["bash", str(SCRIPT), *args],
        capture_output=True,
        text=True,
        env=environ,
        stdin=subprocess.DEVNULL,
        timeout=30,
        check=False,
    )


def test_unknown_action_prints_usage(tmp_path: Path) -> None:
    done = run("apply", tf_dir=tmp_path)
    assert done.returncode == 2
    assert "usage: aws.sh plan|deploy|destroy" in done.stderr


def test_deploy_without_tfvars_says_what_to_copy(tmp_path: Path) -> None:
    done = run("deploy", tf_dir=tmp_path)
    assert done.returncode == 2
    assert "copy terraform.tfvars.example and set creator" in done.stderr


def test_region_mismatch_stops_before_terraform(tmp_path: Path) -> None:
    (tmp_path / "terraform.tfvars").write_text('region = "eu-west-1"\ncreator = "me"\n')
    done = run("plan", tf_dir=tmp_path, AWS_REGION="us-east-1")
    assert done.returncode == 2
    assert 'AWS_REGION=us-east-1 but terraform.tfvars says region = "eu-west-1"' in done.stderr


def test_destroy_without_a_terminal_needs_confirm(tmp_path: Path) -> None:
    (tmp_path / "terraform.tfvars").write_text('name = "zetl-test"\ncreator = "me"\n')
    done = run("destroy", tf_dir=tmp_path)
    assert done.returncode == 2
    assert "destroy needs CONFIRM=yes" in done.stderr
