"""The replicator's settings: every field's environment variable, its default from the field."""

from __future__ import annotations

from dataclasses import fields

import pytest

from zetl.errors import ConfigError
from zetl.settings import env_of
from zetl_replicator.config import ReplicatorConfig

URLS = {"SOURCE_DATABASE_URL": "postgresql://s/db", "WAREHOUSE_DATABASE_URL": "postgresql://w/db"}


def test_unset_and_empty_variables_keep_the_fields_defaults() -> None:
    empty = {f.metadata["env"]: "" for f in fields(ReplicatorConfig) if "env" in f.metadata}
    for environ in (URLS, {**URLS, **empty}):
        config = ReplicatorConfig.from_env(environ)
        assert config == ReplicatorConfig(
            "postgresql://s/db", "postgresql://w/db", config.replica_database
        )


def test_every_setting_is_read_from_its_variable() -> None:
    config = ReplicatorConfig.from_env(
        {
            **URLS,
            "ZETL_SLOT": "s1",
            "ZETL_PUBLICATION": "p1",
            "ZETL_SCHEMAS": "public, sales",
            "ZETL_INCLUDE": "public.a*, sales.b",
            "ZETL_DATA_FILTER": " include: db.public.t ",
            "ZETL_BATCH_MAX_SECONDS": "1.5",
            "ZETL_BATCH_MAX_BYTES": "1000",
            "ZETL_COPY_WORKERS": "0",  # at least one
            "ZETL_DISCOVERY_INTERVAL_SECONDS": "2",
            "ZETL_METRICS_PORT": "9103",
        }
    )
    assert (config.slot, config.publication) == ("s1", "p1")
    assert config.schemas == ("public", "sales")
    assert config.include == ("public.a*", "sales.b")
    assert config.data_filter == "include: db.public.t"
    assert (config.batch_max_seconds, config.batch_max_bytes) == (1.5, 1000)
    assert (config.copy_workers, config.discovery_interval_seconds) == (1, 2.0)
    assert config.metrics_port == 9103
    read = {env.name for env in env_of(ReplicatorConfig).values()}
    assert len(read) == len(fields(ReplicatorConfig)) - 3  # all but the shared settings


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("ZETL_SLOT", "Bad-Name", "lower-case letters"),
        ("ZETL_BATCH_MAX_SECONDS", "soon", "is not a number"),
        ("ZETL_BATCH_MIN_SECONDS", "-0.1", "must not be negative"),
        ("ZETL_COPY_WORKERS", "-2", "must not be negative"),
        ("ZETL_DATA_FILTER", "include: ???", "data filter"),
    ],
)
def test_bad_values_are_config_errors(name: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ReplicatorConfig.from_env({**URLS, name: value})
