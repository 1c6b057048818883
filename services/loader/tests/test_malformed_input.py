"""Malformed exports: every bad row is quarantined with file, line, raw content and reason;
every bad file is a clear error before anything loads. Never a traceback, never a lost row."""

from __future__ import annotations

from pathlib import Path

import pytest

from zetl.errors import ConfigError
from zetl_loader.pipeline import run_load
from zetl_loader.report import LoadReport

from .conftest import HEADERS, VALID_ROWS, Conn, ExportWriter, fetch, scalar

pytestmark = pytest.mark.docker

LINES = "transaction_detail.csv"
TRANSACTIONS = "transaction.csv"


def with_row(file: str, row: str) -> dict[str, list[str]]:
    return {file: [*VALID_ROWS[file], row]}


def quarantined(db: Conn) -> list[tuple[object, ...]]:
    return fetch(
        db,
        "SELECT file_name, line_number, reason_code, raw_content FROM zetl_load.quarantine"
        " ORDER BY file_name, line_number",
    )


def assert_rest_loaded(report: LoadReport) -> None:
    assert report.balanced
    assert report.totals["store_transaction"] == 3
    assert report.totals["store_transaction_line"] == 4


@pytest.mark.parametrize(
    ("file", "row", "reason"),
    [
        (LINES, "T1,3,G1,P1,NA,PC,10.00", "wrong_column_count"),  # truncated
        (LINES, "T1,3,G1,P1,NA,PC,10.00,3.00,7.00,surprise", "wrong_column_count"),
        (LINES, "T1,3,G1,P1,NA,PC,ten,3.00,7.00", "invalid_amount"),
        (LINES, "T1,3,G1,P1,NA,PC,10.00,3.00,8.00", "net_mismatch"),
        (LINES, "T1,3,G404,P1,NA,PC,10.00,3.00,7.00", "unknown_reference"),
        (LINES, 'T1,3,G1,"Nobody Inc",NA,PC,10.00,3.00,7.00', "unknown_reference"),
        (LINES, "T404,1,G1,P1,NA,PC,10.00,3.00,7.00", "unknown_reference"),
        (LINES, "T1,3,G1,P1,NA,PC,-10.00,-3.00,-7.00", "amount_sign"),
        (LINES, "T1,x,G1,P1,NA,PC,10.00,3.00,7.00", "invalid_number"),
        (LINES, "T1,1,G1,P1,NA,PC,11.00,3.00,8.00", "duplicate_conflict"),
        (TRANSACTIONS, "T4,sale,someday,USD,1.00,CUST-1", "invalid_timestamp"),
        (TRANSACTIONS, "T4,gift,2025-01-01,USD,1.00,CUST-1", "invalid_type"),
        (TRANSACTIONS, "T4,sale,2025-01-01,US Dollar,1.00,CUST-1", "invalid_currency"),
        (TRANSACTIONS, "T4,sale,2025-01-01,USD,-1.00,CUST-1", "amount_sign"),
        (TRANSACTIONS, "T4,sale,2025-01-01,USD,1.00,", "missing_value"),
        (TRANSACTIONS, "T1,sale,2025-01-01T10:00:00Z,USD,31.00,CUST-1", "duplicate_conflict"),
    ],
)
def test_a_bad_row_is_quarantined_and_the_rest_loads(
    db_url: str, db: Conn, export: ExportWriter, file: str, row: str, reason: str
) -> None:
    report = run_load(db_url, export(with_row(file, row)))

    line = len(VALID_ROWS[file]) + 2  # the header is line 1
    assert quarantined(db) == [(file, line, reason, row)]
    assert report.quarantined == 1
    assert [i["code"] for i in report.issues if i["line"] == line] == [reason]
    assert_rest_loaded(report)


def test_an_identical_repeated_row_is_merged(db_url: str, export: ExportWriter) -> None:
    report = run_load(db_url, export(with_row(LINES, VALID_ROWS[LINES][0])))
    assert report.entities["store_transaction_line"].merged == 1
    assert {i["code"] for i in report.issues} == {"duplicate_merged"}
    assert_rest_loaded(report)


def test_bom_and_crlf_load_cleanly(db_url: str, export: ExportWriter) -> None:
    rows = [HEADERS[LINES], *VALID_ROWS[LINES]]
    data = ("\ufeff" + "\r\n".join(rows) + "\r\n").encode("utf-8")
    report = run_load(db_url, export(raw={LINES: data}))
    assert report.quarantined == 0
    assert_rest_loaded(report)


def test_latin1_bytes_are_quarantined_visibly(db_url: str, db: Conn, export: ExportWriter) -> None:
    rows = [HEADERS["game.csv"], *VALID_ROWS["game.csv"], "G3,Caf\xe9 Quest,2024-01-01,Puzzle"]
    data = "\n".join(rows).encode("latin-1")
    report = run_load(db_url, export(raw={"game.csv": data}))
    assert quarantined(db) == [
        ("game.csv", 4, "encoding_error", "G3,Caf\\xe9 Quest,2024-01-01,Puzzle")
    ]
    assert report.entities["game"].loaded == 2
    assert_rest_loaded(report)


def test_a_10_mb_field_is_quarantined_whole(db_url: str, db: Conn, export: ExportWriter) -> None:
    title = "x" * (10 * 1024 * 1024)
    report = run_load(db_url, export(with_row("game.csv", f'G3,"{title}",2024-01-01,Puzzle')))
    assert [(r[2], len(str(r[3])) > len(title)) for r in quarantined(db)] == [
        ("field_too_long", True)
    ]
    assert_rest_loaded(report)


def test_a_quoted_field_may_span_lines(db_url: str, db: Conn, export: ExportWriter) -> None:
    report = run_load(db_url, export(with_row("publisher.csv", 'P3,"Gamma\nStudios",US')))
    assert scalar(db, "SELECT name FROM publisher WHERE publisher_code = 'P3'") == "Gamma Studios"
    assert report.quarantined == 0
    # Line numbers count physical lines: the truncated row after the two-line record is line 4.
    report = run_load(db_url, export({"publisher.csv": ['P3,"Gamma\nStudios",US', "P4,Delta"]}))
    assert [(r[1], r[2], r[3]) for r in quarantined(db)] == [(4, "wrong_column_count", "P4,Delta")]
    assert report.balanced


def test_a_header_only_file_loads_nothing_from_it(db_url: str, export: ExportWriter) -> None:
    report = run_load(db_url, export({LINES: []}))
    assert report.entities["store_transaction_line"].read == 0
    assert report.totals["store_transaction_line"] == 0
    assert report.totals["store_transaction"] == 3
    # With no lines, every header total disagrees with its (empty) lines, and says so.
    assert {i["code"] for i in report.issues} == {"total_mismatch"}


def test_an_empty_file_is_a_clear_error(db_url: str, db: Conn, export: ExportWriter) -> None:
    with pytest.raises(ConfigError, match=r"game.csv: the file is empty"):
        run_load(db_url, export(raw={"game.csv": b""}))
    assert scalar(db, "SELECT count(*) FROM zetl_load.load_run") == 0


def test_a_missing_column_is_a_clear_error(db_url: str, export: ExportWriter) -> None:
    data = b"transaction_id,txn_type,txn_timestamp,currency,total_amount,customer_ref\n"
    with pytest.raises(ConfigError, match=r"missing column\(s\) txn_ts"):
        run_load(db_url, export(raw={TRANSACTIONS: data}))


def test_a_missing_file_is_a_clear_error(db_url: str, export: ExportWriter) -> None:
    directory = export()
    (directory / "game.csv").unlink()
    with pytest.raises(ConfigError, match=r"missing export file game.csv"):
        run_load(db_url, directory)


def test_a_missing_directory_is_a_clear_error(db_url: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no such directory"):
        run_load(db_url, tmp_path / "nowhere")


def test_extra_and_reordered_columns_in_the_header_are_fine(
    db_url: str, db: Conn, export: ExportWriter
) -> None:
    data = b"Country,NOTE,Name,Publisher_ID\nUS,hello,Alpha Games,P1\nGB,,Beta Soft,P2\n"
    report = run_load(db_url, export(raw={"publisher.csv": data}))
    assert report.quarantined == 0
    assert fetch(db, "SELECT publisher_code, name, country_code FROM publisher ORDER BY 1") == [
        ("P1", "Alpha Games", "US"),
        ("P2", "Beta Soft", "GB"),
    ]
    assert_rest_loaded(report)
