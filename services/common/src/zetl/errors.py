"""The error kinds every zetl command reports and their exit codes (docs/architecture.md)."""

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    DATA = 1  # the data or a check failed: bad rows, a failed verification
    USAGE = 2  # the command line, the configuration or the environment is wrong


class ZetlError(Exception):
    """An expected failure: reported as one clear line, never as a traceback."""

    exit_code: ExitCode = ExitCode.DATA


class DataError(ZetlError):
    """The input data or a check is at fault."""

    exit_code = ExitCode.DATA


class ConfigError(ZetlError):
    """A setting, an argument, a file or a server the command needs is missing or wrong."""

    exit_code = ExitCode.USAGE


class MissingDatabaseError(ConfigError):
    """The database a connection names does not exist (yet)."""


def first_line(exc: BaseException) -> str:
    """The first line of an error's text (its type's name when it has none): how an expected
    failure is reported, in one line."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
