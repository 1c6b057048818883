"""Every page, run by Streamlit's AppTest (no browser): charts where there is data, a clear
empty state where there is none yet, never a traceback."""

from __future__ import annotations

import json
import re
import socket
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import psycopg2
import pytest
from streamlit import dataframe_util
from streamlit.testing.v1 import AppTest

pytestmark = pytest.mark.docker

PAGES = Path(__file__).resolve().parents[1] / "src" / "zetl_dashboard" / "screens"
PAGE_FILES = ["storefront.py", "players.py", "reconciliation.py", "health.py"]
# Charts each page draws once its marts hold data.
CHARTS = {"storefront.py": 4, "players.py": 2, "reconciliation.py": 1, "health.py": 2}


def run_page(name: str, url: str, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv("WAREHOUSE_DATABASE_URL", url)
    app = AppTest.from_file(str(PAGES / name), default_timeout=30)
    app.run()
    assert not app.exception, [e.message for e in app.exception]
    return app


def texts(app: AppTest) -> str:
    kinds = ("info", "warning", "caption", "success")
    return " ".join(str(getattr(e, "value", "")) for kind in kinds for e in app.get(kind))


@pytest.mark.parametrize("name", PAGE_FILES)
def test_a_fresh_warehouse_shows_waiting_states(
    name: str, warehouse_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = run_page(name, warehouse_url, monkeypatch)
    assert "Waiting for" in texts(app) or "No checkpoint has run yet" in texts(app)
    assert not app.get("vega_lite_chart")
    assert not app.get("error")


def test_health_says_what_is_missing(warehouse_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    shown = texts(run_page("health.py", warehouse_url, monkeypatch))
    assert "Waiting for the first replication" in shown
    assert "No checkpoint has run yet" in shown
    assert "No transform has run yet" in shown


@pytest.mark.parametrize("name", PAGE_FILES)
def test_empty_marts_are_an_empty_state_too(
    name: str, contract_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = run_page(name, contract_url, monkeypatch)
    assert not app.get("vega_lite_chart")
    assert texts(app)


@pytest.mark.parametrize("name", PAGE_FILES)
def test_filled_marts_draw_charts(
    name: str, filled_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = run_page(name, filled_url, monkeypatch)
    assert len(app.get("vega_lite_chart")) >= CHARTS[name]
    assert "Waiting for the first" not in texts(app)


def test_the_headline_compares_with_the_day_and_the_week_before(
    filled_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = run_page("storefront.py", filled_url, monkeypatch)
    metrics = {m.label: (m.value, m.proto.delta) for m in app.metric}
    # conftest: every day d days ago, 12 rows (3 publishers x 2 games x 2 platforms) of net
    # 70 + d and 3 sales each. The last day against the one before: 840 against 852.
    assert metrics["Net (USD)"] == ("840.00", "-12.00 (-1%)")
    assert metrics["Sales"] == ("36", "+0 (+0%)")
    # The last 7 days (d = 0..6) against the 7 before (d = 7..13).
    week = 12 * sum(70 + d for d in range(7))
    before = 12 * sum(70 + d for d in range(7, 14))
    assert metrics["Net (USD), 7 days"] == (f"{week:,.2f}", f"{week - before:+,.2f} (-9%)")
    assert metrics["Sales, 7 days"] == (f"{36 * 7:,}", "+0 (+0%)")
    # The currency is in the label, so the amount alone fits its column.
    assert {"Gross (USD)", "Refunded (USD)", "Gross (USD), 7 days"} <= set(metrics)
    assert all(" " not in value for value, _ in metrics.values())


def test_the_period_picked_bounds_the_figures(
    filled_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = run_page("storefront.py", filled_url, monkeypatch)
    today = date.today()
    picker = app.date_input(key="period")
    assert picker.value == (today - timedelta(days=29), today)  # 30 days to the latest
    picker.set_value((today - timedelta(days=12), today - timedelta(days=10))).run()
    assert not app.exception
    metrics = {m.label: m.value for m in app.metric}
    # The headline is of the period's last day, d = 10: net 12 x 80.
    assert metrics["Net (USD)"] == "960.00"
    publishers = app.dataframe[0].value
    assert list(publishers.columns) == ["Publisher", "Net (USD)", "Gross (USD)",
                                        "Refunded (USD)", "Sales"]  # fmt: skip
    # Three days of each publisher: 2 games x 2 platforms x 3 sales a day.
    assert list(publishers["Sales"]) == [36, 36, 36]
    net_days = chart_data(app, 0)["Day"].dt.date
    assert set(net_days) == {today - timedelta(days=d) for d in (10, 11, 12)}


def test_days_without_data_are_gaps_and_zeros_are_drawn(
    filled_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No sale at all 2 to 7 days ago (a gap); publisher 3 sold nothing 10 days ago (a zero).
    sql(
        filled_url,
        "DELETE FROM analytics.daily_publisher_revenue WHERE revenue_date"
        " BETWEEN current_date - 7 AND current_date - 2;"
        "DELETE FROM analytics.daily_publisher_revenue WHERE revenue_date = current_date - 10"
        " AND publisher_id = 3",
    )
    app = run_page("storefront.py", filled_url, monkeypatch)
    today = date.today()
    spec = chart_spec(app, 0)
    band, line = spec["layer"]
    assert band["mark"]["type"] == "rect"
    assert band["data"]["values"] == [
        {
            "from": f"{today - timedelta(days=7)}T00:00:00Z",
            "to": f"{today - timedelta(days=1)}T00:00:00Z",
            "gap": f"no data {today - timedelta(days=7)} to {today - timedelta(days=2)}",
        }
    ]
    assert line["encoding"]["detail"]["field"] == "run"
    data = chart_data(app, 0)
    data["day"] = data["Day"].dt.date
    assert not set(data["day"]) & {today - timedelta(days=d) for d in range(2, 8)}
    # The runs of days on either side of the gap are separate paths: no line crosses it.
    runs = data.groupby("run")["day"].agg(["min", "max"]).sort_values("min")
    assert [tuple(r) for r in runs.itertuples(index=False)] == [
        (today - timedelta(days=29), today - timedelta(days=8)),
        (today - timedelta(days=1), today),
    ]
    zero = data[(data["day"] == today - timedelta(days=10)) & (data["Publisher"] == "Publisher 3")]
    assert list(zero["Net (USD)"]) == [0]
    assert "days with no data" in texts(app)
    # A period ending in the gap: that day has no figure (a dash), not a zero.
    app.date_input(key="period").set_value((today - timedelta(days=29), today - timedelta(days=3)))
    app.run()
    metrics = {m.label: (m.value, m.proto.delta) for m in app.metric}
    assert metrics["Net (USD)"] == ("—", "")
    assert metrics["Net (USD), 7 days"][0] == f"{12 * (78 + 79):,.2f}"


def test_a_period_without_sales_says_so(filled_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    sql(
        filled_url,
        "DELETE FROM analytics.daily_publisher_revenue WHERE revenue_date >= current_date - 2",
    )
    app = run_page("storefront.py", filled_url, monkeypatch)
    today = date.today()
    app.date_input(key="period").set_value((today - timedelta(days=1), today)).run()
    assert not app.exception
    assert "No revenue in this period." in texts(app)
    assert len(app.get("vega_lite_chart")) == 1  # the top games (all time) only
    # The week before still had sales: the 7-day headline compares with it.
    metrics = {m.label: (m.value, m.proto.delta) for m in app.metric}
    assert metrics["Net (USD)"] == ("—", "")
    assert metrics["Net (USD), 7 days"][1].startswith("-")


def test_the_default_currency_has_the_most_revenue_or_is_the_setting(
    filled_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    sql(
        filled_url,
        "INSERT INTO analytics.daily_publisher_revenue (revenue_date, publisher_id,"
        " publisher_name, platform, currency, gross_amount, net_amount, refund_amount,"
        " sale_count) VALUES (current_date, 1, 'Publisher 1', 'PC', 'EUR', 10, 7, 0, 1),"
        " (current_date, 1, 'Publisher 1', 'PC', 'GBP', 1000000, 700000, 0, 1)",
    )
    app = run_page("storefront.py", filled_url, monkeypatch)
    picker = app.selectbox(key="currency")
    assert picker.options == ["EUR", "GBP", "USD"]  # a fixed order, whatever sells
    assert picker.value == "GBP"
    monkeypatch.setenv("ZETL_DASHBOARD_CURRENCY", "usd")
    assert run_page("storefront.py", filled_url, monkeypatch).selectbox(key="currency").value == (
        "USD"
    )


def test_a_publisher_drills_down_to_its_games(
    filled_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = run_page("storefront.py", filled_url, monkeypatch)
    app.selectbox(key="publisher").set_value("Publisher 2").run()
    assert not app.exception
    games = app.dataframe[1].value
    assert list(games.columns) == ["Game", "Platform", "Net (USD)", "Gross (USD)",
                                   "Refunded (USD)", "Sales"]  # fmt: skip
    assert sorted(games["Game"].unique()) == ["Game 1", "Game 2"]
    # 30 days, 3 sales a day, per game and platform.
    assert set(games["Sales"]) == {90}


@pytest.mark.parametrize("name", ["storefront.py", "players.py", "reconciliation.py"])
def test_every_business_page_says_how_fresh_its_data_is(
    name: str, filled_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = run_page(name, filled_url, monkeypatch)
    caption = next(c.value for c in app.caption if c.value.startswith("Data as of"))
    # conftest: a transform finished now; the latest lag sample is now, 0 s behind.
    assert re.search(r"marts built \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC \(\d+ s ago\)", caption)
    assert re.search(r"the replica holds the source up to \d{4}-\d\d-\d\d .* UTC", caption)


def test_a_fresh_warehouse_says_there_is_no_freshness_yet(
    contract_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    shown = texts(run_page("players.py", contract_url, monkeypatch))
    assert "Data as of: no transform has built the marts yet; no replication report yet." in shown


def test_tables_have_readable_labels_a_dash_and_a_csv(
    filled_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = run_page("players.py", filled_url, monkeypatch)
    top = app.dataframe[0]
    assert list(top.value.columns) == [
        "Player", "Largest deposit", "Second largest", "Third largest"
    ]  # fmt: skip
    assert top.proto.placeholder == "—"
    assert top.value["Second largest"].isna().any()  # CUST-2 has one deposit
    buttons = app.get("download_button")
    assert [b.proto.label for b in buttons] == ["Download CSV"]


def test_country_labels_read_across(filled_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    app = run_page("players.py", filled_url, monkeypatch)
    spec = chart_spec(app, 0)
    # Horizontal bars: countries down the y axis, their labels upright.
    assert spec["encoding"]["y"]["field"] == "Country"
    assert spec["encoding"]["x"]["field"] == "Deposits (EUR)"


def test_the_lag_line_breaks_where_the_replicator_did_not_report(
    filled_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    sql(
        filled_url,
        "DELETE FROM zetl.lag_history WHERE sampled_at BETWEEN now() - interval '5 minutes'"
        " AND now() - interval '2 minutes'",
    )
    app = run_page("health.py", filled_url, monkeypatch)
    assert chart_spec(app, 0)["encoding"]["detail"]["field"] == "run"
    assert set(chart_data(app, 0)["run"]) == {0, 1}
    assert "the replicator sent no report for over 30 s" in texts(app)


def test_health_shows_the_integration_as_svv_integration_says_now(
    filled_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = run_page("health.py", filled_url, monkeypatch)
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["State of zetl_replica"] == "CdcRefreshState"
    assert metrics["Lag now"] == "0.4 s"
    assert metrics["Tables replicated / failed"] == "2 / 0"
    assert not app.warning


def test_health_shows_a_silent_replicator_as_error_state_with_its_lag(
    filled_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What svv_integration says 95 s after the replicator's last report (its lag grows as it
    # is read; the replicator's own samples stopped with it).
    sql(filled_url, "UPDATE svv_integration SET state = 'ErrorState', current_lag = 95000")
    app = run_page("health.py", filled_url, monkeypatch)
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["State of zetl_replica"] == "ErrorState"
    assert metrics["Lag now"] == "1 min 35 s"
    assert "The replicator is stopped, or has not reported for over 30 s" in texts(app)


def chart_spec(app: AppTest, index: int) -> dict[str, Any]:
    spec: dict[str, Any] = json.loads(app.get("vega_lite_chart")[index].proto.spec)
    return spec


def chart_data(app: AppTest, index: int) -> pd.DataFrame:
    proto = app.get("vega_lite_chart")[index].proto
    arrow = proto.data.data or proto.datasets[0].data.data
    frame: pd.DataFrame = dataframe_util.convert_arrow_bytes_to_pandas_df(arrow)
    return frame


def sql(url: str, statements: str) -> None:
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute(statements)
    conn.close()


def test_a_passing_checkpoint_has_no_failure_arrow(
    filled_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = run_page("health.py", filled_url, monkeypatch)
    checks = {m.label: m for m in app.metric if m.label in CHECKPOINTS}
    # Each checkpoint's latest run passed; an earlier one failed (conftest).
    assert set(checks) == set(CHECKPOINTS)
    assert [(m.value, m.delta or None) for m in checks.values()] == [("pass", None)] * 3


CHECKPOINTS = ("source_integrity", "replica_parity", "marts")


def test_the_dashboard_sql_is_redshift_sql() -> None:
    """The dashboard reads through the Redshift front (and Redshift on AWS): none of its
    queries is one that the front, like Redshift, refuses."""
    from zetl_dashboard import queries
    from zetl_redshift.translate import translate

    for query in vars(queries).values():
        if isinstance(query, queries.Query):
            translate(query.sql.replace("%s", "$1"))  # raises Refused with the construct


def test_reconciliation_lists_only_flagged_rows(
    filled_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = run_page("reconciliation.py", filled_url, monkeypatch)
    assert {m.label: m.value for m in app.metric}["Flagged"] == "1"
    table = app.dataframe[0].value
    assert list(table["Transaction"]) == ["T2"]


def test_an_unreachable_warehouse_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"postgresql://zetl_dashboard:secret@127.0.0.1:{port}/dev?connect_timeout=2"
    app = run_page("storefront.py", url, monkeypatch)
    shown = texts(app)
    assert "Cannot read the warehouse right now" in shown
    assert "secret" not in shown
