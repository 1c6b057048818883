"""The storefront's business rules as SQL: each query returns the rows that break its rule.

The generator must never break one; ``zetl generate check`` runs them against any source
database (loaded exports included) and exits 1 when one is broken. They live with the schema
because the data-quality checkpoint ``source_integrity`` evaluates the same queries.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg2.extensions


@dataclass(frozen=True)
class Rule:
    name: str
    description: str
    violations_sql: str


RULES = (
    Rule(
        "wallet_after_kyc",
        "no deposit or withdrawal before the customer's KYC approval",
        """
        SELECT w.wallet_transaction_code FROM wallet_transaction w
        JOIN customer c ON c.id = w.customer_id
        WHERE c.kyc_approved_at IS NULL OR w.occurred_at < c.kyc_approved_at
        """,
    ),
    Rule(
        "transaction_after_signup",
        "no transaction before the customer's signup",
        """
        SELECT t.transaction_code FROM store_transaction t
        JOIN customer c ON c.id = t.customer_id WHERE t.occurred_at < c.signed_up_at
        UNION ALL
        SELECT w.wallet_transaction_code FROM wallet_transaction w
        JOIN customer c ON c.id = w.customer_id WHERE w.occurred_at < c.signed_up_at
        """,
    ),
    Rule(
        "withdrawal_within_balance",
        "withdrawals never exceed the wallet balance",
        """
        SELECT wallet_transaction_code FROM (
            SELECT wallet_transaction_code, sum(amount) OVER (
                PARTITION BY customer_id, currency ORDER BY occurred_at, id
            ) AS balance
            FROM wallet_transaction
        ) AS running WHERE balance < 0
        """,
    ),
    Rule(
        "affiliate_redeemed_once",
        "a redeemed affiliate code belongs to exactly one customer",
        """
        SELECT a.affiliate_code FROM affiliate a
        LEFT JOIN customer c ON c.referred_by_affiliate_id = a.id
        GROUP BY a.id, a.affiliate_code, a.redeemed_at
        HAVING (a.redeemed_at IS NOT NULL) <> (count(c.id) = 1) OR count(c.id) > 1
        """,
    ),
    Rule(
        "refund_of_earlier_purchase",
        "a refund refers to an earlier purchase of the same customer and never exceeds it",
        """
        SELECT r.transaction_code FROM store_transaction r
        LEFT JOIN store_transaction s ON s.id = r.refunded_transaction_id
        WHERE r.transaction_type = 'refund' AND (
            s.id IS NULL OR s.transaction_type <> 'sale'
            OR s.customer_id IS DISTINCT FROM r.customer_id OR s.occurred_at >= r.occurred_at
        )
        UNION ALL
        SELECT s.transaction_code FROM store_transaction s
        JOIN store_transaction r ON r.refunded_transaction_id = s.id
        GROUP BY s.id, s.transaction_code, s.total_amount
        HAVING -sum(r.total_amount) > s.total_amount
        """,
    ),
    Rule(
        "net_is_gross_minus_fee",
        "net = gross - fee on every line",
        """
        SELECT t.transaction_code || '/' || l.line_number FROM store_transaction_line l
        JOIN store_transaction t ON t.id = l.transaction_id
        WHERE l.net_amount <> l.gross_amount - l.fee_amount
        """,
    ),
    Rule(
        "header_total_matches_lines",
        "a header total equals the sum of its lines, unless a load reported the difference"
        " (total_mismatch: the export's own total, kept as real data)",
        """
        SELECT t.transaction_code FROM store_transaction t
        LEFT JOIN store_transaction_line l ON l.transaction_id = t.id
        WHERE NOT EXISTS (
            SELECT FROM zetl_load.data_issue i
            WHERE i.code = 'total_mismatch' AND i.source_id = t.transaction_code
        )
        GROUP BY t.id, t.transaction_code, t.total_amount
        HAVING t.total_amount <> coalesce(sum(l.gross_amount), 0)
        """,
    ),
)


@dataclass(frozen=True)
class RuleResult:
    rule: Rule
    violations: int
    examples: list[str]


def check_rules(cur: psycopg2.extensions.cursor, examples: int = 5) -> list[RuleResult]:
    """Every rule with how many rows break it and a few of their source identifiers."""
    results = []
    for rule in RULES:
        cur.execute(
            f"SELECT count(*) OVER (), v.* FROM ({rule.violations_sql}) AS v LIMIT %s", (examples,)
        )
        rows = cur.fetchall()
        results.append(RuleResult(rule, rows[0][0] if rows else 0, [str(r[1]) for r in rows]))
    return results
