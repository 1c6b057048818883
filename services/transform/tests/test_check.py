"""`zetl transform check`: the project's models pass; a Postgres-only model fails with exactly
the constructs it uses; both branches of incremental models are rendered offline."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from zetl_redshift.dialect import check_sql
from zetl_transform.project import project_dir

pytestmark = pytest.mark.slow

POSTGRES_ONLY_MODEL = """
{{ config(materialized='view', bind=true) }}
select distinct on (customer_id)
    customer_id,
    count(*) filter (where amount > 0) over (partition by customer_id) as deposits,
    cast(wallet_transaction_code as uuid) as code
from {{ source('replica', 'wallet_transaction') }}
order by customer_id, occurred_at desc
"""

INCREMENTAL_ONLY_PROBLEM = """
{{ config(materialized='incremental', incremental_strategy='append') }}
select id, customer_id from {{ source('replica', 'wallet_transaction') }}
{% if is_incremental() %}
where id > (select max(id) from {{ this }}) and customer_id is distinct from 0
{% endif %}
"""


@pytest.fixture
def project_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "transform"
    shutil.copytree(
        project_dir(), copy, ignore=shutil.ignore_patterns("target", "logs", ".user.yml")
    )
    return copy


def test_a_postgres_only_model_fails_with_exactly_its_constructs(project_copy: Path) -> None:
    """The project's own models pass (CI runs `make transform-check` on them); the two added
    ones fail with exactly their constructs, reported as file, construct and fix, exit 1."""
    (project_copy / "models" / "marts" / "postgres_only.sql").write_text(POSTGRES_ONLY_MODEL)
    (project_copy / "models" / "marts" / "late_only.sql").write_text(INCREMENTAL_ONLY_PROBLEM)
    done = subprocess.run(
        [sys.executable, "-m", "zetl", "transform", "check", "--project", str(project_copy)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    reported = {line.split(" — fix: ")[0] for line in done.stdout.splitlines()}
    assert reported == {
        "models/marts/postgres_only.sql: DISTINCT ON",
        "models/marts/postgres_only.sql: aggregate FILTER (WHERE ...)",
        "models/marts/postgres_only.sql: uuid type",
        "models/marts/postgres_only.sql: view over the replica database that is not late-binding",
        # Only the incremental branch has it: proof that branch was rendered and checked.
        "models/marts/late_only.sql (incremental build): IS [NOT] DISTINCT FROM",
    }
    assert "DISTINCT ON — fix: use row_number() over (partition by" in done.stdout
    assert "5 Redshift incompatibilities found" in done.stderr


@pytest.mark.parametrize(
    ("statement", "construct"),
    [
        ("select a->>'x' from t", "JSON operator (->, ->>, @>, ?)"),
        ("select * from generate_series(1, 3)", "generate_series()"),
        ("insert into t values (1) on conflict do nothing", "INSERT ... ON CONFLICT"),
        ("insert into t values (1) returning id", "RETURNING"),
        ("select array[1, 2] from t", "ARRAY[...] constructor"),
        ("select * from (values (1, 2)) as v(a, b)", "VALUES list as a constant table"),
        ("select string_agg(a, ',') from t", "string_agg()"),
        ("select cast(a as jsonb) from t", "jsonb type"),
        ("select * from t, lateral (select 1) x", "LATERAL"),
    ],
)
def test_each_postgres_only_construct_is_named(statement: str, construct: str) -> None:
    assert construct in [found for found, _ in check_sql(statement)]


def test_redshift_sql_is_left_alone() -> None:
    assert (
        check_sql(
            "select listagg(a, ',') within group (order by a), convert_timezone('UTC', ts)::date,"
            " row_number() over (partition by b order by c desc) from t"
        )
        == []
    )
