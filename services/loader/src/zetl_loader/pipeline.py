"""One ``zetl load``: extract → normalize → load, in a single database transaction.

Every file is checked (present, readable, every column there) before the database is touched;
then the whole load runs in one transaction, so a crash or an unexpected constraint failure
leaves the database exactly as it was.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import psycopg2
import psycopg2.extensions

from zetl.db import connect
from zetl.errors import ConfigError, DataError, first_line
from zetl.schema import LOAD_SCHEMA
from zetl_loader.dimensions import GAME, PUBLISHER, load_dimension
from zetl_loader.extract import ExportFile, FileSpec, ProgressCallback, find_export_file
from zetl_loader.facts import (
    CREATE_STAGES,
    LINE_STAGE,
    LINE_STAGE_COLUMNS,
    TRANSACTION_STAGE,
    TRANSACTION_STAGE_COLUMNS,
    FactMerge,
    line_rows,
    stage,
    transaction_rows,
)
from zetl_loader.players import AFFILIATE_FILE, PLAYER_FILE, PLAYER_FILES, WALLET_FILE, PlayerMerge
from zetl_loader.report import REPORT_ISSUE_LIMIT, EntityCounts, LoadReport
from zetl_loader.sink import BackgroundSpool, Cursor, Findings

logger = logging.getLogger(__name__)

PUBLISHER_FILE = FileSpec("publisher", "publisher.csv", ("publisher_id", "name", "country"))
GAME_FILE = FileSpec("game", "game.csv", ("game_id", "title", "release_date", "genre"))
TRANSACTION_FILE = FileSpec(
    "store_transaction",
    "transaction.csv",
    ("transaction_id", "txn_type", "txn_ts", "currency", "total_amount", "customer_ref"),
)
LINE_FILE = FileSpec(
    "store_transaction_line",
    "transaction_detail.csv",
    (
        "transaction_id", "line_no", "game_ref", "publisher_ref", "region", "platform",
        "gross_amount", "platform_fee", "net_amount",
    ),
)  # fmt: skip
EXPORT_FILES = (PUBLISHER_FILE, GAME_FILE, TRANSACTION_FILE, LINE_FILE)
TABLES = (
    "publisher", "game", "game_listing", "customer", "affiliate", "store_transaction",
    "store_transaction_line", "wallet_transaction",
)  # fmt: skip
# Two loads never interleave: the second waits for the first to commit.
LOAD_LOCK_ID = 7_240_312
# For this transaction only. The load runs a few large one-off statements: JIT compiling them
# costs more than it saves; hashes and sorts of the staged rows stay in memory; the staging
# tables (temporary, so in local buffers) are scanned by every step, and with the default 8 MB
# of temp_buffers each scan re-reads them from the OS (settable before the first temp table).
LOAD_SETTINGS = "SET LOCAL jit = off; SET LOCAL work_mem = '64MB'; SET LOCAL temp_buffers = '256MB'"

ProgressFactory = Callable[[str, int], ProgressCallback | None]


def open_export(
    directory: Path, stack: ExitStack, progress: ProgressFactory | None
) -> dict[str, ExportFile]:
    """Open every export file present and check its header, so usage errors surface before
    anything loads. The storefront's four files come together or not at all; each file of the
    players export is optional."""
    if not directory.is_dir():
        raise ConfigError(f"{directory}: no such directory")
    storefront = any((directory / spec.file_name).is_file() for spec in EXPORT_FILES)
    players = [spec for spec in PLAYER_FILES if (directory / spec.file_name).is_file()]
    if not storefront and not players:
        expected = ", ".join(spec.file_name for spec in (*EXPORT_FILES, *PLAYER_FILES))
        raise ConfigError(f"{directory}: no export files (expected some of {expected})")
    exports: dict[str, ExportFile] = {}
    for spec in (*EXPORT_FILES, *PLAYER_FILES) if storefront else players:
        path = find_export_file(directory, spec)
        if path is None:
            continue
        on_bytes = progress(spec.file_name, path.stat().st_size) if progress else None
        exports[spec.entity] = stack.enter_context(ExportFile(path, spec, on_bytes))
    return exports


def run_load(
    url: str,
    directory: Path,
    progress: ProgressFactory | None = None,
    *,
    reload: bool = False,
) -> LoadReport:
    """Load the export in ``directory`` into the source database at ``url``.

    An export already loaded (same file names, same bytes) is skipped: applying it again would
    set rows that changed since (a player erased, a KYC decision taken) back to the export's
    values. ``reload`` applies it anyway, deliberately.
    """
    with ExitStack() as stack:
        exports = open_export(directory, stack, progress)
        checksum = export_checksum(exports)
        with _transaction(url) as cur:
            if not reload:
                earlier = _loaded_before(cur, checksum)
                if earlier is not None:
                    return LoadReport(
                        load_run_id=earlier, source_dir=str(directory), skipped_as_loaded=True
                    )
            return _load(cur, directory, exports, checksum)


def export_checksum(exports: dict[str, ExportFile]) -> str:
    """sha256 over each file's name and content, in name order: one export, one checksum."""
    digest = hashlib.sha256()
    for export in sorted(exports.values(), key=lambda e: e.path.name):
        file_digest = hashlib.sha256()
        with export.path.open("rb") as stream:
            while chunk := stream.read(1 << 20):
                file_digest.update(chunk)
        digest.update(f"{export.path.name}\0{file_digest.hexdigest()}\n".encode())
    return digest.hexdigest()


def _loaded_before(cur: Cursor, checksum: str) -> int | None:
    """The committed run that already applied this export, if any (the advisory lock is held,
    so a load of the same export running concurrently has committed or rolled back by now)."""
    cur.execute(
        f"SELECT min(id) FROM {LOAD_SCHEMA}.load_run"
        " WHERE export_checksum = %s AND finished_at IS NOT NULL",
        (checksum,),
    )
    row = cur.fetchone()
    return None if row is None else row[0]


@contextmanager
def _transaction(url: str) -> Iterator[Cursor]:
    conn = connect(url)
    try:
        with conn.cursor() as cur:
            _require_schema(cur)
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (LOAD_LOCK_ID,))
            cur.execute(LOAD_SETTINGS)
            yield cur
        conn.commit()
    except psycopg2.Error as exc:
        conn.rollback()
        raise DataError(f"the load was rolled back, nothing changed: {first_line(exc)}") from exc
    except BaseException:
        conn.rollback()
        raise
    finally:
        conn.close()


def _require_schema(cur: Cursor) -> None:
    cur.execute(f"SELECT to_regclass('{LOAD_SCHEMA}.load_run')")
    row = cur.fetchone()
    if row is None or row[0] is None:
        raise ConfigError("the source database has no zetl schema yet: run `zetl migrate` first")


def _load(
    cur: Cursor, directory: Path, exports: dict[str, ExportFile], checksum: str
) -> LoadReport:
    cur.execute(
        f"INSERT INTO {LOAD_SCHEMA}.load_run (source_dir, started_at, export_checksum)"
        " VALUES (%s, now(), %s) RETURNING id",
        (str(directory), checksum),
    )
    row = cur.fetchone()
    assert row is not None
    report = LoadReport(load_run_id=row[0], source_dir=str(directory))
    findings = Findings(report.load_run_id)
    try:
        _load_files(cur, exports, findings, report)
        findings.flush(cur)
    finally:
        findings.close()
    _finish(cur, report)
    return report


def _load_files(
    cur: Cursor, exports: dict[str, ExportFile], findings: Findings, report: LoadReport
) -> None:
    clock = _Clock(report.seconds)
    players = PlayerMerge(cur, findings)
    report.entities.update(players.load(exports, (AFFILIATE_FILE, PLAYER_FILE)))
    clock.lap("players")
    if "store_transaction" in exports:
        _load_storefront(cur, exports, findings, report, clock)
    report.entities.update(players.load(exports, (WALLET_FILE,)))
    clock.lap("wallet")


def _load_storefront(
    cur: Cursor,
    exports: dict[str, ExportFile],
    findings: Findings,
    report: LoadReport,
    clock: _Clock,
) -> None:
    publishers_counts, publishers = load_dimension(cur, PUBLISHER, exports["publisher"], findings)
    games_counts, games = load_dimension(cur, GAME, exports["game"], findings)
    report.entities["publisher"] = publishers_counts
    report.entities["game"] = games_counts
    clock.lap("catalogue")

    transactions = EntityCounts(TRANSACTION_FILE.file_name)
    lines = EntityCounts(LINE_FILE.file_name)
    report.entities["store_transaction"] = transactions
    report.entities["store_transaction_line"] = lines
    cur.execute(CREATE_STAGES)
    stage(
        cur,
        TRANSACTION_STAGE,
        TRANSACTION_STAGE_COLUMNS,
        transaction_rows(exports["store_transaction"], findings, transactions),
    )
    clock.lap("stage_transactions")
    merge = FactMerge(cur, findings, transactions, lines)
    line_export = exports["store_transaction_line"]
    # The lines are normalized on a worker thread while Postgres merges the transactions.
    with BackgroundSpool(line_rows(line_export, games, publishers, findings, lines)) as spool:
        merge.run_transaction_steps()
        clock.lap()
        spool.copy_into(cur, LINE_STAGE, LINE_STAGE_COLUMNS)
        cur.execute(f"ANALYZE {LINE_STAGE}")
    clock.lap("stage_lines")  # the wait for the worker, if any, and the COPY
    logger.info("staged", extra={"transactions": transactions.read, "lines": lines.read})
    merge.run_line_steps()
    report.seconds.update(merge.timings)
    clock.lap()
    transactions.loaded = merge.loaded_transactions
    lines.loaded = merge.loaded_lines


class _Clock:
    """Records the wall time of consecutive phases into ``seconds``."""

    def __init__(self, seconds: dict[str, float]) -> None:
        self._seconds = seconds
        self._last = time.perf_counter()

    def lap(self, phase: str | None = None) -> None:
        now = time.perf_counter()
        if phase is not None:
            self._seconds[phase] = round(now - self._last, 3)
        self._last = now


def _finish(cur: Cursor, report: LoadReport) -> None:
    for table in TABLES:
        cur.execute(f"SELECT count(*) FROM {table}")
        row = cur.fetchone()
        report.totals[table] = row[0] if row else 0
    cur.execute(
        f"SELECT code, count(*) FROM {LOAD_SCHEMA}.data_issue WHERE load_run_id = %s"
        " GROUP BY code ORDER BY code",
        (report.load_run_id,),
    )
    report.issue_counts = dict(cur.fetchall())
    cur.execute(
        "SELECT code, entity, source_id, file_name, line_number, detail"
        f" FROM {LOAD_SCHEMA}.data_issue WHERE load_run_id = %s"
        " ORDER BY file_name, line_number NULLS FIRST, code, id LIMIT %s",
        (report.load_run_id, REPORT_ISSUE_LIMIT),
    )
    report.issues = [
        {"code": c, "entity": e, "source_id": s, "file": f, "line": n, "detail": d}
        for c, e, s, f, n, d in cur.fetchall()
    ]
    entities = report.entities.values()
    cur.execute(
        f"UPDATE {LOAD_SCHEMA}.load_run SET finished_at = clock_timestamp(), rows_read = %s,"
        " rows_loaded = %s, rows_merged = %s, rows_quarantined = %s, issue_count = %s"
        " WHERE id = %s",
        (
            sum(c.read for c in entities),
            sum(c.loaded for c in entities),
            sum(c.merged for c in entities),
            sum(c.quarantined for c in entities),
            report.issue_total,
            report.load_run_id,
        ),
    )
    if not report.balanced:
        # A bug, never a data problem: refuse to commit a load that lost track of a row.
        raise DataError(f"row counts do not balance: {report.as_dict()['entities']}")
