"""Where rows go on their way into Postgres: COPY streams, quarantine and data issues.

COPY reads from a generator, so a file streams from disk through normalization into a staging
table while Postgres parses the previous chunk. ``BackgroundSpool`` normalizes a file on a worker
thread while the connection runs other statements, and copies the result in afterwards.
Quarantined rows and issues are spooled (memory first, then a temporary file) and copied into
``zetl_load`` with the load run's id.
"""

from __future__ import annotations

import csv
import io
import tempfile
import threading
from collections.abc import Iterable, Iterator, Sequence
from types import TracebackType
from typing import IO, Any, TextIO, TypeAlias, cast

import psycopg2.extensions

from zetl.schema import LOAD_SCHEMA
from zetl_loader.extract import BadRecord
from zetl_loader.report import EntityCounts

Cursor: TypeAlias = psycopg2.extensions.cursor
COPY_CHUNK_CHARS = 1 << 18
SPOOL_MEMORY_BYTES = 8 << 20


class _RowReader:
    """A read()-able text stream over rows, encoded as CSV on demand for COPY FROM STDIN."""

    def __init__(self, rows: Iterable[Sequence[Any]]) -> None:
        self._rows: Iterator[Sequence[Any]] = iter(rows)
        self._buffer = io.StringIO()
        self._writer = csv.writer(self._buffer, lineterminator="\n")

    def read(self, size: int = -1) -> bytes:
        del size  # COPY takes chunks of any length
        writer, rows = self._writer, self._rows
        for row in rows:
            writer.writerow(row)
            if self._buffer.tell() >= COPY_CHUNK_CHARS:
                break
        chunk = self._buffer.getvalue()
        self._buffer.seek(0)
        self._buffer.truncate()
        return chunk.encode("utf-8")

    def readline(self, size: int = -1) -> bytes:
        return self.read(size)


def _copy_statement(table: str, columns: Sequence[str]) -> str:
    return f"COPY {table} ({', '.join(columns)}) FROM STDIN WITH (FORMAT csv)"


def copy_rows(
    cur: Cursor, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> None:
    """COPY ``rows`` (None is NULL) into ``table``: streamed, never all in memory."""
    cur.copy_expert(_copy_statement(table, columns), _RowReader(rows))


class BackgroundSpool:
    """Encodes ``rows`` as COPY CSV into a temporary file on a worker thread.

    The load has one connection, and while it waits on a long statement Python is idle (psycopg2
    releases the GIL): normalizing the next file meanwhile takes that work off the critical path.
    The rows go to disk, not memory, so memory stays flat. Leaving the ``with`` block early (an
    error) stops the worker before the files it reads are closed.
    """

    def __init__(self, rows: Iterable[Sequence[Any]]) -> None:
        self._rows = rows
        self._file: IO[str] = tempfile.TemporaryFile(  # noqa: SIM115 - closed in __exit__
            mode="w+", encoding="utf-8", newline=""
        )
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._write, name="spool", daemon=True)

    def __enter__(self) -> BackgroundSpool:
        self._thread.start()
        return self

    def _write(self) -> None:
        writer = csv.writer(self._file, lineterminator="\n")
        try:
            for row in self._rows:
                if self._stop.is_set():
                    return
                writer.writerow(row)
        except BaseException as exc:  # re-raised on the main thread by copy_into
            self._error = exc

    def copy_into(self, cur: Cursor, table: str, columns: Sequence[str]) -> None:
        """Wait for the worker, then COPY what it wrote into ``table``."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        self._file.seek(0)
        cur.copy_expert(_copy_statement(table, columns), cast(TextIO, self._file))

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()
        self._file.close()


def printable(raw: str) -> str:
    """Text Postgres can store: NUL bytes become a visible escape."""
    return raw.replace("\x00", "\\x00")


class Findings:
    """Collects quarantined rows and data issues of one load run, then copies them in."""

    def __init__(self, load_run_id: int) -> None:
        self.load_run_id = load_run_id
        self._quarantine: IO[str] = tempfile.SpooledTemporaryFile(  # noqa: SIM115 - closed in flush
            SPOOL_MEMORY_BYTES, mode="w+", encoding="utf-8", newline=""
        )
        self._issues: IO[str] = tempfile.SpooledTemporaryFile(  # noqa: SIM115 - closed in flush
            SPOOL_MEMORY_BYTES, mode="w+", encoding="utf-8", newline=""
        )
        self._quarantine_writer = csv.writer(self._quarantine, lineterminator="\n")
        self._issue_writer = csv.writer(self._issues, lineterminator="\n")
        # A BackgroundSpool's worker reports its file's findings while the main thread reports
        # others: a spooled file's rollover to disk must not interleave.
        self._lock = threading.Lock()

    def quarantine_record(
        self, entity: str, file_name: str, record: BadRecord, counts: EntityCounts
    ) -> None:
        """A row the CSV reader could not even split into fields: kept verbatim, counted."""
        self.quarantine(
            entity, file_name, record.line, record.raw, record.reason_code, record.reason, None
        )
        counts.quarantined += 1

    def quarantine(
        self,
        entity: str,
        file_name: str,
        line: int,
        raw: str,
        reason_code: str,
        reason: str,
        source_id: str | None,
    ) -> None:
        run = self.load_run_id
        with self._lock:
            self._quarantine_writer.writerow(
                (run, file_name, line, printable(raw), reason_code, printable(reason))
            )
        self.issue(entity, file_name, line, reason_code, source_id, reason)

    def issue(
        self,
        entity: str,
        file_name: str,
        line: int | None,
        code: str,
        source_id: str | None,
        detail: str,
    ) -> None:
        row = (
            self.load_run_id,
            code,
            entity,
            printable(source_id) if source_id else None,
            file_name,
            line,
            printable(detail),
        )
        with self._lock:
            self._issue_writer.writerow(row)

    def flush(self, cur: Cursor) -> None:
        """Copy everything collected so far into zetl_load and start afresh."""
        for spool, table, columns in (
            (
                self._quarantine,
                "quarantine",
                "load_run_id, file_name, line_number, raw_content, reason_code, reason",
            ),
            (
                self._issues,
                "data_issue",
                "load_run_id, code, entity, source_id, file_name, line_number, detail",
            ),
        ):
            spool.seek(0)
            cur.copy_expert(
                f"COPY {LOAD_SCHEMA}.{table} ({columns}) FROM STDIN WITH (FORMAT csv)",
                cast(TextIO, spool),
            )
            spool.seek(0)
            spool.truncate()

    def close(self) -> None:
        self._quarantine.close()
        self._issues.close()
