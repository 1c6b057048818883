from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

import pytest

from tests.infra.terraform import load
from zetl.aws.outputs import StackOutputs
from zetl.aws.waiting import Deadline, poll
from zetl.errors import ConfigError, DataError

from .conftest import FakeClock, terraform_outputs


def test_every_output_the_steps_read_is_a_root_output_of_the_stack() -> None:
    declared = set(load().outputs)
    read = {f.name for f in fields(StackOutputs)}
    assert read <= declared, f"outputs.tf lacks {sorted(read - declared)}"


def test_outputs_load_from_terraform_json(outputs_file: Path) -> None:
    stack = StackOutputs.load(outputs_file)
    assert stack.warehouse_workgroup == "zetl-dev"
    assert stack.task_definition("migrate").endswith("zetl-dev-migrate:1")
    with pytest.raises(ConfigError, match=r"no task 'nope'.*loader, migrate"):
        stack.task_definition("nope")


def test_missing_outputs_are_named(tmp_path: Path) -> None:
    raw = terraform_outputs()
    del raw["integration_arn"], raw["ecs_cluster"]
    path = tmp_path / "o.json"
    path.write_text(json.dumps(raw))
    with pytest.raises(ConfigError, match="lack integration_arn, ecs_cluster"):
        StackOutputs.load(path)


def test_absent_or_broken_outputs_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"does not exist.*terraform"):
        StackOutputs.load(tmp_path / "missing.json")
    broken = tmp_path / "broken.json"
    broken.write_text("Error: no state")
    with pytest.raises(ConfigError, match="not terraform's JSON output"):
        StackOutputs.load(broken)


def test_poll_returns_the_first_answer_and_sleeps_between_looks(clock: FakeClock) -> None:
    answers = iter([None, None, "ready"])
    deadline = Deadline(timeout_s=100, interval_s=10, sleep=clock.sleep, clock=clock)
    assert poll(lambda: next(answers), deadline, "x") == "ready"
    assert clock.sleeps == [10, 10]


def test_poll_gives_up_at_the_deadline(clock: FakeClock) -> None:
    deadline = Deadline(timeout_s=35, interval_s=10, sleep=clock.sleep, clock=clock)
    with pytest.raises(DataError, match="timed out after 35s waiting for the thing"):
        poll(lambda: None, deadline, "the thing")
    assert clock.now <= 35
