"""The generator's exports load with the real loader and keep the same rules as the live
workload: generator and loader together, so here rather than beside either."""

from __future__ import annotations

from pathlib import Path

import psycopg2
import pytest

from zetl.schema.migrate import upgrade
from zetl.schema.rules import check_rules
from zetl_generator.export_players import write_players_export
from zetl_generator.export_storefront import StorefrontExport
from zetl_loader.pipeline import run_load

pytestmark = pytest.mark.docker
DEFECT_CODES = {"missing_date", "invalid_date", "duplicate_merged", "total_mismatch"}


def test_players_export_of_a_thousand_rows_loads_and_keeps_every_rule(
    tmp_path: Path, source_url: str
) -> None:
    written = write_players_export(tmp_path, 1000, seed=1)
    assert written == {"players.csv": 1000, "affiliates.csv": 1000, "transactions.csv": 1000}
    StorefrontExport(seed=1, messy=False).write(tmp_path, 1000)  # the loader reads both
    upgrade(source_url)
    report = run_load(source_url, tmp_path)
    assert report.balanced and report.quarantined == 0, report.issue_counts
    assert report.entities["customer"].loaded == 1000
    assert report.entities["wallet_transaction"].loaded == 1000
    with psycopg2.connect(source_url) as conn, conn.cursor() as cur:
        broken = {r.rule.name: r.examples for r in check_rules(cur) if r.violations}
        cur.execute("SELECT count(*) FROM affiliate WHERE redeemed_at IS NOT NULL")
        redeemed = cur.fetchone()[0]  # type: ignore[index]
    # The storefront file's customers (CUST-1001...) have no signup or KYC in it: only the
    # players' own rules are judged here, and the clean storefront keeps every line rule.
    assert broken == {}
    assert redeemed > 100


def test_messy_storefront_export_loads_and_reports_every_defect_class(
    tmp_path: Path, source_url: str
) -> None:
    written = StorefrontExport(seed=2, messy=True).write(tmp_path, 3000)
    assert written["transaction_detail.csv"] >= 3000
    assert not (tmp_path / "transaction.csv").read_bytes().endswith(b"\n")
    upgrade(source_url)
    report = run_load(source_url, tmp_path)
    assert report.balanced, report.as_dict()["entities"]
    assert report.quarantined == 0, report.issue_counts
    assert set(report.issue_counts) >= DEFECT_CODES, report.issue_counts
    assert report.entities["store_transaction_line"].loaded == written["transaction_detail.csv"]
    with psycopg2.connect(source_url) as conn, conn.cursor() as cur:
        broken = {r.rule.name for r in check_rules(cur) if r.violations}
        cur.execute(
            "SELECT count(*) FROM store_transaction WHERE refunded_transaction_id IS NOT NULL"
        )
        refunds = cur.fetchone()[0]  # type: ignore[index]
        cur.execute("SELECT count(*) FROM store_transaction WHERE transaction_type = 'payout'")
        payouts = cur.fetchone()[0]  # type: ignore[index]
    # The deliberate total mismatches are kept as real data and reported, so they break no rule.
    assert report.issue_counts["total_mismatch"] > 0
    assert broken == set()
    assert refunds > 0 and payouts > 0
