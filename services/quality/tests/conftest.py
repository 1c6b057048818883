"""The marts checkpoint reads the marts' contracts from dbt's manifest: one made here for the
session (``dbt parse`` of transform/), so no test depends on an earlier dbt run."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import parse_manifest


@pytest.fixture(scope="session")
def dbt_manifest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return parse_manifest(tmp_path_factory.mktemp("dbt"))


@pytest.fixture(autouse=True)
def _reads_the_manifest(dbt_manifest: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZETL_DBT_MANIFEST", str(dbt_manifest))
