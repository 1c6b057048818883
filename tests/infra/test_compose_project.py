"""Two checkouts on one Docker engine stay apart when each sets COMPOSE_PROJECT_NAME: the
setting is documented where a new user looks (.env.example, the README), and nothing in
docker-compose.yml pins a name that the project name would not prefix."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return loaded


def test_the_project_name_is_documented() -> None:
    example = (ROOT / ".env.example").read_text()
    assert re.search(r"^# COMPOSE_PROJECT_NAME=\S+$", example, re.MULTILINE)
    assert "down -v" in example  # and why it matters
    readme = (ROOT / "README.md").read_text()
    assert "COMPOSE_PROJECT_NAME" in readme and "down -v" in readme


def test_every_container_volume_and_network_is_named_by_the_project() -> None:
    spec = compose()
    assert "name" not in spec, "a top-level name would override COMPOSE_PROJECT_NAME"
    pinned = [s for s, service in spec["services"].items() if "container_name" in service]
    assert not pinned, f"container_name ignores the project name: {pinned}"
    for kind in ("volumes", "networks"):
        fixed = [
            n for n, v in (spec.get(kind) or {}).items() if v and ("name" in v or v.get("external"))
        ]
        assert not fixed, f"{kind} shared across projects: {fixed}"
