"""Fixtures for the loader's tests: a migrated source database and small export folders."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg2
import psycopg2.extensions
import pytest

from zetl.schema.migrate import upgrade

HEADERS = {
    "publisher.csv": "publisher_id,name,country",
    "game.csv": "game_id,title,release_date,genre",
    "transaction.csv": "transaction_id,txn_type,txn_ts,currency,total_amount,customer_ref",
    "transaction_detail.csv": (
        "transaction_id,line_no,game_ref,publisher_ref,region,platform,gross_amount,"
        "platform_fee,net_amount"
    ),
}
# A small, valid export every malformed-input test starts from.
VALID_ROWS = {
    "publisher.csv": ["P1,Alpha Games,US", "P2,Beta Soft,GB"],
    "game.csv": ["G1,Comet Run,2024-01-05,Action", "G2,Quiet Forest,2023-06-30,Adventure"],
    "transaction.csv": [
        "T1,sale,2025-01-01T10:00:00Z,USD,30.00,CUST-1",
        "T2,refund,2025-01-02T10:00:00Z,USD,-10.00,CUST-1",
        "T3,payout,2025-01-03T00:00:00Z,EUR,-5.00,PLATFORM",
    ],
    "transaction_detail.csv": [
        "T1,1,G1,P1,NA,PC,10.00,3.00,7.00",
        "T1,2,G2,P2,EU,PS5,20.00,6.00,14.00",
        "T2,1,G1,P1,NA,PC,-10.00,-3.00,-7.00",
        "T3,1,G2,P2,EU,PS5,-5.00,0.00,-5.00",
    ],
}

Conn = psycopg2.extensions.connection
ExportWriter = Callable[..., Path]


@pytest.fixture
def db_url(source_url: str) -> str:
    """A fresh source database at the newest schema."""
    upgrade(source_url)
    return source_url


@pytest.fixture
def db(db_url: str) -> Iterator[Conn]:
    conn = psycopg2.connect(db_url)
    conn.autocommit = True
    try:
        yield conn
    finally:
        conn.close()


def write_export(
    directory: Path,
    rows: dict[str, list[str]] | None = None,
    raw: dict[str, bytes] | None = None,
) -> Path:
    """Write an export: the valid sample with ``rows`` replacing whole files' rows and ``raw``
    replacing whole files' bytes."""
    directory.mkdir(parents=True, exist_ok=True)
    contents = {**VALID_ROWS, **(rows or {})}
    for name, header in HEADERS.items():
        text = "\n".join([header, *contents[name]]) + "\n"
        (directory / name).write_text(text, encoding="utf-8")
    for name, data in (raw or {}).items():
        (directory / name).write_bytes(data)
    return directory


@pytest.fixture
def export(tmp_path: Path) -> ExportWriter:
    def write(
        rows: dict[str, list[str]] | None = None, raw: dict[str, bytes] | None = None
    ) -> Path:
        return write_export(tmp_path / "export", rows, raw)

    return write


def scalar(conn: Conn, query: str, *args: object) -> object:
    with conn.cursor() as cur:
        cur.execute(query, args)
        row = cur.fetchone()
        assert row is not None
        return row[0]


def fetch(conn: Conn, query: str, *args: object) -> list[tuple[object, ...]]:
    with conn.cursor() as cur:
        cur.execute(query, args)
        return list(cur.fetchall())
