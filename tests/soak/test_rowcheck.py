"""The soak's row-by-row check finds each way a replica can be wrong, and nothing when it is
right: it is what proves a soak lost and duplicated nothing."""

from __future__ import annotations

import psycopg2
import pytest

from bench.soak.rowcheck import compare, differences

pytestmark = pytest.mark.docker

TABLE = """
CREATE TABLE public.account (
    id bigint, region text, balance numeric(12,2), opened_at timestamptz, note text,
    PRIMARY KEY (id, region)
)
"""
ROWS = """
INSERT INTO public.account VALUES
    (1, 'eu', 10.50, '2026-01-01 10:00+01', NULL),
    (2, 'eu', 0.00, '2026-01-02 00:00+00', 'a'),
    (3, 'us', 99.99, '2026-01-03 23:59:59.123456+00', ''),
    (4, 'us', 1.00, NULL, 'b')
"""


def setup(url: str, *statements: str) -> psycopg2.extensions.connection:
    conn = psycopg2.connect(url)
    with conn, conn.cursor() as cur:
        for statement in statements:
            cur.execute(statement)
    return conn


def test_an_identical_replica_has_no_difference(source_url: str, warehouse_url: str) -> None:
    source = setup(source_url, TABLE, ROWS)
    # A replica session in another time zone writes the same instants.
    replica = setup(warehouse_url, "SET TimeZone = 'Asia/Tokyo'", TABLE, ROWS)
    try:
        found = compare(source, replica)
    finally:
        source.close()
        replica.close()
    assert found == {
        "account": {
            "source_rows": 4,
            "replica_rows": 4,
            "lost": 0,
            "extra": 0,
            "duplicated": 0,
            "different": 0,
        }
    }
    assert differences(found) == 0


def test_lost_extra_duplicated_and_different_rows_are_each_counted(
    source_url: str, warehouse_url: str
) -> None:
    source = setup(source_url, TABLE, ROWS, "CREATE TABLE public.only_here (id int PRIMARY KEY)")
    # The replica's table has no key, so that a row applied twice can show.
    replica = setup(
        warehouse_url,
        TABLE.replace(",\n    PRIMARY KEY (id, region)", ""),
        ROWS,
        "DELETE FROM public.account WHERE id = 1",  # lost
        "INSERT INTO public.account VALUES (5, 'us', 5.00, NULL, NULL)",  # extra
        "INSERT INTO public.account SELECT * FROM public.account WHERE id = 2",  # twice
        "UPDATE public.account SET note = NULL WHERE id = 3",  # '' became NULL
        "UPDATE public.account SET balance = 1.01 WHERE id = 4",
    )
    try:
        found = compare(source, replica)
    finally:
        source.close()
        replica.close()
    assert found["account"] == {
        "source_rows": 4,
        "replica_rows": 5,
        "lost": 1,
        "extra": 1,
        "duplicated": 1,
        "different": 2,
    }
    assert found["only_here"] == {"missing_on_replica": 1}
    assert differences(found) == 6
