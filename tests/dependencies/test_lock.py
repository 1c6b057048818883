"""requirements.lock covers the whole main environment: every service, editable, and the
workspace's extras, so `make install` on a new machine gets the versions the tests ran with."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]


def editables(path: Path) -> set[str]:
    return set(re.findall(r"^-e (\S+)$", path.read_text("utf-8"), flags=re.MULTILINE))


def pinned(path: Path) -> set[str]:
    lines = path.read_text("utf-8").splitlines()
    return {canonicalize_name(m[1]) for line in lines if (m := re.match(r"([\w.-]+)==", line))}


def test_every_service_is_an_editable_input_of_the_lock() -> None:
    services = {f"./{p.parent.relative_to(ROOT)}" for p in ROOT.glob("services/*/pyproject.toml")}
    assert editables(ROOT / "requirements.in") >= services
    assert editables(ROOT / "requirements.lock") >= services | {"."}


def test_every_direct_requirement_is_pinned_in_the_lock() -> None:
    lock = pinned(ROOT / "requirements.lock")
    projects = {
        path: tomllib.loads(path.read_text("utf-8"))["project"]
        for path in [ROOT / "pyproject.toml", *ROOT.glob("services/*/pyproject.toml")]
    }
    local = {canonicalize_name(project["name"]) for project in projects.values()}
    for path, project in projects.items():
        requirements = list(project.get("dependencies", []))
        for extra in project.get("optional-dependencies", {}).values():
            requirements += extra
        for text in requirements:
            name = canonicalize_name(Requirement(text).name)
            assert name in lock or name in local, (
                f"{path.relative_to(ROOT)}: {name} is not in requirements.lock (make lock)"
            )
