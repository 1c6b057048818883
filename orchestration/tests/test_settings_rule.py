"""The DAG reads its settings without the zetl package (Airflow's image runs the DAG folder
alone), so the NAME_FILE rule is written twice: here both are held to the same answers."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from zetl_orchestration import settings as dag_settings

from zetl.errors import ConfigError
from zetl.settings import read_env

NAME = "ZETL_TEST_SETTING"


def cases(tmp_path: Path) -> list[dict[str, str]]:
    secret = tmp_path / "secret"
    secret.write_text("from the file\n")
    empty = tmp_path / "empty"
    empty.write_text("")
    missing = tmp_path / "missing"
    return [
        {},
        {NAME: "direct"},
        {NAME: ""},
        {f"{NAME}_FILE": str(secret)},
        {f"{NAME}_FILE": str(empty)},
        {f"{NAME}_FILE": str(missing)},
        {NAME: "direct", f"{NAME}_FILE": str(secret)},
        {NAME: "", f"{NAME}_FILE": str(secret)},
    ]


def answer(read: Callable[[], str | None]) -> str | None:
    """What a reader gave: its value, or its error's text."""
    try:
        return read()
    except (ConfigError, dag_settings.SettingsError) as exc:
        return f"error: {exc}"


def test_the_dag_reads_a_setting_as_zetl_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for environ in cases(tmp_path):
        monkeypatch.delenv(NAME, raising=False)
        monkeypatch.delenv(f"{NAME}_FILE", raising=False)
        for key, value in environ.items():
            monkeypatch.setenv(key, value)
        zetl = answer(lambda: read_env(NAME, environ=dict(os.environ)) or "default")
        dag = answer(lambda: dag_settings.env(NAME, "default"))
        assert dag == zetl, environ
