"""The installed ``zetl`` command: help, version and exit codes (docs/architecture.md)."""

import json
import socket
import subprocess
import sys

import pytest

from zetl import __version__
from zetl.errors import ConfigError
from zetl.http import serve_metrics


def run_zetl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "zetl", *args], capture_output=True, text=True, timeout=60
    )


def test_help_lists_the_commands() -> None:
    result = run_zetl("--help")
    assert result.returncode == 0, result.stderr
    assert "version" in result.stdout


def test_version_prints_the_package_version() -> None:
    result = run_zetl("version")
    assert result.returncode == 0
    assert result.stdout.strip() == __version__ != "0.0.0+unknown"


def test_unknown_command_is_a_usage_error() -> None:
    result = run_zetl("no-such-command")
    assert result.returncode == 2
    assert "no-such-command" in result.stderr


def test_logs_are_json_lines_when_not_on_a_terminal() -> None:
    code = (
        "import logging; from zetl.log import configure_logging; configure_logging('INFO');"
        "logging.getLogger('zetl.test').info('copied', extra={'table': 't', 'rows': 3})"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    record = json.loads(result.stderr.strip())
    assert record["msg"] == "copied"
    assert (record["table"], record["rows"], record["level"]) == ("t", 3, "info")


def test_a_command_whose_dependency_is_missing_explains_itself() -> None:
    """A service installed without its dependencies breaks only its own command."""
    code = (
        "import sys; sys.modules['botocore'] = None; sys.modules['boto3'] = None\n"
        "sys.argv = ['zetl', *sys.argv[1:]]\n"
        "from zetl.cli import main; main()"
    )
    help_result = subprocess.run(
        [sys.executable, "-c", code, "--help"], capture_output=True, text=True
    )
    assert help_result.returncode == 0, help_result.stderr
    assert "version" in help_result.stdout
    aws = subprocess.run(
        [sys.executable, "-c", code, "aws", "preflight"], capture_output=True, text=True
    )
    assert aws.returncode == 2
    assert "needs the Python package" in aws.stderr and "zetl-aws" in aws.stderr


def test_a_bad_log_level_is_a_usage_error_not_a_traceback() -> None:
    result = run_zetl("--log-level", "verbose", "version")
    assert result.returncode == 2
    assert "log level 'VERBOSE' is not one of" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_port_already_in_use_is_a_config_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(ConfigError, match="cannot serve /metrics on port"):
            serve_metrics(lambda: "", lambda: True, taken.getsockname()[1], host="127.0.0.1")


HEAVY = ("psycopg2", "sqlalchemy", "alembic", "boto3", "botocore", "faker", "pydantic")


def modules_loaded_by(*args: str) -> list[str]:
    """The heavy libraries a zetl command line imports (run in a fresh interpreter)."""
    code = (
        "import sys\n"
        f"sys.argv = ['zetl', *{list(args)!r}]\n"
        "from zetl.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    last = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    return [name for name in last.split(",") if name in HEAVY]


def test_version_starts_without_any_service_or_heavy_library() -> None:
    """Start-up time is import time: `zetl version` loads no command module at all."""
    assert modules_loaded_by("version") == []


def test_a_command_loads_only_its_own_module() -> None:
    """`zetl load --help` loads the loader's command module, which imports its pipeline (and
    so psycopg2, SQLAlchemy) only when the load runs."""
    assert modules_loaded_by("load", "--help") == []
    assert modules_loaded_by("migrate", "--help") == []


def test_a_usage_error_is_one_line_naming_the_help() -> None:
    """Typer draws usage errors as a box of several lines; zetl's are one, like every error."""
    result = run_zetl("version", "--no-such-option")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "zetl: error: No such option: --no-such-option (see zetl version --help)"
    ]
