"""The ``zetl`` command line.

Commands live next to the code they run: each service package adds its own through the
``zetl.commands`` entry-point group (a function that takes the Typer app), so this shared
package never imports a service and every installed service shows up in ``zetl --help``.
"""

from __future__ import annotations

import logging
import sys
from importlib.metadata import entry_points

import psycopg2
import typer

from zetl import __version__
from zetl.errors import ConfigError, ExitCode, ZetlError
from zetl.log import configure_logging
from zetl.settings import Settings

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")

app = typer.Typer(
    name="zetl",
    help="Local-first RDS for PostgreSQL → Redshift Serverless zero-ETL platform.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _configure(
    log_level: str = typer.Option(None, help="DEBUG, INFO, WARNING or ERROR [env ZETL_LOG_LEVEL]"),
) -> None:
    level = log_level.upper() if log_level else Settings.from_env().log_level
    if level not in LOG_LEVELS:
        raise ConfigError(f"log level {level!r} is not one of {', '.join(LOG_LEVELS)}")
    configure_logging(level)


@app.command()
def version() -> None:
    """Print zetl's version."""
    typer.echo(__version__)


def _register_service_commands() -> None:
    for entry_point in entry_points(group="zetl.commands"):
        try:
            register = entry_point.load()
        except ModuleNotFoundError as exc:
            # An image without an optional extra (boto3 for `zetl aws`, say) still runs every
            # other command; this one explains what to install instead of breaking them all.
            _register_unavailable(entry_point.name, exc.name or str(exc))
            continue
        register(app)


def _register_unavailable(name: str, missing: str) -> None:
    @app.command(
        name,
        help=f"(unavailable: needs the Python package {missing!r})",
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
        add_help_option=False,
    )
    def unavailable() -> None:
        raise ConfigError(
            f"`zetl {name}` needs the Python package {missing!r}, which is not installed here"
            " (for `zetl aws`: pip install 'zetl[aws]')"
        )


def main() -> None:
    """Entry point: run a command; expected failures print one line and exit with their code.

    Usage errors (unknown command or option, missing argument) are Typer's own: exit code 2.
    """
    _register_service_commands()
    try:
        app()
    except ZetlError as exc:
        print(f"zetl: error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except psycopg2.Error as exc:  # a database refusal nobody expected: one line, not a trace
        logging.getLogger("zetl").debug("database error", exc_info=True)
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        print(f"zetl: error: the database refused: {first_line}", file=sys.stderr)
        sys.exit(ExitCode.DATA)
