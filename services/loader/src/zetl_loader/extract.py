"""Extract: stream the export's CSV files record by record, never a whole file in memory.

Every record keeps its starting line number and its raw text, so a row that cannot be loaded
goes to quarantine verbatim. Rows the CSV layer cannot make sense of (bytes that are not UTF-8,
a field beyond the size limit, a wrong number of fields) come out as ``BadRecord``; a file that
is missing, empty or lacks a column is a ``ConfigError`` (exit code 2) before anything loads.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, NamedTuple

from zetl.errors import ConfigError

# The CSV layer accepts fields up to this size so a huge field becomes one quarantined row
# (field_too_long) instead of a failed file; longer ones are quarantined as csv_error.
CSV_FIELD_LIMIT = 64 * 1024 * 1024
PROGRESS_EVERY_LINES = 8192

csv.field_size_limit(CSV_FIELD_LIMIT)


@dataclass(frozen=True)
class FileSpec:
    """One export file: its name, the entity it feeds and the columns it must have."""

    entity: str
    file_name: str
    columns: tuple[str, ...]
    required: bool = True


# Named tuples, not frozen dataclasses: one is built per input row, and a frozen dataclass's
# __init__ (object.__setattr__ per field) costs several times as much.
class Record(NamedTuple):
    line: int
    raw: str
    fields: list[str]


class BadRecord(NamedTuple):
    line: int
    raw: str
    reason_code: str
    reason: str


ProgressCallback = Callable[[int], None]


class _Lines:
    """Decodes a binary file line by line, remembering the lines of the record being read."""

    def __init__(self, stream: BinaryIO, on_bytes: ProgressCallback | None) -> None:
        self._stream = stream
        self._on_bytes = on_bytes
        self.line_number = 0
        self.pending: list[str] = []
        self.undecodable = False

    def __iter__(self) -> Iterator[str]:
        unreported = 0
        for raw in self._stream:
            self.line_number += 1
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                # Kept visible (\xe9) in the quarantined raw content; the record is rejected.
                text = raw.decode("utf-8", "backslashreplace")
                self.undecodable = True
            if "\x00" in text:  # Postgres text cannot hold NUL: keep it visible, reject the row
                text = text.replace("\x00", "\\x00")
                self.undecodable = True
            self.pending.append(text)
            unreported += len(raw)
            if self._on_bytes is not None and self.line_number % PROGRESS_EVERY_LINES == 0:
                self._on_bytes(unreported)
                unreported = 0
            yield text
        if self._on_bytes is not None and unreported:
            self._on_bytes(unreported)

    def take_record(self) -> tuple[int, str, bool]:
        """The first line, raw text and encoding state of the record just read; then reset."""
        first_line = self.line_number - len(self.pending) + 1
        raw = "".join(self.pending).rstrip("\r\n")
        undecodable = self.undecodable
        self.pending.clear()
        self.undecodable = False
        return first_line, raw, undecodable


class ExportFile:
    """An open export file: its header is checked on open, its records stream on iteration."""

    def __init__(self, path: Path, spec: FileSpec, on_bytes: ProgressCallback | None = None):
        self.path = path
        self.spec = spec
        self.size = path.stat().st_size
        self._stream = path.open("rb")
        self._lines = _Lines(self._stream, on_bytes)
        self._reader = csv.reader(iter(self._lines))
        self.column_index = self._read_header()
        self.width = len(self.header)

    def close(self) -> None:
        self._stream.close()

    def __enter__(self) -> ExportFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _read_header(self) -> dict[str, int]:
        try:
            header = next(self._reader)
        except StopIteration:
            raise ConfigError(
                f"{self.path}: the file is empty; expected a header line with the columns "
                f"{', '.join(self.spec.columns)}"
            ) from None
        except csv.Error as exc:
            raise ConfigError(f"{self.path}: the header line cannot be read: {exc}") from exc
        _, _, undecodable = self._lines.take_record()
        if undecodable:
            raise ConfigError(f"{self.path}: the header line is not UTF-8")
        self.header = [name.lstrip("\ufeff").strip().lower() for name in header]
        missing = [column for column in self.spec.columns if column not in self.header]
        if missing:
            raise ConfigError(
                f"{self.path}: missing column(s) {', '.join(missing)}; "
                f"the header has {', '.join(self.header) or 'no columns'}"
            )
        duplicated = sorted({name for name in self.header if self.header.count(name) > 1})
        if duplicated:
            raise ConfigError(f"{self.path}: column(s) {', '.join(duplicated)} appear twice")
        return {column: self.header.index(column) for column in self.spec.columns}

    def __iter__(self) -> Iterator[Record | BadRecord]:
        lines, reader, width = self._lines, self._reader, self.width
        while True:
            try:
                fields = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                line, raw, _ = lines.take_record()
                yield BadRecord(line, raw, "csv_error", f"unreadable CSV: {exc}")
                continue
            line, raw, undecodable = lines.take_record()
            if not fields:
                continue  # a blank line holds no row
            if undecodable:
                yield BadRecord(line, raw, "encoding_error", "bytes that are not UTF-8 text")
            elif len(fields) != width:
                yield BadRecord(
                    line,
                    raw,
                    "wrong_column_count",
                    f"{len(fields)} fields where the header has {width}",
                )
            else:
                yield Record(line, raw, fields)


def find_export_file(directory: Path, spec: FileSpec) -> Path | None:
    """The file for ``spec`` in ``directory``; a missing required file is a ConfigError."""
    path = directory / spec.file_name
    if path.is_file():
        return path
    if spec.required:
        raise ConfigError(f"{directory}: missing export file {spec.file_name}")
    return None
