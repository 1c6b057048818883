"""The constraints say what is true: bad rows are refused by the database itself."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg2
import psycopg2.errors
import psycopg2.extensions
import pytest

from zetl.schema.migrate import upgrade

pytestmark = pytest.mark.docker

Conn = psycopg2.extensions.connection


@pytest.fixture
def db(source_url: str) -> Iterator[Conn]:
    upgrade(source_url)
    conn = psycopg2.connect(source_url)
    conn.autocommit = True
    try:
        _seed(conn)
        yield conn
    finally:
        conn.close()


def run(conn: Conn, statement: str) -> None:
    with conn.cursor() as cur:
        cur.execute(statement)


def one(conn: Conn, query: str) -> object:
    with conn.cursor() as cur:
        cur.execute(query)
        row = cur.fetchone()
        assert row is not None
        return row[0]


def _seed(conn: Conn) -> None:
    run(
        conn,
        "INSERT INTO publisher (publisher_code, name, country_code) VALUES ('P1', 'Pub', 'US')",
    )
    run(conn, "INSERT INTO game (game_code, title) VALUES ('G1', 'Game')")
    run(conn, "INSERT INTO customer (customer_code) VALUES ('CUST-1')")
    run(
        conn,
        "INSERT INTO game_listing (game_id, platform, publisher_id)"
        " SELECT g.id, 'PC', p.id FROM game g, publisher p",
    )
    run(
        conn,
        "INSERT INTO store_transaction"
        " (transaction_code, transaction_type, occurred_at, currency, total_amount, customer_id)"
        " SELECT 'T1', 'sale', now(), 'USD', 10, id FROM customer",
    )


def add_line(conn: Conn, gross: str, fee: str, net: str, txn: str = "T1", number: int = 1) -> None:
    run(
        conn,
        "INSERT INTO store_transaction_line (transaction_id, line_number, transaction_type,"
        " currency, game_id, platform, publisher_id, region, gross_amount, fee_amount, net_amount)"
        f" SELECT t.id, {number}, t.transaction_type, t.currency, l.game_id, l.platform,"
        f" l.publisher_id, 'NA', {gross}, {fee}, {net}"
        f" FROM store_transaction t, game_listing l WHERE t.transaction_code = '{txn}'",
    )


def test_a_valid_line_is_accepted(db: Conn) -> None:
    add_line(db, "10.00", "3.00", "7.00")
    assert one(db, "SELECT count(*) FROM store_transaction_line") == 1


@pytest.mark.parametrize(
    ("gross", "fee", "net"),
    [("10.00", "3.00", "8.00"), ("-10.00", "-3.00", "-7.00"), ("10.00", "-1.00", "11.00")],
    ids=["net_not_gross_minus_fee", "negative_sale", "negative_fee_on_sale"],
)
def test_lines_that_break_the_money_rules_are_refused(
    db: Conn, gross: str, fee: str, net: str
) -> None:
    with pytest.raises(psycopg2.errors.CheckViolation):
        add_line(db, gross, fee, net)


def test_a_line_must_repeat_its_headers_type_and_currency(db: Conn) -> None:
    with pytest.raises(psycopg2.errors.ForeignKeyViolation):
        run(
            db,
            "INSERT INTO store_transaction_line (transaction_id, line_number, transaction_type,"
            " currency, game_id, platform, publisher_id, region, gross_amount, fee_amount,"
            " net_amount) SELECT t.id, 1, 'sale', 'EUR', l.game_id, l.platform, l.publisher_id,"
            " 'NA', 1, 0, 1 FROM store_transaction t, game_listing l",
        )


def test_a_line_needs_a_known_game_platform_publisher(db: Conn) -> None:
    with pytest.raises(psycopg2.errors.ForeignKeyViolation):
        run(
            db,
            "INSERT INTO store_transaction_line (transaction_id, line_number, transaction_type,"
            " currency, game_id, platform, publisher_id, region, gross_amount, fee_amount,"
            " net_amount) SELECT t.id, 1, 'sale', 'USD', l.game_id, 'PS5', l.publisher_id,"
            " 'NA', 1, 0, 1 FROM store_transaction t, game_listing l",
        )


@pytest.mark.parametrize(
    "statement",
    [
        # a payout goes to publishers, never to a customer
        "INSERT INTO store_transaction (transaction_code, transaction_type, occurred_at,"
        " currency, total_amount, customer_id) SELECT 'T2', 'payout', now(), 'USD', -5, id"
        " FROM customer",
        # a sale needs its customer
        "INSERT INTO store_transaction (transaction_code, transaction_type, occurred_at,"
        " currency, total_amount) VALUES ('T2', 'sale', now(), 'USD', 5)",
        # a refund's total is not positive
        "INSERT INTO store_transaction (transaction_code, transaction_type, occurred_at,"
        " currency, total_amount, customer_id) SELECT 'T2', 'refund', now(), 'USD', 5, id"
        " FROM customer",
        # only refunds point at the purchase they refund
        "INSERT INTO store_transaction (transaction_code, transaction_type, occurred_at,"
        " currency, total_amount, customer_id, refunded_transaction_id)"
        " SELECT 'T2', 'sale', now(), 'USD', 5, customer_id, id FROM store_transaction",
        "INSERT INTO store_transaction (transaction_code, transaction_type, occurred_at,"
        " currency, total_amount, customer_id) SELECT 'T2', 'gift', now(), 'USD', 5, id"
        " FROM customer",
        "INSERT INTO store_transaction (transaction_code, transaction_type, occurred_at,"
        " currency, total_amount, customer_id) SELECT 'T2', 'sale', now(), 'usd', 5, id"
        " FROM customer",
        "INSERT INTO customer (customer_code, kyc_status) VALUES ('CUST-2', 'approved')",
        "INSERT INTO customer (customer_code, country_code) VALUES ('CUST-2', 'us')",
        "INSERT INTO wallet_transaction (wallet_transaction_code, customer_id, transaction_type,"
        " occurred_at, currency, amount) SELECT 'W1', id, 'withdrawal', now(), 'USD', 5"
        " FROM customer",
        "INSERT INTO affiliate (affiliate_code, origin) VALUES ('A1', 'Discord')",
    ],
    ids=[
        "payout_with_customer",
        "sale_without_customer",
        "positive_refund",
        "sale_linked_as_refund",
        "unknown_type",
        "lower_case_currency",
        "approved_without_time",
        "lower_case_country",
        "positive_withdrawal",
        "origin_not_lower_case",
    ],
)
def test_bad_rows_are_refused(db: Conn, statement: str) -> None:
    with pytest.raises(psycopg2.errors.CheckViolation):
        run(db, statement)


def test_natural_keys_are_unique(db: Conn) -> None:
    with pytest.raises(psycopg2.errors.UniqueViolation):
        run(db, "INSERT INTO game (game_code, title) VALUES ('G1', 'Again')")


def test_an_affiliate_code_is_redeemed_by_one_customer_only(db: Conn) -> None:
    run(db, "INSERT INTO affiliate (affiliate_code, origin) VALUES ('A1', 'discord')")
    run(db, "UPDATE customer SET referred_by_affiliate_id = (SELECT id FROM affiliate)")
    with pytest.raises(psycopg2.errors.UniqueViolation):
        run(
            db,
            "INSERT INTO customer (customer_code, referred_by_affiliate_id)"
            " SELECT 'CUST-2', id FROM affiliate",
        )


def test_updated_at_moves_on_a_real_change_only(db: Conn) -> None:
    run(db, "ALTER TABLE game DISABLE TRIGGER set_updated_at")
    run(db, "UPDATE game SET updated_at = '2000-01-01T00:00:00Z'")
    run(db, "ALTER TABLE game ENABLE TRIGGER set_updated_at")
    run(db, "UPDATE game SET title = title")
    assert one(db, "SELECT updated_at = '2000-01-01T00:00:00Z' FROM game") is True
    run(db, "UPDATE game SET title = 'Renamed'")
    assert one(db, "SELECT updated_at > now() - interval '1 minute' FROM game") is True
