"""Loading twice changes nothing; a corrected file updates in place; a crash changes nothing."""

from __future__ import annotations

import pytest

from zetl.errors import DataError
from zetl_loader import facts
from zetl_loader.pipeline import run_load

from .conftest import VALID_ROWS, Conn, ExportWriter, fetch, scalar

pytestmark = pytest.mark.docker

SNAPSHOT = "SELECT * FROM store_transaction_line ORDER BY id"


def test_a_second_load_of_the_same_files_changes_nothing(
    db_url: str, db: Conn, export: ExportWriter
) -> None:
    directory = export()
    run_load(db_url, directory)
    before = fetch(db, SNAPSHOT) + fetch(db, "SELECT * FROM store_transaction ORDER BY id")

    second = run_load(db_url, directory, reload=True)

    assert all(c.inserted == c.updated == 0 for c in second.entities.values())
    assert fetch(db, SNAPSHOT) + fetch(db, "SELECT * FROM store_transaction ORDER BY id") == before


def test_a_corrected_file_updates_the_affected_rows_in_place(
    db_url: str, db: Conn, export: ExportWriter
) -> None:
    run_load(db_url, export())
    ids = fetch(db, "SELECT id, transaction_code FROM store_transaction ORDER BY id")
    corrected_lines = [*VALID_ROWS["transaction_detail.csv"]]
    corrected_lines[1] = "T1,2,G2,P2,EU,PS5,25.00,7.50,17.50"
    corrected_headers = [*VALID_ROWS["transaction.csv"]]
    corrected_headers[0] = "T1,sale,2025-01-01T10:00:00Z,USD,35.00,CUST-1"

    report = run_load(
        db_url,
        export({"transaction.csv": corrected_headers, "transaction_detail.csv": corrected_lines}),
    )

    counts = report.entities
    assert (counts["store_transaction"].updated, counts["store_transaction"].inserted) == (1, 0)
    assert (
        counts["store_transaction_line"].updated,
        counts["store_transaction_line"].inserted,
    ) == (
        1,
        0,
    )
    assert fetch(db, "SELECT id, transaction_code FROM store_transaction ORDER BY id") == ids
    assert scalar(
        db, "SELECT total_amount FROM store_transaction WHERE transaction_code = 'T1'"
    ) == (35)
    touched = fetch(
        db,
        "SELECT t.transaction_code, l.line_number FROM store_transaction_line l"
        " JOIN store_transaction t ON t.id = l.transaction_id"
        " WHERE l.updated_at > l.created_at ORDER BY 1, 2",
    )
    assert touched == [("T1", 2)]


def test_a_corrected_transaction_type_replaces_its_lines(
    db_url: str, db: Conn, export: ExportWriter
) -> None:
    run_load(db_url, export())
    headers = [*VALID_ROWS["transaction.csv"]]
    headers[2] = "T3,payout,2025-01-03T00:00:00Z,GBP,-5.00,PLATFORM"  # currency corrected

    report = run_load(db_url, export({"transaction.csv": headers}))

    assert report.quarantined == 0
    assert fetch(
        db,
        "SELECT l.currency FROM store_transaction_line l JOIN store_transaction t"
        " ON t.id = l.transaction_id WHERE t.transaction_code = 'T3'",
    ) == [("GBP",)]


def test_a_crash_mid_load_leaves_the_database_as_before(
    db_url: str, db: Conn, export: ExportWriter, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_load(db_url, export())
    before = fetch(db, SNAPSHOT)
    runs = scalar(db, "SELECT count(*) FROM zetl_load.load_run")

    def crash(self: facts.FactMerge) -> None:
        raise RuntimeError("power cut")

    monkeypatch.setattr(facts.FactMerge, "upsert_lines", crash)
    with pytest.raises(RuntimeError, match="power cut"):
        run_load(db_url, export({"publisher.csv": ["P1,Alpha Games,US", "P9,New One,US"]}))

    assert fetch(db, SNAPSHOT) == before
    assert scalar(db, "SELECT count(*) FROM publisher") == 2
    assert scalar(db, "SELECT count(*) FROM zetl_load.load_run") == runs


def test_a_database_error_rolls_back_with_a_clear_message(
    db_url: str, db: Conn, export: ExportWriter, monkeypatch: pytest.MonkeyPatch
) -> None:
    def violate(self: facts.FactMerge) -> None:
        self.cur.execute("INSERT INTO game (game_code, title) VALUES ('G1', 'again')")

    monkeypatch.setattr(facts.FactMerge, "link_refunds", violate)
    with pytest.raises(DataError, match="the load was rolled back, nothing changed"):
        run_load(db_url, export())
    assert scalar(db, "SELECT count(*) FROM store_transaction") == 0


def test_a_corrected_catalogue_row_updates_in_place(
    db_url: str, db: Conn, export: ExportWriter
) -> None:
    run_load(db_url, export())
    ids = fetch(db, "SELECT id, publisher_code FROM publisher ORDER BY id")

    report = run_load(db_url, export({"publisher.csv": ["P1,Alpha Games,CA", "P2,Beta Soft,GB"]}))

    assert (report.entities["publisher"].updated, report.entities["publisher"].inserted) == (1, 0)
    assert fetch(db, "SELECT id, publisher_code FROM publisher ORDER BY id") == ids
    assert scalar(db, "SELECT country_code FROM publisher WHERE publisher_code = 'P1'") == "CA"
