"""`zetl transform` against a warehouse the replicator filled from a generated workload: every
model builds and passes its tests, the marts match numbers recomputed from the SOURCE in plain
SQL, an incremental run after inserts, updates and deletes equals a full refresh, and the
replica database holds nothing of dbt's."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import psycopg2
import pytest
import yaml

from tests.support import MARTS, build_marts, query
from tests.transform.conftest import Platform
from zetl_transform.project import project_dir
from zetl_transform.runner import RunOutcome

pytestmark = [pytest.mark.docker, pytest.mark.slow]
UTC_DAY = "(occurred_at AT TIME ZONE 'UTC')::date"
MODELS = len(list((project_dir() / "models").rglob("*.sql")))  # every model of the project
UNIT_TESTS = sum(  # every dbt unit test of the project
    len(yaml.safe_load(path.read_text()).get("unit_tests") or [])
    for path in (project_dir() / "models").rglob("*.yml")
)


def transform(platform: Platform, *, full_refresh: bool = False) -> RunOutcome:
    return build_marts(platform.warehouse_url, platform.replica_database, full_refresh=full_refresh)


@pytest.fixture(scope="module")
def first_run(platform: Platform) -> RunOutcome:
    return transform(platform)


@pytest.fixture(scope="module")
def built(platform: Platform, first_run: RunOutcome) -> Iterator[Platform]:
    run = first_run
    assert run.models_ok == MODELS and run.models_error == 0 and run.tests_failed == 0
    yield platform


def test_the_dbt_unit_tests_run_in_the_build_and_pass(first_run: RunOutcome) -> None:
    assert UNIT_TESTS >= 4
    assert first_run.unit_tests_ok == UNIT_TESTS and first_run.tests_failed == 0


def one(url: str, statement: str) -> Any:
    return query(url, statement)[0][0]


def test_every_model_builds_and_the_run_is_logged(built: Platform) -> None:
    for mart in MARTS:
        assert one(built.warehouse_url, f"SELECT count(*) FROM analytics.{mart}") > 0, mart
    rows = query(
        built.warehouse_url,
        "SELECT success, command, full_refresh, models_ok, models_error, tests_failed,"
        " finished_at >= started_at FROM zetl_transform.run_log ORDER BY started_at",
    )
    assert rows[0] == (True, "build", False, MODELS, 0, 0, True)


def test_player_marts_match_the_source(built: Platform) -> None:
    src, dev = built.source_url, built.warehouse_url
    expected = query(
        src,
        f"SELECT count(*), sum(dep), sum(wd), sum(nd), sum(nw) FROM (SELECT customer_id, {UTC_DAY},"
        " currency, sum(amount) FILTER (WHERE amount > 0) AS dep,"
        " sum(amount) FILTER (WHERE amount < 0) AS wd,"
        " count(*) FILTER (WHERE transaction_type = 'deposit') AS nd,"
        " count(*) FILTER (WHERE transaction_type = 'withdrawal') AS nw"
        " FROM wallet_transaction GROUP BY 1, 2, 3) d",
    )[0]
    got = query(
        dev,
        "SELECT count(*), sum(total_deposits) FILTER (WHERE total_deposits > 0),"
        " sum(total_withdrawals) FILTER (WHERE total_withdrawals < 0), sum(deposit_count),"
        " sum(withdrawal_count) FROM analytics.daily_player_transactions",
    )[0]
    assert got == expected and expected[0] > 100

    # Top three, recomputed in Python from the source's deposits of a few players.
    deposits: dict[tuple[int, str], list[Decimal]] = defaultdict(list)
    for customer, currency, amount in query(
        src,
        "SELECT customer_id, currency, amount FROM wallet_transaction"
        " WHERE transaction_type = 'deposit' AND customer_id IN ((SELECT customer_id"
        " FROM wallet_transaction WHERE transaction_type = 'deposit' GROUP BY 1"
        " ORDER BY count(*) DESC, 1 LIMIT 5) UNION (SELECT min(customer_id)"
        " FROM wallet_transaction))",
    ):
        deposits[(customer, currency)].append(amount)
    for (customer, currency), amounts in deposits.items():
        top = sorted(amounts, reverse=True)[:3]
        row = query(
            dev,
            "SELECT top_deposit_1, top_deposit_2, top_deposit_3 FROM"
            " analytics.player_top_three_deposits WHERE customer_id = %s AND currency = %s",
            (customer, currency),
        )
        assert row == [tuple(top + [None] * (3 - len(top)))], (customer, currency)
    assert one(dev, "SELECT count(*) FROM analytics.player_top_three_deposits") == one(
        src,
        "SELECT count(*) FROM (SELECT DISTINCT customer_id, currency FROM wallet_transaction"
        " WHERE transaction_type = 'deposit') p",
    )

    discord = (
        "SELECT c.country_code, w.currency, sum(w.amount), count(*), count(DISTINCT c.id)"
        " FROM wallet_transaction w JOIN customer c ON c.id = w.customer_id"
        " JOIN affiliate a ON a.id = c.referred_by_affiliate_id"
        " WHERE w.transaction_type = 'deposit' AND c.kyc_status = 'approved'"
        " AND a.origin = 'discord' GROUP BY 1, 2 ORDER BY 1, 2"
    )
    assert query(
        dev,
        "SELECT country_code, currency, deposit_total, deposit_count, player_count"
        " FROM analytics.agg_discord_deposits_by_country ORDER BY 1, 2",
    ) == query(src, discord)


def test_storefront_marts_match_the_source(built: Platform) -> None:
    src, dev = built.source_url, built.warehouse_url
    expected = query(
        src,
        f"SELECT count(DISTINCT ({UTC_DAY}, l.publisher_id, l.game_id, l.platform, l.currency)),"
        " sum(l.gross_amount) FILTER (WHERE t.transaction_type <> 'payout'),"
        " sum(l.fee_amount) FILTER (WHERE t.transaction_type <> 'payout'),"
        " sum(l.net_amount) FILTER (WHERE t.transaction_type <> 'payout'),"
        " sum(l.gross_amount) FILTER (WHERE t.transaction_type = 'refund'),"
        " sum(l.gross_amount) FILTER (WHERE t.transaction_type = 'payout')"
        " FROM store_transaction_line l JOIN store_transaction t ON t.id = l.transaction_id",
    )[0]
    got = query(
        dev,
        "SELECT count(*), sum(gross_amount), sum(fee_amount), sum(net_amount),"
        " sum(refund_amount), sum(payout_amount) FROM analytics.daily_revenue",
    )[0]
    assert got == expected and expected[0] > 50
    assert one(dev, "SELECT sum(sale_count) FROM analytics.daily_revenue") == one(
        src,
        "SELECT sum(n) FROM (SELECT count(DISTINCT transaction_id) AS n FROM"
        " store_transaction_line l JOIN store_transaction t ON t.id = l.transaction_id"
        " WHERE t.transaction_type = 'sale' GROUP BY (t.occurred_at AT TIME ZONE 'UTC')::date,"
        " l.publisher_id, l.game_id, l.platform, l.currency) s",
    )

    expected_rec = query(
        src,
        "SELECT count(*), count(*) FILTER (WHERE t.total_amount <> coalesce(l.total, 0)"
        " OR l.total IS NULL), sum(t.total_amount - coalesce(l.total, 0))"
        " FROM store_transaction t LEFT JOIN (SELECT transaction_id, sum(gross_amount) AS total"
        " FROM store_transaction_line GROUP BY 1) l ON l.transaction_id = t.id",
    )[0]
    assert query(
        dev,
        "SELECT count(*), count(*) FILTER (WHERE is_mismatched), sum(difference)"
        " FROM analytics.transaction_reconciliation",
    ) == [expected_rec]

    payouts = (
        "SELECT l.publisher_id, l.currency,"
        " coalesce(sum(l.net_amount) FILTER (WHERE t.transaction_type <> 'payout'), 0),"
        " coalesce(-sum(l.gross_amount) FILTER (WHERE t.transaction_type = 'payout'), 0)"
        " FROM store_transaction_line l JOIN store_transaction t ON t.id = l.transaction_id"
        " GROUP BY 1, 2 ORDER BY 1, 2"
    )
    assert query(
        dev,
        "SELECT publisher_id, currency, earned_net, paid_out FROM analytics.publisher_payouts"
        " ORDER BY 1, 2",
    ) == query(src, payouts)


def snapshot(url: str) -> dict[str, set[tuple[Any, ...]]]:
    """Every mart's rows, without the id of the run that wrote them."""
    marts = {}
    for mart in MARTS:
        columns = ", ".join(
            row[0]
            for row in query(
                url,
                "SELECT column_name FROM information_schema.columns WHERE table_schema ="
                " 'analytics' AND table_name = %s AND column_name <> 'zetl_invocation_id'"
                " ORDER BY ordinal_position",
                (mart,),
            )
        )
        marts[mart] = set(query(url, f"SELECT {columns} FROM analytics.{mart}"))
    return marts


def test_incremental_run_after_inserts_updates_and_deletes_equals_a_full_refresh(
    built: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No lookback: changes must be found by the watermark, deletes by the drift comparison.
    monkeypatch.setenv("ZETL_LOOKBACK_MINUTES", "0")
    built.generate(1500, seed=8)
    src = built.source_url
    conn = psycopg2.connect(src)
    try:
        with conn, conn.cursor() as cur:
            # Old rows deleted and moved, long after the first build saw them.
            cur.execute(
                "DELETE FROM wallet_transaction WHERE id IN (SELECT id FROM wallet_transaction"
                " ORDER BY id LIMIT 7)"
            )
            cur.execute(
                "UPDATE wallet_transaction SET occurred_at = occurred_at - interval '3 days',"
                " amount = amount * 2 WHERE id = (SELECT min(id) FROM wallet_transaction"
                " WHERE transaction_type = 'deposit')"
            )
            cur.execute(
                "DELETE FROM store_transaction WHERE id IN (SELECT id FROM store_transaction t"
                " WHERE NOT EXISTS (SELECT 1 FROM store_transaction r"
                " WHERE r.refunded_transaction_id = t.id) ORDER BY id LIMIT 4)"
            )
            cur.execute(
                "DELETE FROM store_transaction_line WHERE id = (SELECT min(id)"
                " FROM store_transaction_line WHERE line_number = 2)"
            )
            cur.execute("UPDATE publisher SET name = name || ' Renamed' WHERE id = (SELECT min(id)"
                        " FROM publisher)")  # fmt: skip
            cur.execute("UPDATE customer SET customer_code = customer_code || 'X' WHERE id ="
                        " (SELECT min(customer_id) FROM wallet_transaction)")  # fmt: skip
    finally:
        conn.close()
    built.wait_replicated()
    before = query(built.warehouse_url, "SELECT count(*) FROM analytics.transaction_reconciliation")

    transform(built)
    incremental = snapshot(built.warehouse_url)
    transform(built, full_refresh=True)
    full = snapshot(built.warehouse_url)
    for mart in MARTS:
        assert incremental[mart] == full[mart], f"{mart}: incremental differs from full refresh"
    assert (
        query(built.warehouse_url, "SELECT count(*) FROM analytics.transaction_reconciliation")
        != before
    )


def test_the_replica_database_holds_nothing_of_dbts(built: Platform) -> None:
    schemas = {
        row[0]
        for row in query(
            built.replica_url,
            "SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%'"
            " AND nspname <> 'information_schema'",
        )
    }
    assert schemas == {"public", "zetl"}
    relations = set(
        query(
            built.replica_url,
            "SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid ="
            " c.relnamespace WHERE n.nspname = 'public' AND c.relkind NOT IN ('i', 'S')",
        )
    )
    assert relations == {(table, "r") for table in TABLES_REPLICATED}
    # And through the link nothing can be written: the remote user only reads.
    with pytest.raises(psycopg2.Error, match="permission denied"):
        query(
            built.warehouse_url,
            f"DELETE FROM {built.replica_database}_public.affiliate WHERE id = -1",
        )


TABLES_REPLICATED = {
    "affiliate", "customer", "game", "game_listing", "game_source_key", "publisher",
    "publisher_source_key", "store_transaction", "store_transaction_line", "wallet_transaction",
}  # fmt: skip


def test_a_second_refresh_keeps_the_views_over_unchanged_tables(built: Platform) -> None:
    from zetl_transform.link import refresh

    report = refresh(built.warehouse_url, built.replica_database)
    assert sorted(report.kept) == sorted(TABLES_REPLICATED)
    assert not (report.added or report.replaced or report.dropped)
    assert one(built.warehouse_url, "SELECT count(*) FROM analytics.stg_customer") > 0
