"""How the pages show what they read: labels people read, a dash for a missing value, tables
with their CSV, daily charts that show gaps as gaps, and how fresh the data is.

Gaps: a day on which the source recorded anything (any sale, in any currency, for the
Storefront) is a day with data; on it, a series with no row (a publisher that sold nothing)
is a true zero and is drawn as one. A day without any data is not a zero: the line breaks
there and a grey band marks it, so an outage never reads as a slump.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pandas as pd
import streamlit as st

MISSING = "—"
# Column names as people read them; amounts carry the currency picked (``currency_label``).
LABELS = {
    "revenue_date": "Day", "activity_date": "Day", "day": "Day",
    "publisher_name": "Publisher", "platform": "Platform", "game_title": "Game",
    "country_code": "Country", "currency": "Currency", "sale_count": "Sales", "sales": "Sales",
    "customer_code": "Player", "top_deposit_1": "Largest deposit",
    "top_deposit_2": "Second largest", "top_deposit_3": "Third largest",
    "transaction_code": "Transaction", "transaction_type": "Type", "occurred_at": "Occurred at",
    "header_total": "Header total", "lines_total": "Sum of lines", "difference": "Difference",
    "line_count": "Lines", "schema_name": "Schema", "table_name": "Table",
    "table_state": "State", "reason": "Reason", "table_rows": "Rows",
    "last_updated_timestamp": "Last updated (UTC)", "started_at": "Started at",
    "finished_at": "Finished at", "success": "Succeeded", "command": "Command",
    "models_ok": "Models built", "models_error": "Models failed",
    "tests_failed": "Tests failed", "message": "Message", "dag_id": "DAG", "run_id": "Run",
    "outcome": "Outcome", "deposit_count": "Deposits", "player_count": "Players",
}  # fmt: skip
AMOUNTS = {
    "net_amount": "Net", "gross_amount": "Gross", "refund_amount": "Refunded",
    "deposit_total": "Deposits", "amount": "Amount",
}  # fmt: skip


def label(column: str) -> str:
    if column in AMOUNTS:
        return f"{AMOUNTS[column]} ({st.session_state.get('currency_label', '')})"
    return LABELS.get(column, column.replace("_", " ").capitalize())


def _cell(value: Any) -> str | None:
    """One value of a transposed (mixed) column as text; a missing one stays missing."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    if isinstance(value, datetime):
        return f"{value.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"
    return str(value)


def table(
    frame: pd.DataFrame, name: str, *, money: Sequence[str] = (), transposed: bool = False
) -> None:
    """A table with readable column names, amounts (``money``) with two decimals and a dash
    for missing values, and its CSV (the same columns; a missing value is an empty field)."""
    shown = frame.rename(columns=label)
    if transposed:  # one record, a field per line
        shown = pd.DataFrame({"Value": [_cell(v) for v in shown.iloc[0]]}, index=shown.columns)
    amounts = {label(c): st.column_config.NumberColumn(format="accounting") for c in money}
    st.dataframe(shown, hide_index=not transposed, placeholder=MISSING, column_config=amounts)
    st.download_button(
        "Download CSV",
        shown.to_csv(index=transposed, float_format="%.2f").encode(),
        file_name=f"{re.sub(r'[^a-z0-9]+', '-', name.lower()).strip('-')}.csv",
        mime="text/csv",
        key=f"csv-{name}",
        on_click="ignore",
    )


def as_of(moment: Any) -> str | None:
    """A moment as "2026-12-07 09:15:02 UTC (3 min ago)"; None for no moment."""
    if moment is None or pd.isna(moment):
        return None
    when = pd.Timestamp(moment)
    when = when.tz_localize(UTC) if when.tzinfo is None else when.tz_convert(UTC)
    ago = max(0.0, (datetime.now(UTC) - when.to_pydatetime()).total_seconds())
    if ago < 120:
        age = f"{ago:.0f} s ago"
    elif ago < 7200:
        age = f"{ago / 60:.0f} min ago"
    else:
        age = f"{ago / 3600:.1f} h ago"
    return f"{when:%Y-%m-%d %H:%M:%S} UTC ({age})"


def duration(seconds: float) -> str:
    """A lag as people read it: "0.4 s", "42 s", "3 min 5 s", "2 h 10 min"."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"


def change(now: float, before: float, money: bool) -> str:
    """A delta as "+12.50 (+4%)"; without the percentage when there was nothing before."""
    diff = now - before
    text = f"{diff:+,.2f}" if money else f"{int(diff):+,}"
    return f"{text} ({diff / before:+.0%})" if before else text


def days_of(frame: pd.DataFrame) -> list[date]:
    return sorted(pd.to_datetime(frame["day"]).dt.date) if not frame.empty else []


def period_sum(
    frame: pd.DataFrame, day: str, figures: Sequence[str], first: date, last: date
) -> pd.Series:
    if frame.empty:
        return pd.Series(0.0, index=list(figures))
    rows = frame[(frame[day] >= first) & (frame[day] <= last)]
    return rows[list(figures)].sum()


def _runs(days: Iterable[date]) -> list[tuple[date, date]]:
    """Consecutive days as (first, last) runs."""
    runs: list[tuple[date, date]] = []
    for day in sorted(days):
        if runs and day == runs[-1][1] + timedelta(days=1):
            runs[-1] = (runs[-1][0], day)
        else:
            runs.append((day, day))
    return runs


def _midnight(day: date) -> str:
    return f"{day:%Y-%m-%d}T00:00:00Z"


def daily_chart(
    frame: pd.DataFrame,
    day: str,
    value: str,
    series: str | None,
    observed: Sequence[date],
    start: date,
    end: date,
    *,
    mark: str = "line",
) -> None:
    """A per-day chart over [start, end]: zeros on days with data, breaks (and a grey band)
    on days without."""
    # A day with rows has data, whatever the list of days read beside it says.
    seen = sorted(d for d in {*observed, *frame[day]} if start <= d <= end)
    keys = [series] if series else []
    summed = frame.groupby([day, *keys], as_index=False)[value].sum()
    grid = (
        pd.MultiIndex.from_product([seen, sorted(summed[series].unique())], names=[day, series])
        if series
        else pd.Index(seen, name=day)
    )
    filled = summed.set_index([day, *keys]).reindex(grid, fill_value=0).reset_index()
    run_of = {d: n for n, (first, last) in enumerate(_runs(seen)) for d in _days(first, last)}
    filled["run"] = filled[day].map(run_of)
    filled[day] = pd.to_datetime(filled[day])
    names = {day: "Day", value: label(value)} | ({series: label(series)} if series else {})
    data = filled.rename(columns=names)
    # The axis spans the whole period asked, so missing days at either end show too.
    domain = [_midnight(start), _midnight(end + timedelta(days=1))]
    x: dict[str, Any] = {"field": "Day", "type": "temporal", "title": "Day",
                         "scale": {"type": "utc", "domain": domain}}  # fmt: skip
    y = {"field": label(value), "type": "quantitative"}
    encoding: dict[str, Any] = {"x": x, "y": y}
    if series:
        encoding["color"] = {"field": label(series), "type": "nominal"}
    tooltip = [{"field": "Day", "type": "temporal", "format": "%Y-%m-%d"}, y]
    if mark == "line":
        # One path per run of days with data: a line never crosses a day without.
        layer: dict[str, Any] = {
            "mark": {"type": "line", "point": True},
            "encoding": {**encoding, "detail": {"field": "run", "type": "nominal"}},
        }
    else:
        x["timeUnit"] = "utcyearmonthdate"
        layer = {"mark": {"type": "bar"}, "encoding": encoding}
    layer["encoding"]["tooltip"] = tooltip + ([encoding["color"]] if series else [])
    with_data = set(seen)
    gaps = _runs(d for d in _days(start, end) if d not in with_data)
    layers: list[dict[str, Any]] = []
    if gaps:
        bands = [{"from": _midnight(a), "to": _midnight(b + timedelta(days=1)), "gap": _gap(a, b)}
                 for a, b in gaps]  # fmt: skip
        layers.append(
            {
                "data": {"values": bands},
                "mark": {"type": "rect", "color": "#d9d9d9", "opacity": 0.5},
                "encoding": {
                    "x": {"field": "from", "type": "temporal", "title": "Day"},
                    "x2": {"field": "to"},
                    "tooltip": [{"field": "gap", "type": "nominal", "title": "Gap"}],
                },
            }
        )
    layers.append(layer)
    st.vega_lite_chart(data, {"layer": layers})
    if gaps:
        st.caption("Grey: days with no data in the source, drawn as gaps, not as zeros.")


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def _gap(first: date, last: date) -> str:
    return f"no data {first:%Y-%m-%d}" + (f" to {last:%Y-%m-%d}" if last != first else "")
