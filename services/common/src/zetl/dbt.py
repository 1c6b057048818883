"""Where the dbt project (transform/) and its manifest are.

The transform service builds the project; other services read what the project declares from
dbt's manifest (``target/manifest.json``, written by every dbt run and by ``dbt parse``), so a
contract written in the models' YAML has no second copy in Python. Standard library only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from zetl.errors import ConfigError
from zetl.settings import EnvSpec, setting


@dataclass(frozen=True)
class DbtSettings(EnvSpec):
    project_dir: str = setting("ZETL_DBT_PROJECT_DIR", "")  # empty: transform/ found above
    manifest: str = setting("ZETL_DBT_MANIFEST", "")  # empty: the project's target/


def project_dir(environ: Mapping[str, str] | None = None) -> Path:
    """``ZETL_DBT_PROJECT_DIR``, else ``transform/`` of the checkout (or image) we run from."""
    configured = DbtSettings.from_env(environ).project_dir
    candidates = [Path(configured)] if configured else []
    if not configured:
        here = Path(__file__).resolve()
        candidates += [parent / "transform" for parent in (Path.cwd(), *here.parents)]
    for candidate in candidates:
        if (candidate / "dbt_project.yml").is_file():
            return candidate
    where = configured or "transform/ above the current directory"
    raise ConfigError(f"no dbt project at {where} (set ZETL_DBT_PROJECT_DIR)")


def manifest_path(environ: Mapping[str, str] | None = None) -> Path:
    """``ZETL_DBT_MANIFEST``, else the project's ``target/manifest.json``; it must exist."""
    configured = DbtSettings.from_env(environ).manifest
    path = Path(configured) if configured else project_dir(environ) / "target" / "manifest.json"
    if not path.is_file():
        raise ConfigError(
            f"no dbt manifest at {path}: any dbt run writes it (zetl transform), or `dbt parse`"
            " in the project; ZETL_DBT_MANIFEST names another"
        )
    return path
