"""The four pages. Each re-runs itself every ZETL_DASHBOARD_REFRESH_SECONDS (a fragment, so
the rest of the page keeps its widgets), and reads through a cache with the same TTL: many
browsers cost one query per TTL. How figures are drawn (labels, gaps, tables) is in
``zetl_dashboard.show``."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from typing import Any, Literal

import pandas as pd
import psycopg2
import streamlit as st
from streamlit.runtime.scriptrunner import add_script_run_ctx, get_script_run_ctx

from zetl import integration
from zetl.errors import ZetlError, first_line
from zetl.integration import ERROR_STATE
from zetl_dashboard import queries
from zetl_dashboard.data import (
    Result,
    default_currency,
    numeric,
    read,
    read_integrations,
    read_table_states,
    refresh_seconds,
    warehouse_url,
)
from zetl_dashboard.show import (
    MISSING,
    as_of,
    change,
    daily_chart,
    days_of,
    duration,
    label,
    period_sum,
    table,
)

REFRESH_SECONDS = refresh_seconds()
# What an absent relation means to someone looking at the page.
WAITING = {
    "analytics": "Waiting for the first transform: the marts are built once the replica is"
    " Synced (the transform service, `zetl transform`).",
    integration.INTEGRATION_VIEW: "Waiting for the first replication: the replicator has not"
    " started yet.",
    integration.TABLE_STATE_VIEW: "Waiting for the first replication: the replicator has"
    " not reported any table yet.",
    "zetl.lag_history": "No lag samples yet: the replicator records one every few seconds.",
    "zetl_dq.checkpoint_result": "No checkpoint has run yet (the dq service runs them after"
    " each transform).",
    "zetl_transform.run_log": "No transform has run yet.",
    "zetl_orchestration.dag_run": "No Airflow run recorded (the orchestration is optional).",
}


@st.cache_data(ttl=REFRESH_SECONDS, show_spinner=False)
def fetch(url: str, query: queries.Query, params: tuple[Any, ...] = ()) -> Result:
    return read(url, query.relations, query.sql, params)


@st.cache_data(ttl=REFRESH_SECONDS, show_spinner=False)
def fetch_table_states(url: str) -> Result:
    return read_table_states(url)


@st.cache_data(ttl=REFRESH_SECONDS, show_spinner=False)
def fetch_integrations(url: str) -> Result:
    return read_integrations(url)


def fetch_all(url: str, batch: list[tuple[queries.Query, tuple[Any, ...]]]) -> list[Result]:
    """Several queries at once, each on its own connection: a page waits for the slowest
    scan, not for their sum."""
    context = get_script_run_ctx()

    def one(item: tuple[queries.Query, tuple[Any, ...]]) -> Result:
        add_script_run_ctx(threading.current_thread(), context)
        return fetch(url, *item)

    with ThreadPoolExecutor(max_workers=len(batch)) as pool:
        return list(pool.map(one, batch))


def empty_state(result: Result, nothing: str) -> bool:
    """Show why there is nothing to draw; True when there is nothing."""
    if result.missing is not None:
        key = result.missing if result.missing in WAITING else result.missing.split(".")[0]
        st.info(WAITING.get(key, f"Waiting for {result.missing}."))
        return True
    if result.frame.empty:
        st.info(nothing)
        return True
    return False


def page(title: str, body: Callable[[str], None], *, business: bool = True) -> None:
    """A page: title, then its body refreshed in place; an unreachable warehouse is one line.
    A business page first says how fresh its figures are."""
    st.title(title)

    @st.fragment(run_every=REFRESH_SECONDS)
    def refreshed() -> None:
        try:
            url = warehouse_url()
            if business:
                freshness(url)
            body(url)
        except (ZetlError, psycopg2.Error) as exc:
            st.warning(f"Cannot read the warehouse right now: {first_line(exc)}")
        st.caption(f"Refreshes every {REFRESH_SECONDS} s.")

    refreshed()


def freshness(url: str) -> None:
    """Says how fresh the page is ("Data as of"): when the marts were last built, and up to
    when the replica they read holds the source."""
    built, applied = fetch_all(url, [(queries.MARTS_BUILT, ()), (queries.REPLICA_APPLIED, ())])
    marts = None if built.empty else built.frame["built_at"].iloc[0]
    replica = None
    if not applied.empty:
        sample = applied.frame.iloc[0]
        replica = sample["sampled_at"] - timedelta(seconds=float(sample["lag_seconds"]))
    built_at, applied_at = as_of(marts), as_of(replica)
    st.caption(
        "Data as of: "
        + (f"marts built {built_at}" if built_at else "no transform has built the marts yet")
        + "; "
        + (f"the replica holds the source up to {applied_at}" if applied_at else
           "no replication report yet")
        + "."
    )  # fmt: skip


def pick_currency(currencies: pd.DataFrame, key: str) -> str:
    """The currency picker: options in a fixed order, opening on ZETL_DASHBOARD_CURRENCY when
    the data has it, else on the currency with the most revenue (first in ``currencies``)."""
    options = sorted(str(c) for c in currencies["currency"])
    preferred = default_currency()
    first = preferred if preferred in options else str(currencies["currency"].iloc[0])
    currency = str(
        st.selectbox("Currency", options, index=options.index(first), key=key, bind="query-params")
    )
    st.session_state["currency_label"] = currency
    return currency


def pick_period(earliest: date, latest: date, key: str) -> tuple[date, date]:
    """The date-range picker: the 30 days to the latest day with data unless changed. While
    only a start is picked, the period is that one day."""
    today = date.today()
    chosen = st.date_input(
        "Period",
        value=(max(earliest, latest - timedelta(days=29)), latest),
        min_value=earliest,
        max_value=max(latest, today),
        key=key,
        bind="query-params",  # a period is a link: ?period=2025-01-01&period=2025-01-14
    )
    picked = [d for d in (chosen if isinstance(chosen, tuple | list) else (chosen,)) if d]
    if not picked:
        return max(earliest, latest - timedelta(days=29)), latest
    return picked[0], picked[-1]


def storefront(url: str) -> None:
    currencies = fetch(url, queries.STOREFRONT_CURRENCIES)
    if empty_state(currencies, "No transactions yet."):
        return
    picker, dates = st.columns(2)
    with picker:
        currency = pick_currency(currencies.frame, "currency")
    bounds = currencies.frame[currencies.frame["currency"] == currency].iloc[0]
    with dates:
        start, end = pick_period(bounds["earliest"], bounds["latest"], "period")
    # The headline compares with the day and the week before the period's end, which may lie
    # before its start: the window read covers both.
    first = min(start, end - timedelta(days=13))
    window, days, top = fetch_all(
        url,
        [
            (queries.STOREFRONT_WINDOW, (currency, first, end)),
            (queries.SALE_DAYS, (first, end)),
            (queries.TOP_GAMES, (currency,)),
        ],
    )
    frame = numeric(window.frame, "net_amount", "gross_amount", "refund_amount", "sale_count")
    observed = days_of(days.frame)
    headline(frame, observed, end)
    # The window reaches back for the headline: the charts and tables show the period only.
    in_period = frame[frame["revenue_date"] >= start] if not frame.empty else frame
    observed = [d for d in observed if d >= start]

    st.subheader("Net revenue by publisher")
    if not empty_state(Result(in_period, window.missing), "No revenue in this period."):
        daily_chart(in_period, "revenue_date", "net_amount", "publisher_name", observed, start, end)
        left, right = st.columns(2)
        with left:
            st.subheader("Gross revenue by platform")
            daily_chart(
                in_period, "revenue_date", "gross_amount", "platform", observed, start, end,
                mark="bar",
            )  # fmt: skip
        with right:
            st.subheader("Refunds")
            daily_chart(in_period, "revenue_date", "refund_amount", None, observed, start, end)
        publishers(url, in_period, currency, start, end)

    st.subheader("Top games by net revenue (all time)")
    if not empty_state(top, "No game sold yet."):
        shown = labelled(numeric(top.frame, "net_amount"))
        net = label("net_amount")
        st.bar_chart(shown, x=label("game_title"), y=net, horizontal=True, sort=f"-{net}")


def headline(frame: pd.DataFrame, observed: list[date], end: date) -> None:
    """The period's last day against the day before, its last 7 days against the 7 before."""
    figures = ("gross_amount", "net_amount", "refund_amount", "sale_count")
    rows = (
        ("On", 1, "the day before"),
        ("7 days to", 7, "the 7 days before"),
    )
    for title, span, before in rows:
        now = period_sum(frame, "revenue_date", figures, end - timedelta(days=span - 1), end)
        then = period_sum(
            frame, "revenue_date", figures, end - timedelta(days=2 * span - 1),
            end - timedelta(days=span),
        )  # fmt: skip
        # A span without any data has no figure (a dash), not a zero.
        has_data = any(end - timedelta(days=span - 1) <= d <= end for d in observed)
        had_data = any(end - timedelta(days=2 * span - 1) <= d <= end - timedelta(days=span)
                       for d in observed)  # fmt: skip
        st.markdown(f"**{title} {end:%Y-%m-%d}**, against {before}")
        cols = st.columns(4)
        suffix = "" if span == 1 else f", {span} days"
        for col, figure in zip(cols, figures, strict=True):
            money = figure != "sale_count"
            name = label(figure) + suffix
            value = f"{now[figure]:,.2f}" if money else f"{int(now[figure]):,}"
            if not has_data:
                value = MISSING
            delta = change(now[figure], then[figure], money) if had_data and has_data else None
            # More refunds are worse; no change is neither (no arrow, no colour).
            same = now[figure] == then[figure]
            color: Literal["normal", "inverse", "off"] = (
                "off" if same else "inverse" if figure == "refund_amount" else "normal"
            )
            col.metric(
                name, value, delta, delta_color=color, delta_arrow="off" if same else "auto",
                delta_description=None if delta else f"no data {before}" if has_data else "no data",
            )  # fmt: skip


def publishers(url: str, frame: pd.DataFrame, currency: str, start: date, end: date) -> None:
    """The period's publishers, and a drill-down to one publisher's games."""
    st.subheader("Publishers in this period")
    totals = (
        frame.groupby(["publisher_id", "publisher_name"], as_index=False)
        .agg(
            net_amount=("net_amount", "sum"),
            gross_amount=("gross_amount", "sum"),
            refund_amount=("refund_amount", "sum"),
            sale_count=("sale_count", "sum"),
        )
        .sort_values(["net_amount", "publisher_name"], ascending=[False, True])
        .astype({"sale_count": "int64"})
    )
    money = ("net_amount", "gross_amount", "refund_amount")
    table(totals.drop(columns="publisher_id"), "publishers", money=money)
    # One option per publisher: two publishers of one name are told apart by their id.
    twice = totals["publisher_name"].duplicated(keep=False)
    names = {
        f"{name} (id {pid})" if again else str(name): pid
        for name, pid, again in zip(
            totals["publisher_name"], totals["publisher_id"], twice, strict=True
        )
    }
    chosen = st.selectbox(
        "Drill down into a publisher's games", list(names), key="publisher", bind="query-params"
    )
    games = fetch(url, queries.PUBLISHER_GAMES, (currency, int(names[chosen]), start, end))
    if not empty_state(games, f"{chosen} sold nothing in this period."):
        money = ("net_amount", "gross_amount", "refund_amount")
        table(numeric(games.frame, *money), f"games-of-{chosen}", money=money)


def players(url: str) -> None:
    currencies = fetch(url, queries.PLAYER_CURRENCIES)
    if empty_state(currencies, "No transactions yet."):
        return
    picker, dates = st.columns(2)
    with picker:
        currency = pick_currency(currencies.frame, "currency")
    bounds = currencies.frame[currencies.frame["currency"] == currency].iloc[0]
    with dates:
        start, end = pick_period(bounds["earliest"], bounds["latest"], "period")
    st.subheader("Deposits of Discord-referred, KYC-approved players, by country (all time)")
    result = fetch(url, queries.DISCORD_DEPOSITS, (currency,))
    if not empty_state(result, "No deposit from a Discord-referred, approved player yet."):
        frame = labelled(numeric(result.frame, "deposit_total"))
        total = label("deposit_total")
        # Bars along, countries down: their labels read across, never turned on end.
        st.bar_chart(frame, x=label("country_code"), y=total, sort=f"-{total}", horizontal=True)

    st.subheader("Daily deposits and withdrawals")
    wallet, days = fetch_all(
        url, [(queries.DAILY_WALLET, (currency, start, end)), (queries.WALLET_DAYS, (start, end))]
    )
    if not empty_state(wallet, "No wallet activity in this period."):
        frame = numeric(wallet.frame, "deposits", "withdrawals").melt(
            id_vars="activity_date", var_name="flow", value_name="amount"
        )
        frame["flow"] = frame["flow"].map({"deposits": "Deposits", "withdrawals": "Withdrawals"})
        daily_chart(frame, "activity_date", "amount", "flow", days_of(days.frame), start, end)

    st.subheader("Top depositors (their three largest deposits, all time)")
    result = fetch(url, queries.TOP_DEPOSITORS, (currency,))
    if not empty_state(result, "No deposit yet."):
        money = ("top_deposit_1", "top_deposit_2", "top_deposit_3")
        table(numeric(result.frame, *money), "top-depositors", money=money)


def reconciliation(url: str) -> None:
    summary = fetch(url, queries.RECONCILIATION_SUMMARY)
    if empty_state(summary, "No transactions yet."):
        return
    row = summary.frame.iloc[0]
    cols = st.columns(3)
    cols[0].metric("Transactions", f"{int(row['transactions']):,}")
    cols[1].metric("Flagged", f"{int(row['flagged']):,}")
    cols[2].metric("Flagged difference", f"{float(row['flagged_difference']):,.2f}")
    if int(row["flagged"]) == 0:
        st.success("Every transaction's lines add up to its total.")
        return
    st.subheader("Flagged transactions per day")
    by_day = fetch(url, queries.FLAGGED_BY_DAY)
    if not empty_state(by_day, "Nothing flagged."):
        frame = by_day.frame.rename(
            columns={"day": "Day", "flagged": "Flagged", "transaction_type": "Type"}
        )
        st.bar_chart(frame, x="Day", y="Flagged", color="Type")
    st.subheader("Latest flagged transactions (header total ≠ sum of lines)")
    flagged = fetch(url, queries.FLAGGED)
    if not empty_state(flagged, "Nothing flagged."):
        money = ("header_total", "lines_total", "difference")
        table(numeric(flagged.frame, *money), "flagged-transactions", money=money)


def health(url: str) -> None:
    st.subheader("Replication")
    integrations = fetch_integrations(url)
    if not empty_state(integrations, "Waiting for the first replication: no integration yet."):
        for _, row in integrations.frame.iterrows():
            integration_now(row)

    st.subheader("Replication, per table")
    states = fetch_table_states(url)
    if not empty_state(states, "Waiting for the first replication: no table reported yet."):
        counts = states.frame["table_state"].value_counts()
        cols = st.columns(max(1, len(counts)))
        for col, (state, count) in zip(cols, counts.items(), strict=False):
            col.metric(str(state), int(count))
        table(states.frame, "replication-tables")

    st.subheader("Replication lag, last hour, as the replicator reported it")
    lag = fetch(url, queries.LAG, (60,))
    if not empty_state(lag, "No lag sample in the last hour."):
        frame = numeric(lag.frame, "lag_seconds")
        lag_chart(frame)

    st.subheader("Data quality")
    last = fetch(url, queries.CHECKPOINT_LAST)
    if not empty_state(last, "No checkpoint has run yet."):
        cols = st.columns(max(1, len(last.frame)))
        for col, (_, check) in zip(cols, last.frame.iterrows(), strict=False):
            verdict = "pass" if check["success"] else "FAIL"
            failed = int(check["failed"] or 0)
            # A delta always gets an arrow (up for "0 failed", red when inverse): only failures
            # get one, red and up, as more failures are worse.
            delta = f"{failed} failed" if failed else None
            col.metric(str(check["checkpoint"]), verdict, delta, delta_color="inverse")
        history = fetch(url, queries.CHECKPOINT_HISTORY).frame
        if not history.empty:
            history = history.assign(Runs=1).rename(
                columns={"finished_at": "Finished at", "outcome": "Outcome"}
            )
            st.bar_chart(history, x="Finished at", y="Runs", color="Outcome", stack=True)

    left, right = st.columns(2)
    with left:
        st.subheader("Last transform")
        run = fetch(url, queries.TRANSFORM_LAST)
        if not empty_state(run, "No transform has run yet."):
            table(run.frame, "last-transform", transposed=True)
    with right:
        st.subheader("Last Airflow runs")
        dag = fetch(url, queries.DAG_RUN_LAST)
        if dag.missing is None and not dag.frame.empty:
            table(dag.frame, "airflow-runs")
        else:
            st.caption(WAITING["zetl_orchestration.dag_run"])


def integration_now(row: pd.Series) -> None:
    """One integration as svv_integration says it is now: its state, and its lag measured at
    this read, which goes on growing while the replicator is silent (the chart below holds only
    what the replicator reported)."""
    state, lag = str(row["state"]), row["lag_seconds"]
    left, middle, right = st.columns(3)
    left.metric(f"State of {row['target_database']}", state)
    middle.metric("Lag now", MISSING if pd.isna(lag) else duration(float(lag)))
    replicated, failed = (
        int(row[c] or 0) for c in ("total_tables_replicated", "total_tables_failed")
    )
    right.metric("Tables replicated / failed", f"{replicated} / {failed}")
    if state == ERROR_STATE:
        st.warning(
            f"{row['target_database']}: {ERROR_STATE}. The replicator is stopped, or has not"
            " reported for over 30 s: the replica holds the source as of its last report, and"
            " the lag grows until it is back. `zetl status` says more."
        )


# Lag samples further apart than this mean the replicator did not report: the line breaks.
LAG_GAP = timedelta(seconds=30)


def lag_chart(frame: pd.DataFrame) -> None:
    sampled = pd.to_datetime(frame["sampled_at"], utc=True)
    segment = (sampled.diff() > LAG_GAP).cumsum()
    data = pd.DataFrame({"Sampled at": sampled, "Lag (s)": frame["lag_seconds"], "run": segment})
    spec = {
        "mark": {"type": "line", "point": {"size": 12}},
        "encoding": {
            "x": {"field": "Sampled at", "type": "temporal", "scale": {"type": "utc"}},
            "y": {"field": "Lag (s)", "type": "quantitative"},
            "detail": {"field": "run", "type": "nominal"},
        },
    }
    st.vega_lite_chart(data, spec)
    if int(segment.iloc[-1]):
        st.caption("Breaks in the line: the replicator sent no report for over 30 s.")


def labelled(frame: pd.DataFrame) -> pd.DataFrame:
    """Column names as the charts' axes and legends show them (amounts carry the currency)."""
    return frame.rename(columns=label)
