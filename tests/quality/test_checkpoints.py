"""The checkpoints against a replicated, generated workload: they pass on good data, and one
row broken on purpose in a stage fails that stage's checkpoint with exit 1, naming the broken
expectation. Every run lands in zetl_dq.checkpoint_result."""

from __future__ import annotations

import pytest

from tests.quality.conftest import Platform, checkpoint_results

pytestmark = [pytest.mark.docker, pytest.mark.slow]

FIRST_SALE = "(SELECT min(id) FROM store_transaction WHERE transaction_type = 'sale')"
FIRST_DEPOSIT = "(SELECT min(id) FROM wallet_transaction WHERE transaction_type = 'deposit')"


def test_every_checkpoint_passes_on_good_data(platform: Platform) -> None:
    names = ("source_integrity", "replica_parity", "marts")
    for name in names:
        result = platform.dq("run", name)
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"checkpoint {name} (local): passed" in result.stdout
    rows = checkpoint_results(platform)
    assert [(r[0], r[1], r[4]) for r in rows[-3:]] == [(n, True, 0) for n in names]
    assert all(r[2] == r[3] > 0 for r in rows[-3:]), "every expectation evaluated and passed"
    docs = platform.expectations / "gx" / "uncommitted" / "data_docs" / "local_site"
    assert (docs / "index.html").is_file(), "Data Docs were built"


def test_a_header_that_disagrees_with_its_lines_fails_source_integrity(platform: Platform) -> None:
    source_db = platform.config.source_url.rsplit("/", 1)[1]
    (code,) = platform.execute(
        platform.source,
        source_db,
        f"UPDATE store_transaction SET total_amount = total_amount + 1 WHERE id = {FIRST_SALE}"
        " RETURNING transaction_code",
    )[0]
    try:
        result = platform.dq("run", "source_integrity")
    finally:
        platform.execute(
            platform.source,
            source_db,
            f"UPDATE store_transaction SET total_amount = total_amount - 1 WHERE id = {FIRST_SALE}",
        )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "FAILED rule header_total_matches_lines: 1 unexpected rows" in result.stdout
    assert f"e.g. ('{code}',)" in result.stdout, "the report shows the failing row"
    assert result.stdout.count("FAILED ") == 1, "only the broken expectation fails"
    last = checkpoint_results(platform)[-1]
    assert last[:5] == ("source_integrity", False, last[2], last[2] - 1, 1)
    assert [e["name"] for e in last[5]] == ["rule header_total_matches_lines"]
    assert last[5][0]["sample"] == [[code]]


def test_a_replica_row_changed_behind_the_replicator_fails_replica_parity(
    platform: Platform,
) -> None:
    replica = platform.config.replica_database
    # The test's user is the warehouse superuser: it alone can write the read-only replica.
    platform.execute(
        platform.warehouse,
        replica,
        f"UPDATE public.wallet_transaction SET amount = amount + 1 WHERE id = {FIRST_DEPOSIT}",
    )
    try:
        result = platform.dq("run", "replica_parity")
    finally:
        platform.execute(
            platform.warehouse,
            replica,
            f"UPDATE public.wallet_transaction SET amount = amount - 1 WHERE id = {FIRST_DEPOSIT}",
        )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "FAILED row checksums equal the source" in result.stdout
    assert "public.wallet_transaction" in result.stdout, "the sample names the table"
    assert "FAILED row counts equal the source" not in result.stdout
    last = checkpoint_results(platform)[-1]
    assert (last[0], last[1], last[4]) == ("replica_parity", False, 1)
    # Restored: the same checkpoint passes again.
    again = platform.dq("run", "replica_parity")
    assert again.returncode == 0, again.stdout + again.stderr


def test_a_negative_deposit_total_in_a_mart_fails_marts(platform: Platform) -> None:
    first = (
        "(SELECT customer_id, activity_date, currency FROM analytics.daily_player_transactions"
        " WHERE total_deposits > 0 ORDER BY 1, 2, 3 LIMIT 1)"
    )
    ((customer_id, total),) = platform.execute(
        platform.warehouse,
        platform.dev,
        "UPDATE analytics.daily_player_transactions SET total_deposits = -total_deposits"
        f" WHERE (customer_id, activity_date, currency) = {first}"
        " RETURNING customer_id, total_deposits",
    )
    try:
        result = platform.dq("run", "marts")
    finally:
        platform.execute(
            platform.warehouse,
            platform.dev,
            "UPDATE analytics.daily_player_transactions SET total_deposits = -total_deposits"
            f" WHERE customer_id = {customer_id} AND total_deposits < 0",
        )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "FAILED sign daily_player_transactions.total_deposits >= 0" in result.stdout
    assert result.stdout.count("FAILED ") == 1, "only the broken expectation fails"
    assert f"e.g. ({customer_id}, " in result.stdout and f"Decimal('{total}')" in result.stdout
    last = checkpoint_results(platform)[-1]
    assert (last[0], last[1], last[4]) == ("marts", False, 1)
    assert last[5][0]["expectation"] == "ExpectColumnValuesToBeBetween"
