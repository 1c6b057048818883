from dataclasses import dataclass
from pathlib import Path

import pytest

from zetl.errors import ConfigError, ExitCode
from zetl.settings import (
    Env,
    EnvSpec,
    Settings,
    env_of,
    port,
    read_env,
    require_env,
    seconds,
    setting,
    text,
)


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


@dataclass(frozen=True)
class Example(EnvSpec):
    """A spec as a service declares one."""

    url: str
    interval: float = setting("X_INTERVAL", 300.0, seconds)
    port: int = setting("X_PORT", 0, port)
    password: str | None = setting("X_PASSWORD", None, secret=True)


def test_a_spec_keeps_each_default_where_it_is_declared() -> None:
    assert Example.from_env({}, url="u") == Example("u", 300.0, 0, None)
    # An empty variable is an unset one.
    assert Example.from_env({"X_INTERVAL": ""}, url="u").interval == 300.0


def test_a_spec_parses_and_validates_each_variable(tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text("s3cret\n")
    example = Example.from_env(
        {"X_INTERVAL": "2.5", "X_PORT": "9102", "X_PASSWORD_FILE": str(secret)}, url="u"
    )
    assert (example.interval, example.port, example.password) == (2.5, 9102, "s3cret")
    with pytest.raises(ConfigError, match=r"X_INTERVAL='0' must be more than 0 seconds"):
        Example.from_env({"X_INTERVAL": "0"}, url="u")
    with pytest.raises(ConfigError, match="X_PORT=70000 is not a TCP port"):
        Example.from_env({"X_PORT": "70000"}, url="u")
    with pytest.raises(ConfigError, match="both X_PASSWORD and X_PASSWORD_FILE"):
        Example.from_env({"X_PASSWORD": "a", "X_PASSWORD_FILE": str(secret)}, url="u")


def test_a_secret_stays_out_of_the_repr() -> None:
    example = Example.from_env({"X_PASSWORD": "s3cret"}, url="u")
    assert "s3cret" not in repr(example)
    assert env_of(Example)["password"] == Env("X_PASSWORD", text, secret=True)


def test_the_shared_settings_are_a_spec_of_secrets() -> None:
    settings = Settings.from_env({"WAREHOUSE_DATABASE_URL": "postgresql://u:pw@h/dev"})
    assert settings.require_warehouse() == "postgresql://u:pw@h/dev"
    assert "pw" not in repr(settings)
    assert Settings.from_env({"ZETL_LOG_LEVEL": "debug"}).log_level == "DEBUG"
