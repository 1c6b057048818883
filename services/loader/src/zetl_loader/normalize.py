"""Normalize: turn one raw CSV record into clean values, or say why it cannot be loaded.

Pure functions, no database: every defect class of the exports is handled here in general
(date and timestamp formats, whitespace, codes in any case, amounts) and reported under a
stable code. A ``Reject`` sends the row to quarantine; an ``Issue`` keeps the row and reports.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from functools import lru_cache

from zetl.schema.vocabulary import CODE_LENGTH

# customer_ref of payouts: money paid out to publishers, not a customer's purchase.
PLATFORM_CUSTOMER = "PLATFORM"
# Corporate suffixes that do not tell two publishers apart ("VALVE CORP" is "Valve").
CORPORATE_SUFFIXES = frozenset(
    {"co", "corp", "corporation", "company", "inc", "incorporated", "ltd", "limited", "llc"}
    | {"plc", "gmbh", "ag", "sa", "kk", "bv", "srl", "pty"}
)


@dataclass(frozen=True)
class Issue:
    """A data issue: the row was kept (or merged), the report says what was noticed."""

    code: str
    detail: str


class Reject(Exception):  # noqa: N818 - a reason, raised where a row cannot be loaded
    """The row cannot be loaded: it goes to quarantine under ``code``."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


# --- text and codes --------------------------------------------------------------------------

_NOT_ALNUM = re.compile(r"[\W_]+")


def clean_text(value: str) -> str:
    """Trim and collapse runs of whitespace: ``"Neon  Drift "`` is ``"Neon Drift"``."""
    return " ".join(value.split())


def required_text(value: str, column: str, max_length: int) -> str:
    text = clean_text(value)
    if not text:
        raise Reject("missing_value", f"{column} is empty")
    if len(text) > max_length:
        raise Reject("field_too_long", f"{column} has {len(text)} characters (max {max_length})")
    return text


def optional_text(value: str, column: str, max_length: int) -> str | None:
    text = clean_text(value)
    if len(text) > max_length:
        raise Reject("field_too_long", f"{column} has {len(text)} characters (max {max_length})")
    return text or None


def code(value: str, column: str) -> str:
    """A source identifier, compared case-insensitively: ``t0001`` is ``T0001``."""
    return required_text(value, column, CODE_LENGTH).upper()


def title_key(title: str) -> str:
    """What makes two titles the same: case, punctuation and spacing do not count."""
    return " ".join(_NOT_ALNUM.sub(" ", title.casefold()).split())


def company_key(name: str) -> str:
    """What makes two company names the same: title_key without corporate suffixes."""
    words = title_key(name).split()
    while len(words) > 1 and words[-1] in CORPORATE_SUFFIXES:
        words.pop()
    return " ".join(words)


# --- dates, timestamps, amounts --------------------------------------------------------------

_DATE = re.compile(
    r"(?:(?P<y>\d{4})[-/.](?P<m>\d{1,2})[-/.](?P<d>\d{1,2})"
    r"|(?P<m2>\d{1,2})[-/.](?P<d2>\d{1,2})[-/.](?P<y2>\d{4}))"
)
_TIME = re.compile(
    r"(?P<H>\d{1,2}):(?P<M>\d{2})(?::(?P<S>\d{2})(?:\.(?P<f>\d{1,6}))?)?"
    r"\s*(?P<tz>Z|[+-]\d{2}(?::?\d{2})?)?",
    re.IGNORECASE,
)


def _date_parts(match: re.Match[str]) -> tuple[int, int, int]:
    if match["y"] is not None:
        return int(match["y"]), int(match["m"]), int(match["d"])
    # Year last: month first (03/02/2021 is 2 March), unless the value says otherwise
    # (31/12/2021 can only be day first).
    first, second, year = int(match["m2"]), int(match["d2"]), int(match["y2"])
    if first > 12 >= second:
        return year, second, first
    return year, first, second


@lru_cache(maxsize=8192)
def _calendar_date(text: str) -> date:
    # Cached: an export has many rows per day and few days (errors are not cached).
    match = _DATE.fullmatch(text)
    if match is None:
        raise ValueError(f"unknown date format {text!r}")
    return date(*_date_parts(match))


def parse_date(value: str) -> date:
    """A calendar date in any of the export's formats; ValueError when impossible/unknown."""
    return _calendar_date(value.strip())


@lru_cache(maxsize=256)
def _zone(text: str | None) -> timezone:
    if text is None or text.upper() == "Z":
        return UTC  # values without a zone are UTC
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    minutes = int(digits[:2]) * 60 + int(digits[2:4] or 0)
    return timezone(sign * timedelta(minutes=minutes))


def parse_timestamp(value: str) -> datetime:
    """A point in time in any of the export's formats (UTC when no zone); ValueError if not."""
    text = value.strip()
    date_part, _, time_part = text.replace("T", " ", 1).partition(" ")
    day = _calendar_date(date_part)
    if not time_part:
        return datetime(day.year, day.month, day.day, tzinfo=UTC)
    time_match = _TIME.fullmatch(time_part.strip())
    if time_match is None:
        raise ValueError(f"unknown time format {value!r}")
    fraction = time_match["f"] or "0"
    zone = _zone(time_match["tz"])
    moment = datetime(
        day.year,
        day.month,
        day.day,
        int(time_match["H"]),
        int(time_match["M"]),
        int(time_match["S"] or 0),
        int(fraction.ljust(6, "0")),
        tzinfo=zone,
    )
    return moment if zone is UTC else moment.astimezone(UTC)


def optional_date(value: str, column: str) -> tuple[date | None, Issue | None]:
    """A date that may be missing or impossible: stored as NULL and reported."""
    if not value.strip():
        return None, Issue("missing_date", f"{column} is empty")
    try:
        return parse_date(value), None
    except ValueError:
        return None, Issue("invalid_date", f"{column} {value.strip()!r} is not a valid date")


def required_timestamp(value: str, column: str) -> datetime:
    if not value.strip():
        raise Reject("missing_value", f"{column} is empty")
    try:
        return parse_timestamp(value)
    except ValueError:
        raise Reject(
            "invalid_timestamp", f"{column} {value.strip()!r} is not a valid timestamp"
        ) from None


def optional_timestamp(value: str, column: str) -> tuple[datetime | None, Issue | None]:
    if not value.strip():
        return None, None
    try:
        return parse_timestamp(value), None
    except ValueError:
        return None, Issue("invalid_date", f"{column} {value.strip()!r} is not a valid timestamp")


_AMOUNT = re.compile(r"[+-]?\d{1,10}(?:\.\d{1,2})?")


def amount(value: str, column: str) -> Decimal:
    """Money as numeric(12,2): digits with at most two decimals, nothing rounded silently."""
    text = value.strip()
    if _AMOUNT.fullmatch(text) is None:
        raise Reject("invalid_amount", f"{column} {text[:40]!r} is not an amount")
    return Decimal(text)


def currency(value: str) -> str:
    text = value.strip().upper()
    if len(text) != 3 or not text.isascii() or not text.isalpha():
        raise Reject("invalid_currency", f"currency {value.strip()[:40]!r} is not an ISO code")
    return text


def country(value: str) -> tuple[str | None, Issue | None]:
    text = value.strip().upper()
    if not text:
        return None, None
    if len(text) != 2 or not text.isascii() or not text.isalpha():
        return None, Issue("invalid_country", f"country {value.strip()[:40]!r} is not ISO 3166")
    return text, None


def small_positive_int(value: str, column: str) -> int:
    text = value.strip()
    if not text.isascii() or not text.isdigit() or not 0 < int(text) < 32768:
        raise Reject("invalid_number", f"{column} {text[:40]!r} is not a line number")
    return int(text)


def one_of(value: str, allowed: tuple[str, ...], column: str) -> str:
    text = value.strip().lower()
    if text not in allowed:
        raise Reject(
            "invalid_type", f"{column} {value.strip()[:40]!r} is not one of {sorted(allowed)}"
        )
    return text


def check_sign(kind: str, total: Decimal, column: str) -> None:
    """Sales are not negative; refunds and payouts are not positive."""
    if (kind == "sale" and total < 0) or (kind in ("refund", "payout") and total > 0):
        raise Reject("amount_sign", f"{column} {total} has the wrong sign for a {kind}")
