"""Where `zetl transform` finds the dbt project when nothing names it."""

from __future__ import annotations

from pathlib import Path

from zetl_transform.project import project_dir


def test_project_dir_is_found_from_the_checkout() -> None:
    assert project_dir({}) == Path(__file__).resolve().parents[3] / "transform"
    assert (project_dir({}) / "profiles.yml").is_file()
