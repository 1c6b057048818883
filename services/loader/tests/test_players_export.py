"""The players export (affiliates.csv, players.csv, the wallet's transactions.csv)."""

from __future__ import annotations

from pathlib import Path

import pytest

from zetl.errors import ConfigError
from zetl_loader.pipeline import run_load

from .conftest import Conn, fetch, scalar, write_export

pytestmark = pytest.mark.docker

AFFILIATES = [
    "affiliate_code,origin,redeemed_ts",
    "AFF-1,Discord,2025-01-02T10:00:00Z",
    "AFF-2,twitch,",
]
PLAYERS = [
    "player_id,name,email,country,signup_ts,kyc_status,kyc_approved_ts,affiliate_code",
    "CUST-1,Ada Lovelace,ada@example.org,gb,2025-01-02T10:00:00Z,approved,2025-01-03T09:00Z,AFF-1",
    "CUST-2,Alan Turing,alan@example.org,GB,2025/01/04 08:00:00,pending,,",
]
GRACE = "CUST-3,Grace Hopper,grace@example.org,US,2025-01-05"
WALLET = [
    "transaction_id,player_id,txn_type,txn_ts,currency,amount",
    "W1,CUST-1,deposit,2025-01-04T10:00:00Z,GBP,100.00",
    "W2,CUST-1,withdrawal,2025-01-05T10:00:00Z,GBP,-40.00",
]


def players_export(directory: Path, extra: dict[str, list[str]] | None = None) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    files = {"affiliates.csv": AFFILIATES, "players.csv": PLAYERS, "transactions.csv": WALLET}
    for name, rows in {**files, **(extra or {})}.items():
        (directory / name).write_text("\n".join(rows) + "\n", encoding="utf-8")
    return directory


def test_the_players_export_loads_with_its_relations(db_url: str, db: Conn, tmp_path: Path) -> None:
    report = run_load(db_url, players_export(tmp_path / "players"))

    assert report.balanced and report.quarantined == 0
    assert {k: c.loaded for k, c in report.entities.items()} == {
        "affiliate": 2,
        "customer": 2,
        "wallet_transaction": 2,
    }
    assert fetch(
        db,
        "SELECT c.customer_code, c.country_code, c.kyc_status, a.affiliate_code, a.origin"
        " FROM customer c LEFT JOIN affiliate a ON a.id = c.referred_by_affiliate_id"
        " ORDER BY 1",
    ) == [
        ("CUST-1", "GB", "approved", "AFF-1", "discord"),
        ("CUST-2", "GB", "pending", None, None),
    ]
    assert scalar(db, "SELECT sum(amount) FROM wallet_transaction") == 60

    again = run_load(db_url, players_export(tmp_path / "players"), reload=True)
    assert all(c.inserted == c.updated == 0 for c in again.entities.values())


@pytest.mark.parametrize(
    ("file", "row", "reason"),
    [
        ("players.csv", f"{GRACE},approved,,", "missing_value"),
        ("players.csv", f"{GRACE},pending,2025-01-06,", "invalid_kyc"),
        ("players.csv", f"{GRACE},pending,,AFF-9", "unknown_reference"),
        ("players.csv", f"{GRACE},pending,,AFF-1", "affiliate_already_redeemed"),
        ("players.csv", "CUST-2,Alan,a@example.org,GB,2025-01-05,pending,,", "duplicate_conflict"),
        ("transactions.csv", "W3,CUST-404,deposit,2025-01-06,GBP,5.00", "unknown_reference"),
        ("transactions.csv", "W3,CUST-1,withdrawal,2025-01-06,GBP,5.00", "amount_sign"),
        ("affiliates.csv", "AFF-3,,", "missing_value"),
    ],
)  # fmt: skip
def test_a_row_breaking_a_rule_is_quarantined(
    db_url: str, db: Conn, tmp_path: Path, file: str, row: str, reason: str
) -> None:
    base = {"affiliates.csv": AFFILIATES, "players.csv": PLAYERS, "transactions.csv": WALLET}
    report = run_load(db_url, players_export(tmp_path / "p", {file: [*base[file], row]}))
    assert fetch(db, "SELECT file_name, reason_code, raw_content FROM zetl_load.quarantine") == [
        (file, reason, row)
    ]
    assert report.balanced and report.quarantined == 1


def test_players_enrich_the_customers_the_storefront_created(
    db_url: str, db: Conn, tmp_path: Path
) -> None:
    directory = write_export(tmp_path / "both")
    players_export(directory)

    report = run_load(db_url, directory)

    assert report.balanced and report.quarantined == 0
    assert fetch(db, "SELECT customer_code, kyc_status FROM customer ORDER BY 1") == [
        ("CUST-1", "approved"),
        ("CUST-2", "pending"),
    ]


def test_a_directory_without_export_files_is_a_clear_error(db_url: str, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ConfigError, match="no export files"):
        run_load(db_url, tmp_path)
