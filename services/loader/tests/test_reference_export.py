"""The reference production export (../shared/seed-data/zbd) loads into the documented result."""

from __future__ import annotations

from pathlib import Path

import pytest

from zetl_loader.pipeline import run_load

from .conftest import Conn, fetch, scalar

REPO_ROOT = Path(__file__).resolve().parents[3]
REFERENCE = REPO_ROOT.parent / "shared" / "seed-data" / "zbd"

pytestmark = [
    pytest.mark.docker,
    pytest.mark.skipif(not REFERENCE.is_dir(), reason=f"{REFERENCE} is not on this machine"),
]


def test_reference_export_yields_the_documented_entities(db_url: str, db: Conn) -> None:
    report = run_load(db_url, REFERENCE)

    assert {t: report.totals[t] for t in ("publisher", "game", "customer")} == {
        "publisher": 6,
        "game": 9,
        "customer": 9,
    }
    assert report.totals["store_transaction"] == 12
    assert report.totals["store_transaction_line"] == 19
    assert report.balanced and report.quarantined == 0
    counts = {name: (c.read, c.loaded, c.merged) for name, c in report.entities.items()}
    assert counts == {
        "publisher": (8, 6, 2),
        "game": (10, 9, 1),
        "store_transaction": (12, 12, 0),
        "store_transaction_line": (19, 19, 0),
    }
    customers = [c for (c,) in fetch(db, "SELECT customer_code FROM customer ORDER BY 1")]
    assert customers == [f"CUST-{n}" for n in range(1001, 1010)]


def test_reference_export_reports_its_defects_under_stable_codes(db_url: str) -> None:
    report = run_load(db_url, REFERENCE)
    found = {(i["code"], i["source_id"], i["file"], i["line"]) for i in report.issues}
    assert found == {
        ("missing_date", "G005", "game.csv", 6),
        ("invalid_date", "G010", "game.csv", 11),
        ("duplicate_merged", "G008", "game.csv", 9),
        ("duplicate_merged", "P005", "publisher.csv", 6),
        ("duplicate_merged", "P007", "publisher.csv", 8),
        ("total_mismatch", "T0008", "transaction.csv", 9),
    }


def test_reference_export_relations(db_url: str, db: Conn) -> None:
    run_load(db_url, REFERENCE)
    refunds = fetch(
        db,
        "SELECT r.transaction_code, p.transaction_code FROM store_transaction r"
        " JOIN store_transaction p ON p.id = r.refunded_transaction_id ORDER BY 1",
    )
    assert refunds == [("T0003", "T0002"), ("T0009", "T0007")]
    assert fetch(
        db,
        "SELECT transaction_type, customer_id FROM store_transaction"
        " WHERE transaction_code = 'T0006'",
    ) == [("payout", None)]
    # G001 is sold under P004 on PC and under P002 on PS5: the publisher belongs to the line.
    listings = fetch(
        db,
        "SELECT l.platform, p.publisher_code FROM game_listing l JOIN game g ON g.id = l.game_id"
        " JOIN publisher p ON p.id = l.publisher_id WHERE g.game_code = 'G001' ORDER BY 1",
    )
    assert listings == [("PC", "P004"), ("PS5", "P002")]
    # The merged spellings resolve: STARFORGE is G001, "Valve" and VALVE CORP are P004.
    assert (
        scalar(
            db,
            "SELECT count(*) FROM store_transaction_line l JOIN store_transaction t"
            " ON t.id = l.transaction_id JOIN publisher p ON p.id = l.publisher_id"
            " WHERE p.publisher_code = 'P004' AND t.transaction_code IN ('T0005', 'T0006')",
        )
        == 2
    )
    assert scalar(db, "SELECT release_date FROM game WHERE game_code = 'G010'") is None
    assert scalar(db, "SELECT title FROM game WHERE game_code = 'G003'") == "Neon Drift"


def test_loading_the_reference_export_twice_changes_nothing(db_url: str, db: Conn) -> None:
    run_load(db_url, REFERENCE)
    snapshot = fetch(db, "SELECT * FROM store_transaction_line ORDER BY id")
    snapshot += fetch(db, "SELECT * FROM store_transaction ORDER BY id")
    snapshot += fetch(db, "SELECT * FROM publisher ORDER BY id")
    snapshot += fetch(db, "SELECT * FROM game ORDER BY id")

    second = run_load(db_url, REFERENCE, reload=True)

    assert all(c.inserted == c.updated == 0 for c in second.entities.values())
    again = fetch(db, "SELECT * FROM store_transaction_line ORDER BY id")
    again += fetch(db, "SELECT * FROM store_transaction ORDER BY id")
    again += fetch(db, "SELECT * FROM publisher ORDER BY id")
    again += fetch(db, "SELECT * FROM game ORDER BY id")
    assert again == snapshot  # same values, same ids, no updated_at bump
