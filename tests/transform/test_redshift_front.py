"""`zetl transform --target local-redshift`: dbt-redshift, with the adapter and macros that run
on AWS, builds and tests every model through zetl's Redshift front, twice (the second run takes
the incremental branches and reads columns as dbt-redshift reads them on Redshift); the marts
equal those the local (dbt-postgres) target builds from the same replica; `dbt docs generate`
reads the catalog, svv_table_info included."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from services.redshift.tests.conftest import FrontThread, create_front_role
from tests.support import MARTS, query
from tests.transform.conftest import Platform
from zetl_redshift.config import FrontConfig, warehouse_from_url
from zetl_redshift.tls import CA_FILE
from zetl_transform.project import dbt_env, project_dir
from zetl_transform.runner import RunOutcome, build, invoke_dbt

pytestmark = [pytest.mark.docker, pytest.mark.slow]
MODELS = len(list((project_dir() / "models").rglob("*.sql")))


@pytest.fixture(scope="module")
def front(platform: Platform, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The front before the platform's warehouse, its home the database dbt builds in."""
    database = platform.warehouse_url.rsplit("/", 1)[1]
    tls_dir = tmp_path_factory.mktemp("front-tls")
    config = FrontConfig(
        warehouse=warehouse_from_url(create_front_role(platform.server, database)),
        host="127.0.0.1",
        port=0,
        tls_dir=tls_dir,
        history_flush_seconds=0.2,
    )
    thread = FrontThread(config).start()
    try:
        with pytest.MonkeyPatch.context() as env:
            env.setenv("ZETL_REDSHIFT_FRONT_HOST", "127.0.0.1")
            env.setenv("ZETL_REDSHIFT_FRONT_PORT", str(thread.port))
            env.setenv("ZETL_REDSHIFT_CA_FILE", str(tls_dir / CA_FILE))
            yield tls_dir
    finally:
        thread.stop()


def build_through_front(platform: Platform, target: str) -> RunOutcome:
    return build(
        project=project_dir(),
        warehouse_url=platform.warehouse_url,
        replica_database=platform.replica_database,
        target=target,
        select=[],
        full_refresh=False,
    )


def marts(platform: Platform) -> dict[str, list[tuple[object, ...]]]:
    """Each mart's rows without dbt's run-specific columns."""
    found = {}
    for mart in MARTS:
        columns = [
            c
            for (c,) in query(
                platform.warehouse_url,
                "SELECT column_name FROM information_schema.columns WHERE table_schema ="
                f" 'analytics' AND table_name = '{mart}' AND column_name NOT LIKE 'zetl_%'"
                " ORDER BY ordinal_position",
            )
        ]
        found[mart] = query(
            platform.warehouse_url,
            f"SELECT {', '.join(columns)} FROM analytics.{mart} ORDER BY {', '.join(columns)}",
        )
    return found


def test_dbt_redshift_builds_every_model_through_the_front(platform: Platform, front: Path) -> None:
    first = build_through_front(platform, "local-redshift")
    assert first.success, first.failures
    assert first.models_ok == MODELS
    again = build_through_front(platform, "local-redshift")  # incremental branches
    assert again.success, again.failures
    through_front = marts(platform)
    assert any(through_front.values())
    local = build_through_front(platform, "local")
    assert local.success, local.failures
    assert marts(platform) == through_front


def test_docs_generate_reads_redshifts_catalog(platform: Platform, front: Path) -> None:
    built = build_through_front(platform, "local-redshift")
    assert built.success, built.failures
    env = dbt_env(platform.warehouse_url, platform.replica_database, "local-redshift")
    catalog, error = invoke_dbt(
        ["docs", "generate", "--target", "local-redshift"], project_dir(), env, progress=False
    )
    assert error is None
    assert not catalog.errors
    nodes = catalog.nodes.values()
    assert len(nodes) >= MODELS
    # the extended catalog of dbt-redshift: svv_table_info's statistics, read through the front
    stats = {key for node in nodes for key in node.stats}
    assert {"diststyle", "sortkey1", "size"} <= stats
