"""The clauses of Redshift's ``ALTER DATABASE ... INTEGRATION`` statements, as ``zetl refresh``
and ``zetl database set`` take them on their command line."""

from __future__ import annotations

from collections.abc import Mapping

from zetl.errors import ConfigError
from zetl.integration import TableState
from zetl_replicator.state.options import OPTIONS
from zetl_replicator.state.store import TableStatus

REFRESH_USAGE = (
    "use: zetl refresh TABLE schema.table[, ...] | ALL TABLES [IN SCHEMA s[, ...]]"
    " | INERROR TABLES [IN SCHEMA s[, ...]]"
)


def parse_refresh(words: list[str]) -> tuple[str, list[str]]:
    """The clause of ``ALTER DATABASE ... INTEGRATION REFRESH`` as words: (kind, names), kind
    ``tables`` (names: schema.table), ``all`` or ``inerror`` (names: schemas, none for all)."""
    tokens = [t for t in " ".join(words).replace(",", " , ").split() if t != ","]
    upper = [t.upper() for t in tokens]
    if upper[:2] in (["ALL", "TABLES"], ["INERROR", "TABLES"]):
        kind, rest = upper[0].lower(), tokens[2:]
        if not rest:
            return kind, []
        if [t.upper() for t in rest[:2]] == ["IN", "SCHEMA"] and len(rest) > 2:
            return kind, rest[2:]
        raise ConfigError(REFRESH_USAGE)
    # Redshift's grammar says TABLE; its troubleshooting page writes TABLES: both are taken.
    if upper[:1] in (["TABLE"], ["TABLES"]):
        names = tokens[1:]
        if names and all(t.count(".") == 1 and "" not in t.split(".") for t in names):
            return "tables", names
    raise ConfigError(REFRESH_USAGE)


OPTIONS_USAGE = (
    "use: zetl database set [QUERY_ALL_STATES [=] TRUE|FALSE] [ACCEPTINVCHARS [=] TRUE|FALSE]"
    " [REFRESH_INTERVAL seconds] [TRUNCATECOLUMNS [=] TRUE|FALSE] [HISTORY_MODE [=] TRUE|FALSE]"
)


def parse_options(words: list[str]) -> dict[str, bool | int | None]:
    """``ALTER DATABASE ... INTEGRATION SET`` 's options as words: {OPTION: value}."""
    tokens = " ".join(words).replace("=", " = ").split()
    values: dict[str, bool | int | None] = {}
    i = 0
    while i < len(tokens):
        name = tokens[i].upper()
        if name not in OPTIONS:
            raise ConfigError(f"unknown option {tokens[i]!r}; {OPTIONS_USAGE}")
        i += 1
        if i < len(tokens) and tokens[i] == "=":
            i += 1
        if i >= len(tokens):
            raise ConfigError(f"{name} needs a value; {OPTIONS_USAGE}")
        text = tokens[i]
        i += 1
        if name == "REFRESH_INTERVAL":
            if not text.isdigit():
                raise ConfigError(f"REFRESH_INTERVAL {text!r}: seconds, a whole number >= 0")
            values[name] = int(text)
        elif text.upper() in ("TRUE", "FALSE"):
            values[name] = text.upper() == "TRUE"
        else:
            raise ConfigError(f"{name} {text!r}: TRUE or FALSE")
    if not values:
        raise ConfigError(OPTIONS_USAGE)
    return values


def tables_to_refresh(kind: str, names: list[str], states: Mapping[str, TableStatus]) -> list[str]:
    """The tables a parsed REFRESH clause names (``schema.table``), given the integration's
    table states: the one rule for ``zetl refresh`` and the front's ALTER DATABASE."""
    if kind == "tables":
        unknown = [n for n in names if n not in states]
        if unknown:
            raise ConfigError("not tables of the integration: " + ", ".join(unknown))
        return names
    in_error = (TableState.FAILED, TableState.RESYNC_REQUIRED)
    return sorted(
        name
        for name, status in states.items()
        if (kind == "all" or status.state in in_error) and (not names or status.schema in names)
    )
