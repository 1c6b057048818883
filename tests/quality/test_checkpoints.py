"""The checkpoints against a replicated, generated workload: they pass on good data, and one
row broken on purpose in a stage fails that stage's checkpoint with exit 1, naming the broken
expectation. Every run lands in zetl_dq.checkpoint_result."""

from __future__ import annotations

import pytest

from tests.quality.conftest import Platform, checkpoint_results

pytestmark = [pytest.mark.docker, pytest.mark.slow]

FIRST_SALE = "(SELECT min(id) FROM store_transaction WHERE transaction_type = 'sale')"
FIRST_DEPOSIT = "(SELECT min(id) FROM wallet_transaction WHERE transaction_type = 'deposit')"


def test_source_and_replica_checkpoints_pass_on_good_data(platform: Platform) -> None:
    for name in ("source_integrity", "replica_parity"):
        result = platform.dq("run", name)
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"checkpoint {name} (local): passed" in result.stdout
    rows = checkpoint_results(platform)
    assert [(r[0], r[1], r[4]) for r in rows[-2:]] == [
        ("source_integrity", True, 0),
        ("replica_parity", True, 0),
    ]
    assert all(r[2] == r[3] > 0 for r in rows[-2:]), "every expectation evaluated and passed"


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
