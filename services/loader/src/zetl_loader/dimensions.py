"""Publishers and games: canonical entities from duplicate spellings, with their lineage.

Dimension files are small (one row per catalogue entry), so they are resolved in memory, which
is bounded by the size of the catalogue, not by the number of sales. Rows are taken in source
code order; a row whose name key (case, punctuation and corporate suffixes aside) matches an
earlier entity, in this file or in the database, is merged into it and the mapping from its
source code is recorded in ``*_source_key``. References in the sale lines then resolve through
``Resolver``: by any source code, or by any spelling of the name.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from psycopg2.extras import execute_values

from zetl.schema.vocabulary import NAME_LENGTH
from zetl_loader.extract import BadRecord, ExportFile, Record
from zetl_loader.normalize import (
    Reject,
    clean_text,
    code,
    company_key,
    country,
    optional_date,
    optional_text,
    required_text,
    title_key,
)
from zetl_loader.report import EntityCounts
from zetl_loader.sink import Cursor, Findings


@dataclass(frozen=True)
class Dimension:
    """How one catalogue entity is read, keyed, stored and traced back to its source codes."""

    entity: str
    table: str
    code_column: str
    attribute_columns: tuple[str, ...]
    source_key_table: str
    source_name_column: str
    key: Callable[[str], str]


PUBLISHER = Dimension(
    "publisher",
    "publisher",
    "publisher_code",
    ("name", "country_code"),
    "publisher_source_key",
    "source_name",
    company_key,
)
GAME = Dimension(
    "game",
    "game",
    "game_code",
    ("title", "release_date", "genre"),
    "game_source_key",
    "source_title",
    title_key,
)


@dataclass
class Resolver:
    """Finds the canonical entity id a reference means, by source code or by name."""

    by_code: dict[str, int] = field(default_factory=dict)
    by_key: dict[str, int] = field(default_factory=dict)
    key: Callable[[str], str] = title_key

    def resolve(self, reference: str) -> int | None:
        text = clean_text(reference)
        found = self.by_code.get(text.upper())
        if found is None:
            found = self.by_key.get(self.key(text))
        return found


@dataclass(frozen=True)
class _Row:
    line: int
    raw: str
    code: str
    name: str
    attributes: tuple[Any, ...]


def _publisher_row(record: Record, columns: dict[str, int], findings: Findings, file: str) -> _Row:
    fields = record.fields
    source_code = code(fields[columns["publisher_id"]], "publisher_id")
    name = required_text(fields[columns["name"]], "name", NAME_LENGTH)
    country_code, issue = country(fields[columns["country"]])
    if issue:
        findings.issue("publisher", file, record.line, issue.code, source_code, issue.detail)
    return _Row(record.line, record.raw, source_code, name, (name, country_code))


def _game_row(record: Record, columns: dict[str, int], findings: Findings, file: str) -> _Row:
    fields = record.fields
    source_code = code(fields[columns["game_id"]], "game_id")
    title = required_text(fields[columns["title"]], "title", NAME_LENGTH)
    release_date, issue = optional_date(fields[columns["release_date"]], "release_date")
    if issue:
        findings.issue("game", file, record.line, issue.code, source_code, issue.detail)
    genre = optional_text(fields[columns["genre"]], "genre", 64)
    return _Row(record.line, record.raw, source_code, title, (title, release_date, genre))


ROW_READERS = {"publisher": _publisher_row, "game": _game_row}


def load_dimension(
    cur: Cursor, dimension: Dimension, export: ExportFile, findings: Findings
) -> tuple[EntityCounts, Resolver]:
    """Load one catalogue file; returns its counts and the resolver for references to it."""
    counts = EntityCounts(export.spec.file_name)
    file = export.spec.file_name
    read_row = ROW_READERS[dimension.entity]
    rows: list[_Row] = []
    for record in export:
        counts.read += 1
        if isinstance(record, BadRecord):
            findings.quarantine_record(dimension.entity, file, record, counts)
            continue
        try:
            rows.append(read_row(record, export.column_index, findings, file))
        except Reject as reject:
            findings.quarantine(
                dimension.entity, file, record.line, record.raw, reject.code, reject.reason, None
            )
            counts.quarantined += 1

    canonical_of, key_owner = _known_source_keys(cur, dimension)
    canonical_rows: dict[str, _Row] = {}
    seen: dict[str, _Row] = {}
    source_keys: list[tuple[str, str, str]] = []
    for row in sorted(rows, key=lambda r: (len(r.code), r.code, r.line)):
        first = seen.get(row.code)
        if first is not None:
            if first.attributes == row.attributes:
                _merged(findings, dimension, file, row, f"repeats line {first.line}")
                counts.merged += 1
            else:
                findings.quarantine(
                    dimension.entity,
                    file,
                    row.line,
                    row.raw,
                    "duplicate_conflict",
                    f"{dimension.code_column} {row.code} appears on line {first.line} with "
                    "other values",
                    row.code,
                )
                counts.quarantined += 1
            continue
        seen[row.code] = row
        name_key = dimension.key(row.name)
        target = canonical_of.get(row.code) or key_owner.get(name_key) or row.code
        key_owner.setdefault(name_key, target)
        canonical_of[row.code] = target
        source_keys.append((row.code, row.name, target))
        if target == row.code:
            canonical_rows[row.code] = row
            counts.loaded += 1
        else:
            _merged(findings, dimension, file, row, f"same {dimension.entity} as {target}")
            counts.merged += 1

    ids = _upsert_canonical(cur, dimension, canonical_rows, counts)
    _upsert_source_keys(cur, dimension, source_keys)
    return counts, _resolver(cur, dimension, ids)


def _merged(findings: Findings, dimension: Dimension, file: str, row: _Row, why: str) -> None:
    findings.issue(
        dimension.entity,
        file,
        row.line,
        "duplicate_merged",
        row.code,
        f"{row.code} {row.name!r} merged: {why}",
    )


def _known_source_keys(cur: Cursor, dimension: Dimension) -> tuple[dict[str, str], dict[str, str]]:
    """Source code → canonical code, and name key → canonical code, from earlier loads."""
    cur.execute(
        f"SELECT k.source_key, k.{dimension.source_name_column}, d.{dimension.code_column}"
        f" FROM {dimension.source_key_table} k JOIN {dimension.table} d"
        f" ON d.id = k.{dimension.entity}_id"
    )
    canonical_of: dict[str, str] = {}
    key_owner: dict[str, str] = {}
    for source_key, source_name, canonical in cur.fetchall():
        canonical_of[source_key] = canonical
        key_owner.setdefault(dimension.key(source_name), canonical)
    return canonical_of, key_owner


def _upsert_canonical(
    cur: Cursor, dimension: Dimension, rows: dict[str, _Row], counts: EntityCounts
) -> dict[str, int]:
    columns = (dimension.code_column, *dimension.attribute_columns)
    values: list[Sequence[Any]] = [(code, *row.attributes) for code, row in rows.items()]
    if values:
        updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in dimension.attribute_columns)
        current = ", ".join(f"t.{c}" for c in dimension.attribute_columns)
        incoming = ", ".join(f"EXCLUDED.{c}" for c in dimension.attribute_columns)
        outcomes = execute_values(
            cur,
            f"INSERT INTO {dimension.table} AS t ({', '.join(columns)}) VALUES %s"
            f" ON CONFLICT ({dimension.code_column}) DO UPDATE SET {updates}"
            f" WHERE ({current}) IS DISTINCT FROM ({incoming})"
            " RETURNING xmax = 0",
            values,
            fetch=True,
        )
        counts.inserted += sum(1 for (inserted,) in outcomes if inserted)
        counts.updated += sum(1 for (inserted,) in outcomes if not inserted)
    cur.execute(f"SELECT {dimension.code_column}, id FROM {dimension.table}")
    return dict(cur.fetchall())


def _upsert_source_keys(
    cur: Cursor, dimension: Dimension, source_keys: list[tuple[str, str, str]]
) -> None:
    if not source_keys:
        return
    fk, name = f"{dimension.entity}_id", dimension.source_name_column
    execute_values(
        cur,
        f"INSERT INTO {dimension.source_key_table} AS t (source_key, {name}, {fk})"
        f" SELECT v.source_key, v.source_name, d.id FROM (VALUES %s)"
        " AS v (source_key, source_name, canonical)"
        f" JOIN {dimension.table} d ON d.{dimension.code_column} = v.canonical"
        f" ON CONFLICT (source_key) DO UPDATE SET {name} = EXCLUDED.{name}, {fk} = EXCLUDED.{fk}"
        f" WHERE (t.{name}, t.{fk}) IS DISTINCT FROM (EXCLUDED.{name}, EXCLUDED.{fk})",
        source_keys,
    )


def _resolver(cur: Cursor, dimension: Dimension, ids: dict[str, int]) -> Resolver:
    """Every source code and every spelling of every name, mapped to its canonical id."""
    resolver = Resolver(key=dimension.key)
    cur.execute(
        f"SELECT source_key, {dimension.source_name_column}, {dimension.entity}_id"
        f" FROM {dimension.source_key_table} ORDER BY id"
    )
    for source_key, source_name, entity_id in cur.fetchall():
        resolver.by_code[source_key] = entity_id
        resolver.by_key.setdefault(dimension.key(source_name), entity_id)
    for canonical_code, entity_id in ids.items():
        resolver.by_code.setdefault(canonical_code, entity_id)
    return resolver
