from pathlib import Path

import pytest

from zetl.errors import ConfigError, ExitCode
from zetl.settings import Settings, read_env, require_env


def test_value_comes_from_the_environment() -> None:
    assert read_env("X", environ={"X": "direct"}) == "direct"


def test_value_comes_from_the_file_named_by_the_file_variant(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("s3cret\n")
    assert read_env("X", environ={"X_FILE": str(secret)}) == "s3cret"


def test_both_variants_set_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="both X and X_FILE"):
        read_env("X", environ={"X": "a", "X_FILE": str(tmp_path)})


def test_unreadable_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"X_FILE=.*cannot be read") as info:
        read_env("X", environ={"X_FILE": str(tmp_path / "missing")})
    assert info.value.exit_code == ExitCode.USAGE


def test_missing_required_value_names_the_variable() -> None:
    with pytest.raises(ConfigError, match="SOURCE_DATABASE_URL"):
        require_env("SOURCE_DATABASE_URL", environ={})


def test_defaults() -> None:
    settings = Settings.from_env({})
    assert settings.replica_database == "raw_transactions"
    assert settings.log_level == "INFO"
    with pytest.raises(ConfigError, match="WAREHOUSE_DATABASE_URL"):
        settings.require_warehouse()
