"""The clauses of Redshift's ``ALTER DATABASE ... INTEGRATION`` statements, as ``zetl refresh``
and ``zetl database set`` take them on their command line."""

from __future__ import annotations

from collections.abc import Mapping

from zetl.errors import ConfigError
from zetl.integration import REFRESH_INTERVAL_MAX, TableState
from zetl_replicator.state.options import OPTIONS
from zetl_replicator.state.store import TableStatus

REFRESH_USAGE = (
    "use: zetl refresh TABLE schema.table[, ...] | ALL TABLES [IN SCHEMA s[, ...]]"
    " | INERROR TABLES [IN SCHEMA s[, ...]] | REMEDIABLE TABLES [IN SCHEMA s[, ...]]"
)


def parse_refresh(words: list[str]) -> tuple[str, list[str]]:
    """The clause of ``ALTER DATABASE ... INTEGRATION REFRESH`` as words: (kind, names), kind
    ``tables`` (names: schema.table), ``all``, ``inerror`` or ``remediable`` (names: schemas,
    none for all)."""
    tokens = [t for t in " ".join(words).replace(",", " , ").split() if t != ","]
    upper = [t.upper() for t in tokens]
    if upper[:2] in (["ALL", "TABLES"], ["INERROR", "TABLES"], ["REMEDIABLE", "TABLES"]):
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
    f" [REFRESH_INTERVAL 0..{REFRESH_INTERVAL_MAX}] [TRUNCATECOLUMNS [=] TRUE|FALSE]"
    " [HISTORY_MODE [=] TRUE|FALSE] [AUTO_REMEDIATION [=] TRUE|FALSE]"
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
        if name == "HISTORY_MODE" and i + 1 < len(tokens) and tokens[i + 1].upper() == "FOR":
            raise ConfigError(
                "HISTORY_MODE ... FOR TABLE/ALL TABLES: zetl's history mode is for the whole"
                " database (docs/replication.md, HISTORY_MODE)"
            )
        try:
            values[name] = OPTIONS[name].parse(tokens[i])
        except ValueError as exc:
            raise ConfigError(str(exc)) from exc
        i += 1
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
    return sorted(
        name
        for name, status in states.items()
        if _chosen(kind, status) and (not names or status.schema in names)
    )


def remediable(status: TableStatus) -> bool:
    """Whether a refresh can bring the table back: it waits for a re-copy (ResyncRequired), or
    the warehouse refused its changes or its copy (a value, say, that TRUNCATECOLUMNS now cuts).
    A table zero-ETL does not replicate (no primary key, an unsupported type) is not: only a
    change on the source fixes it."""
    return status.state == TableState.RESYNC_REQUIRED or (
        status.state == TableState.FAILED and status.apply_failed
    )


def _chosen(kind: str, status: TableStatus) -> bool:
    if kind == "all":  # a DroppedSource table has no source left to copy
        return status.state != TableState.DROPPED_SOURCE
    if kind == "remediable":
        return remediable(status)
    return status.state in (TableState.FAILED, TableState.RESYNC_REQUIRED)  # inerror
