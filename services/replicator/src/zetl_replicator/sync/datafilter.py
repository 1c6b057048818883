"""Zero-ETL's data filter: which source tables an integration replicates.

The syntax is AWS's (RDS User Guide, "Data filtering for zero-ETL integrations"): comma-
separated rules ``include: pattern`` or ``exclude: pattern``; a pattern names
``database.schema.table`` (PostgreSQL sources), each part a literal name, ``*`` wildcards, or
a regular expression between slashes (``/^tmp_/``). Rules are evaluated in order and the last
one that matches a table decides; a table no rule matches is not replicated; at least one rule
must include. AWS's limits hold here too: at most 99 patterns, each at most 256 characters,
and, for PostgreSQL sources, no regular expression in the database part (a name or ``*``); a
filter AWS would reject is rejected with its reason. The same string configures the Terraform
integration (``data_filter``) and ``zetl replicate`` (``ZETL_DATA_FILTER``, or
``ZETL_DATA_FILTER_FILE`` naming a file with it).
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass

from zetl.errors import ConfigError

_USAGE = (
    'use "include: db.schema.table, exclude: db.schema.table" (* wildcards, /regex/ parts),'
    " with at least one include"
)


@dataclass(frozen=True)
class Rule:
    include: bool
    parts: tuple[re.Pattern[str], re.Pattern[str], re.Pattern[str]]  # database, schema, table
    text: str

    def matches(self, database: str, schema: str, table: str) -> bool:
        return all(
            p.search(name) is not None
            for p, name in zip(self.parts, (database, schema, table), strict=True)
        )


@dataclass(frozen=True)
class DataFilter:
    rules: tuple[Rule, ...]
    text: str

    def replicates(self, database: str, schema: str, table: str) -> bool:
        decided = False
        for rule in self.rules:
            if rule.matches(database, schema, table):
                decided = rule.include
        return decided


def _split(text: str, separator: str) -> list[str]:
    """``text`` split at ``separator``, except inside /regular expressions/."""
    parts, current, in_regex, escaped = [], [], False, False
    for char in text:
        if escaped:
            current.append(char)
            escaped = False
            continue
        if char == "\\" and in_regex:
            current.append(char)
            escaped = True
            continue
        if char == "/":
            in_regex = not in_regex
        if char == separator and not in_regex:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    if in_regex:
        raise ConfigError(f"data filter {text!r}: a regular expression is not closed with /")
    parts.append("".join(current))
    return parts


def _part(text: str, whole: str) -> re.Pattern[str]:
    text = text.strip()
    if not text:
        raise ConfigError(f"data filter pattern {whole!r} has an empty part; {_USAGE}")
    if len(text) >= 2 and text.startswith("/") and text.endswith("/"):
        try:
            return re.compile(text[1:-1])
        except re.error as exc:
            raise ConfigError(f"data filter pattern {whole!r}: {exc}") from exc
    return re.compile("^" + fnmatch.translate(text))  # a whole name; a /regex/ anchors itself


MAX_PATTERNS = 99  # per integration (RDS User Guide, "Format of a data filter")
MAX_PATTERN_CHARACTERS = 256


def parse(text: str) -> DataFilter:
    """A data filter from its string; ConfigError (one line) when it is not one, or when AWS
    would refuse it."""
    rules = []
    for expression in _split(text, ","):
        expression = expression.strip()
        if not expression:
            continue
        kind, colon, pattern = expression.partition(":")
        kind = kind.strip().lower()
        if not colon or kind not in ("include", "exclude"):
            raise ConfigError(f"data filter rule {expression!r}: {_USAGE}")
        if len(pattern.strip()) > MAX_PATTERN_CHARACTERS:
            raise ConfigError(
                f"data filter pattern {pattern.strip()[:40]!r}... has {len(pattern.strip())}"
                f" characters: AWS takes at most {MAX_PATTERN_CHARACTERS}"
            )
        parts = _split(pattern.strip(), ".")
        if len(parts) != 3:
            raise ConfigError(
                f"data filter pattern {pattern.strip()!r}: name database.schema.table; {_USAGE}"
            )
        database = parts[0].strip()
        if len(database) >= 2 and database.startswith("/") and database.endswith("/"):
            raise ConfigError(
                f"data filter pattern {pattern.strip()!r}: a regular expression in the database"
                " part; AWS's PostgreSQL filters take a name or * there"
            )
        compiled = (_part(parts[0], pattern), _part(parts[1], pattern), _part(parts[2], pattern))
        rules.append(Rule(kind == "include", compiled, expression))
    if len(rules) > MAX_PATTERNS:
        raise ConfigError(
            f"data filter has {len(rules)} patterns: AWS takes at most {MAX_PATTERNS}"
            " per integration"
        )
    if not any(r.include for r in rules):
        raise ConfigError(f"data filter {text!r} includes nothing; {_USAGE}")
    return DataFilter(tuple(rules), text)


def from_include_patterns(patterns: tuple[str, ...]) -> DataFilter:
    """The older ``ZETL_INCLUDE`` form (``schema.table`` patterns) as a data filter."""
    return parse(", ".join(f"include: *.{p}" for p in patterns))
