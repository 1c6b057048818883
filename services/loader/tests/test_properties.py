"""Property tests: random mixes of valid and defective rows keep the count identity, and a
second load of the same files changes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zetl_loader.pipeline import run_load

from .conftest import VALID_ROWS, Conn, fetch, scalar, write_export

pytestmark = pytest.mark.docker

HEADER_KINDS = ("sale", "refund", "payout", "bad_timestamp", "bad_amount", "repeat", "conflict")
LINE_KINDS = (
    "ok", "by_name", "bad_amount", "net_mismatch", "unknown_game", "truncated", "extra_field",
    "negative",
)  # fmt: skip
TABLES = (
    "store_transaction_line, store_transaction, game_listing, customer, publisher_source_key,"
    " game_source_key, publisher, game, zetl_load.data_issue, zetl_load.quarantine,"
    " zetl_load.load_run"
)


def header_row(number: int, kind: str, previous: str | None) -> str:
    if kind in ("repeat", "conflict") and previous is not None:
        return previous if kind == "repeat" else previous.replace(",USD,", ",EUR,")
    code, day = f"T{number}", f"2025-01-{number % 28 + 1:02d}"
    return {
        "refund": f"{code},refund,{day} 12:00,USD,-10.00,CUST-{number % 3}",
        "payout": f"{code},payout,{day}T00:00:00Z,USD,-10.00,PLATFORM",
        "bad_timestamp": f"{code},sale,{day[:5]}13-45,USD,10.00,CUST-1",
        "bad_amount": f"{code},sale,{day},USD,ten,CUST-1",
    }.get(kind, f"{code},sale,{day}T10:00:00Z,USD,10.00,CUST-{number % 3}")


def line_row(kind: str, transaction: int, number: int) -> str:
    prefix = f"T{transaction},{number}"
    return {
        "by_name": f'{prefix},"comet RUN","Beta Soft",NA,PC,10.00,3.00,7.00',
        "bad_amount": f"{prefix},G1,P1,NA,PC,1O.00,3.00,7.00",
        "net_mismatch": f"{prefix},G1,P1,NA,PC,10.00,3.00,6.00",
        "unknown_game": f"{prefix},G404,P1,NA,PC,10.00,3.00,7.00",
        "truncated": f"{prefix},G1,P1",
        "extra_field": f"{prefix},G1,P1,NA,PC,10.00,3.00,7.00,?",
        "negative": f"{prefix},G2,P2,EU,PS5,-10.00,-3.00,-7.00",
    }.get(kind, f"{prefix},G1,P1,NA,PC,10.00,3.00,7.00")


@st.composite
def exports(draw: st.DrawFn) -> dict[str, list[str]]:
    headers: list[str] = []
    for number, kind in enumerate(
        draw(st.lists(st.sampled_from(HEADER_KINDS), min_size=1, max_size=8)), start=1
    ):
        headers.append(header_row(number, kind, headers[-1] if headers else None))
    lines = [
        line_row(kind, transaction, number)
        for kind, transaction, number in draw(
            st.lists(
                st.tuples(
                    st.sampled_from(LINE_KINDS),
                    st.integers(1, len(headers) + 1),  # one past the end: an unknown transaction
                    st.integers(1, 3),
                ),
                max_size=20,
            )
        )
    ]
    return {"transaction.csv": headers, "transaction_detail.csv": lines}


def reset(db: Conn) -> None:
    with db.cursor() as cur:
        cur.execute(f"TRUNCATE {TABLES} RESTART IDENTITY CASCADE")


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(rows=exports())
def test_every_row_is_accounted_for_and_a_reload_changes_nothing(
    db_url: str, db: Conn, tmp_path: Path, rows: dict[str, list[str]]
) -> None:
    reset(db)
    directory = write_export(tmp_path / "export", rows)

    report = run_load(db_url, directory)

    assert report.balanced
    for entity, table, file in (
        ("store_transaction", "store_transaction", "transaction.csv"),
        ("store_transaction_line", "store_transaction_line", "transaction_detail.csv"),
    ):
        counts = report.entities[entity]
        assert counts.read == len(rows[file])
        assert counts.loaded == scalar(db, f"SELECT count(*) FROM {table}")
        assert counts.quarantined == scalar(
            db, "SELECT count(*) FROM zetl_load.quarantine WHERE file_name = %s", file
        )
        assert counts.merged == scalar(
            db,
            "SELECT count(*) FROM zetl_load.data_issue WHERE file_name = %s"
            " AND code = 'duplicate_merged'",
            file,
        )
    assert report.entities["publisher"].read == len(VALID_ROWS["publisher.csv"])

    snapshot = fetch(db, "SELECT * FROM store_transaction_line ORDER BY id")
    snapshot += fetch(db, "SELECT * FROM store_transaction ORDER BY id")
    again = run_load(db_url, directory, reload=True)
    assert all(c.inserted == c.updated == 0 for c in again.entities.values())
    assert again.quarantined == report.quarantined
    after = fetch(db, "SELECT * FROM store_transaction_line ORDER BY id")
    after += fetch(db, "SELECT * FROM store_transaction ORDER BY id")
    assert after == snapshot


def test_reset_really_empties_the_database(db_url: str, db: Conn, tmp_path: Path) -> None:
    run_load(db_url, write_export(tmp_path / "export"))
    reset(db)
    assert scalar(db, "SELECT count(*) FROM store_transaction") == 0
    assert scalar(db, "SELECT count(*) FROM zetl_load.load_run") == 0
