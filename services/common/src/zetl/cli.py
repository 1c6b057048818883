"""The ``zetl`` command line.

Commands live next to the code they run: each service package adds its own through the
``zetl.commands`` entry-point group (a function that takes the Typer app), so this shared
package never imports a service and every installed service shows up in ``zetl --help``.

Start-up stays fast because a command's module is loaded only when needed: ``zetl version``
loads no service at all, ``zetl load ...`` only the entry point named ``load`` (an entry point
is named after the command it adds), and only ``zetl --help`` or an unknown name loads them all.
Nothing heavy (psycopg2, SQLAlchemy, ...) is imported here at module level either.
"""

from __future__ import annotations

import errno
import logging
import sys
from collections.abc import Iterable, Sequence
from importlib.metadata import EntryPoint, entry_points

import typer
from typer._click import exceptions as click_errors  # click, as Typer vendors it

from zetl import __version__
from zetl.errors import ConfigError, ExitCode, ZetlError, first_line
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


def _register_service_commands(argv: Sequence[str] | None = None) -> None:
    """Add the service commands the command line in ``argv`` needs (all of them without argv)."""
    wanted = None if argv is None else _command_name(argv)
    if wanted is not None and wanted in _command_names():
        return  # a command of this module (version): no service needed
    available = list(entry_points(group="zetl.commands"))
    named = [ep for ep in available if ep.name == wanted]
    _register(named)
    if wanted is None or wanted not in _command_names():
        # Help, no command, an unknown name, or an entry point named unlike its command: all.
        _register(ep for ep in available if ep not in named)


def _register(selected: Iterable[EntryPoint]) -> None:
    for entry_point in selected:
        try:
            entry_point.load()(app)
        except ModuleNotFoundError as exc:
            # A service installed without one of its dependencies (boto3 for `zetl aws`, say)
            # still lets every other command run; this one explains what to install instead of
            # breaking them all. Raised by the import or by register itself (which may check
            # without importing).
            dist = entry_point.dist.name if entry_point.dist else "the service"
            _register_unavailable(entry_point.name, exc.name or str(exc), dist)


def _command_name(argv: Sequence[str]) -> str | None:
    """The command the arguments name: the first word that is not an option of the app's own
    (``--log-level LEVEL``, ``--help``), or None."""
    args = iter(argv)
    for arg in args:
        if arg == "--log-level":
            next(args, None)
        elif not arg.startswith("-"):
            return arg
    return None


def _command_names() -> set[str]:
    """Names of the commands and command groups registered so far (as Typer derives them)."""
    names = {
        info.name or (info.callback.__name__.lower().replace("_", "-") if info.callback else "")
        for info in app.registered_commands
    }
    names.update(info.name or "" for info in app.registered_groups)
    return names


def _register_unavailable(name: str, missing: str, dist: str) -> None:
    @app.command(
        name,
        help=f"(unavailable: needs the Python package {missing!r})",
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
        add_help_option=False,
    )
    def unavailable() -> None:
        raise ConfigError(
            f"`zetl {name}` needs the Python package {missing!r}, which is not installed here"
            f" (installing {dist} with its dependencies provides it)"
        )


def main() -> None:
    """Entry point: run a command; expected failures print one line and exit with their code."""
    _register_service_commands(sys.argv[1:])
    sys.exit(run())


def run(args: Sequence[str] | None = None) -> int:
    """Run one command line; its exit code. Every failure a user can cause is one line on
    stderr, ``zetl: error: ...``, and a documented code (docs/architecture.md: 0 ok, 1 data or
    check failure, 2 usage or configuration): a bad option or argument (Typer's), a ZetlError,
    a file that cannot be read or written, a database refusal nobody expected. Tracebacks are
    left for bugs (and for ``--log-level DEBUG``, in the log)."""
    try:
        # Not standalone: Typer would draw usage errors as a box of several lines.
        result = app(args=args, prog_name="zetl", standalone_mode=False)
    except click_errors.NoArgsIsHelpError as exc:
        exc.show()  # a group named without a command: its help, as --help shows it
        return ExitCode.USAGE
    except click_errors.UsageError as exc:
        where = f" (see {exc.ctx.command_path} --help)" if exc.ctx is not None else ""
        return _fail(f"{_one_line(exc.format_message())}{where}", ExitCode.USAGE)
    except click_errors.ClickException as exc:
        return _fail(_one_line(exc.format_message()), exc.exit_code)
    except typer.Abort:
        return _fail("aborted", ExitCode.DATA)
    except ZetlError as exc:
        return _fail(str(exc), exc.exit_code)
    except OSError as exc:
        if exc.errno == errno.EPIPE:  # the reader of our output went away (| head)
            return ExitCode.DATA
        logging.getLogger("zetl").debug("file or network error", exc_info=True)
        where = f"{exc.filename}: " if exc.filename else ""
        return _fail(f"{where}{exc.strerror or first_line(exc)}", ExitCode.USAGE)
    except Exception as exc:
        # A database refusal nobody expected: one line, not a trace. psycopg2 is looked up, not
        # imported: if no command loaded it, the error cannot be one of its own.
        psycopg2 = sys.modules.get("psycopg2")
        if psycopg2 is None or not isinstance(exc, psycopg2.Error):
            raise
        logging.getLogger("zetl").debug("database error", exc_info=True)
        return _fail(f"the database refused: {first_line(exc)}", ExitCode.DATA)
    # A command's return value is not an exit code (every command returns None); typer.Exit's
    # code and --help's 0 come back as ints.
    return result if isinstance(result, int) else ExitCode.OK


def _one_line(message: str) -> str:
    """Click's message on one line (a choice list comes one choice a line)."""
    return " ".join(line.strip() for line in message.splitlines() if line.strip())


def _fail(message: str, code: int) -> int:
    print(f"zetl: error: {message}", file=sys.stderr)
    return code
