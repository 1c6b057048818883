"""A stand-in for `zetl dq run marts` the DAG's tests run where that command is not installed.

It keeps the command's contract (exit 0 when every check passes, 1 with a one-line reason
when one fails, 2 on a usage error) and checks the rules the marts checkpoint holds for
``analytics.daily_player_transactions``: deposits never negative, withdrawals never positive,
the grain unique.
"""

from __future__ import annotations

import os
import sys

import psycopg2

CHECKS = {
    "total_deposits >= 0": (
        "SELECT count(*) FROM analytics.daily_player_transactions WHERE total_deposits < 0"
    ),
    "total_withdrawals <= 0": (
        "SELECT count(*) FROM analytics.daily_player_transactions WHERE total_withdrawals > 0"
    ),
    "grain (customer_id, activity_date, currency) unique": (
        "SELECT count(*) FROM (SELECT 1 FROM analytics.daily_player_transactions"
        " GROUP BY customer_id, activity_date, currency HAVING count(*) > 1) d"
    ),
}


def main() -> int:
    url = os.environ.get("WAREHOUSE_DATABASE_URL")
    if not url:
        print("error: WAREHOUSE_DATABASE_URL is not set", file=sys.stderr)
        return 2
    conn = psycopg2.connect(url)
    try:
        failed = []
        with conn.cursor() as cur:
            for name, statement in CHECKS.items():
                cur.execute(statement)
                row = cur.fetchone()
                if row and row[0]:
                    failed.append(f"{name} ({row[0]} rows)")
    finally:
        conn.close()
    if failed:
        print(f"marts: {len(failed)} of {len(CHECKS)} checks failed: {'; '.join(failed)}")
        return 1
    print(f"marts: {len(CHECKS)} of {len(CHECKS)} checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
