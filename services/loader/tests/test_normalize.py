"""Normalization rules, without a database: formats, keys, amounts."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from zetl_loader.normalize import (
    Reject,
    amount,
    company_key,
    optional_date,
    parse_date,
    parse_timestamp,
    title_key,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2022-10-14", date(2022, 10, 14)),
        ("03/02/2021", date(2021, 3, 2)),  # month first
        ("2019/11/20", date(2019, 11, 20)),
        ("31/12/2021", date(2021, 12, 31)),  # the value says day first
        (" 2020-02-29 ", date(2020, 2, 29)),
    ],
)
def test_dates_in_every_export_format(text: str, expected: date) -> None:
    assert parse_date(text) == expected


@pytest.mark.parametrize("text", ["2024-09-31", "2021-02-29", "13/13/2020", "yesterday", "2024-1"])
def test_impossible_or_unknown_dates_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_date(text)


def test_a_missing_or_impossible_date_is_null_and_reported() -> None:
    assert optional_date("", "release_date")[1] is not None
    value, issue = optional_date("2024-09-31", "release_date")
    assert value is None and issue is not None and issue.code == "invalid_date"
    assert optional_date("2024-09-30", "release_date") == (date(2024, 9, 30), None)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-01-05T14:22:10Z", datetime(2025, 1, 5, 14, 22, 10, tzinfo=UTC)),
        ("2025/01/06 09:01:00", datetime(2025, 1, 6, 9, 1, tzinfo=UTC)),  # no zone: UTC
        ("01-07-2025 11:05", datetime(2025, 1, 7, 11, 5, tzinfo=UTC)),  # month first
        ("2025-02-04T09:00:00+01:00", datetime(2025, 2, 4, 8, 0, tzinfo=UTC)),
        ("2025-02-04 09:00:00.5-0230", datetime(2025, 2, 4, 11, 30, 0, 500000, tzinfo=UTC)),
        ("2025-02-04", datetime(2025, 2, 4, tzinfo=UTC)),
    ],
)
def test_timestamps_in_every_export_format(text: str, expected: datetime) -> None:
    assert parse_timestamp(text) == expected


@pytest.mark.parametrize("text", ["2025-01-05T25:00:00Z", "2025-01-05 10:61", "soon", ""])
def test_bad_timestamps_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_timestamp(text)


def test_company_names_match_across_case_punctuation_and_suffixes() -> None:
    assert company_key("Valve") == company_key("VALVE CORP")
    assert company_key("Nintendo Co., Ltd.") == company_key("Nintendo")
    assert company_key("Globex Interactive") != company_key("Globex")
    assert company_key("Inc") == "inc"  # a name that is only a suffix stays itself


def test_titles_match_across_case_and_whitespace_only() -> None:
    assert title_key("Starforge") == title_key("STARFORGE") == title_key(" starforge ")
    assert title_key("Neon Drift ") == title_key("Neon  Drift")
    assert title_key("Starforge 2") != title_key("Starforge")


@pytest.mark.parametrize("text", ["19.99", "-6.00", "0", "+3.5", "1234567890.12"])
def test_amounts(text: str) -> None:
    assert amount(text, "gross_amount") == Decimal(text)


@pytest.mark.parametrize("text", ["", "abc", "19.999", "$19.99", "1,000.00", "12345678901", "NaN"])
def test_non_amounts_are_rejected_never_rounded(text: str) -> None:
    with pytest.raises(Reject) as info:
        amount(text, "gross_amount")
    assert info.value.code == "invalid_amount"
