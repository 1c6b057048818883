"""Adding a mart is one .sql and one .yml: a copy of the dbt project gains a mart whose YAML
declares its grain, a key and a sign rule (meta zetl_quality); once built, the marts
checkpoint checks it with no change to the quality service, and fails when its rule breaks."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.quality.conftest import Platform, checkpoint_results
from tests.support import build_marts
from zetl.dbt import project_dir

pytestmark = [pytest.mark.docker, pytest.mark.slow]

MART = "players_by_country"
MART_SQL = """
select country_code, count(*) as player_count
from {{ ref('stg_customer') }}
where country_code is not null
group by country_code
"""
MART_YML = f"""version: 2
models:
- name: {MART}
  description: How many players each country has.
  config:
    meta:
      zetl_quality:
        grain: [country_code]
  columns:
  - name: country_code
    config:
      meta:
        zetl_quality: {{traces_to: customer.country_code}}
  - name: player_count
    config:
      meta:
        zetl_quality: {{min: 1}}
"""


def project_with_a_new_mart(tmp: Path) -> Path:
    copy = tmp / "transform"
    shutil.copytree(project_dir(), copy, ignore=shutil.ignore_patterns("target", "logs"))
    (copy / "models" / "marts" / f"{MART}.sql").write_text(MART_SQL, encoding="utf-8")
    (copy / "models" / "marts" / f"{MART}.yml").write_text(MART_YML, encoding="utf-8")
    return copy


def run_marts(platform: Platform, project: Path) -> subprocess.CompletedProcess[str]:
    env = {**platform.env(), "ZETL_DBT_PROJECT_DIR": str(project)}
    env.pop("ZETL_DBT_MANIFEST", None)  # the manifest of the project built, target/
    return subprocess.run(
        [sys.executable, "-m", "zetl", "dq", "run", "marts"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_a_mart_added_in_yaml_is_checked_by_the_marts_checkpoint(
    platform: Platform, tmp_path: Path
) -> None:
    before = run_marts(platform, project_dir())
    assert before.returncode == 0, before.stdout + before.stderr
    evaluated_before = checkpoint_results(platform)[-1][2]

    project = project_with_a_new_mart(tmp_path)
    build_marts(platform.config.warehouse_url, platform.config.replica_database, project=project)
    passed = run_marts(platform, project)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    # Its grain, its key and its sign rule: three expectations more.
    assert checkpoint_results(platform)[-1][2] == evaluated_before + 3

    platform.execute(
        platform.warehouse,
        platform.dev,
        f"UPDATE analytics.{MART} SET player_count = 0"
        f" WHERE country_code = (SELECT min(country_code) FROM analytics.{MART})",
    )
    failed = run_marts(platform, project)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert f"FAILED sign {MART}.player_count >= 1" in failed.stdout
    assert failed.stdout.count("FAILED ") == 1, "only the broken rule fails"
