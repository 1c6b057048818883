"""The four pages. Each re-runs itself every ZETL_DASHBOARD_REFRESH_SECONDS (a fragment, so
the rest of the page keeps its widgets), and reads through a cache with the same TTL: many
browsers cost one query per TTL."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pandas as pd
import psycopg2
import streamlit as st
from streamlit.runtime.scriptrunner import add_script_run_ctx, get_script_run_ctx

from zetl import integration
from zetl.errors import ZetlError, first_line
from zetl_dashboard import queries
from zetl_dashboard.data import (
    Result,
    numeric,
    read,
    read_table_states,
    refresh_seconds,
    warehouse_url,
)

REFRESH_SECONDS = refresh_seconds()
# What an absent relation means to someone looking at the page.
WAITING = {
    "analytics": "Waiting for the first transform: the marts are built once the replica is"
    " Synced (the transform service, `zetl transform`).",
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


def page(title: str, body: Callable[[str], None]) -> None:
    """A page: title, then its body refreshed in place; an unreachable warehouse is one line."""
    st.title(title)

    @st.fragment(run_every=REFRESH_SECONDS)
    def refreshed() -> None:
        try:
            body(warehouse_url())
        except (ZetlError, psycopg2.Error) as exc:
            st.warning(f"Cannot read the warehouse right now: {first_line(exc)}")
        st.caption(f"Refreshes every {REFRESH_SECONDS} s.")

    refreshed()


def pick_currency(url: str, query: queries.Query, key: str) -> str | None:
    result = fetch(url, query)
    if empty_state(result, "No transactions yet."):
        return None
    options = [str(c) for c in result.frame["currency"]]
    currency = str(st.selectbox("Currency", options, key=key))
    st.session_state["currency_label"] = currency
    return currency


def storefront(url: str) -> None:
    totals = fetch(url, queries.STOREFRONT_TOTALS)
    if empty_state(totals, "No transactions yet."):
        return
    frame = numeric(totals.frame, "gross", "net", "refunds", "sales")
    currency = str(st.selectbox("Currency", [str(c) for c in frame["currency"]], key="sf_cur"))
    st.session_state["currency_label"] = currency
    days = int(st.slider("Days", 7, 365, 90, key="storefront_days"))
    row = frame[frame["currency"] == currency].iloc[0]
    # Two by two, the currency in the label: four amounts side by side, each with its
    # currency, were wider than their columns and shown cut off ("109,427.95 …").
    upper, lower = st.columns(2), st.columns(2)
    upper[0].metric(f"Gross ({currency})", f"{row['gross']:,.2f}")
    upper[1].metric(f"Net ({currency})", f"{row['net']:,.2f}")
    lower[0].metric(f"Refunded ({currency})", f"{row['refunds']:,.2f}")
    lower[1].metric("Sales", f"{int(row['sales']):,}")
    since = row["latest"] - timedelta(days=days)
    window, top = fetch_all(
        url, [(queries.STOREFRONT_WINDOW, (currency, since)), (queries.TOP_GAMES, (currency,))]
    )

    st.subheader("Net revenue by publisher")
    if not empty_state(window, "No revenue in this period."):
        days_frame = numeric(window.frame, "net_amount", "gross_amount", "refund_amount")
        by_publisher = days_frame.groupby(["revenue_date", "publisher_name"], as_index=False).agg(
            net_amount=("net_amount", "sum")
        )
        st.line_chart(labelled(by_publisher), x="Day", y=f"Net ({currency})", color="Publisher")
        left, right = st.columns(2)
        with left:
            st.subheader("Gross revenue by platform")
            by_platform = days_frame.groupby(["revenue_date", "platform"], as_index=False).agg(
                gross_amount=("gross_amount", "sum")
            )
            st.bar_chart(labelled(by_platform), x="Day", y=f"Gross ({currency})", color="Platform")
        with right:
            st.subheader("Refunds")
            refunds = days_frame.groupby("revenue_date", as_index=False).agg(
                refund_amount=("refund_amount", "sum")
            )
            st.area_chart(labelled(refunds), x="Day", y=f"Refunded ({currency})")

    st.subheader("Top games by net revenue")
    if not empty_state(top, "No game sold yet."):
        frame = labelled(numeric(top.frame, "net_amount"))
        net = f"Net ({currency})"
        st.bar_chart(frame, x="Game", y=net, horizontal=True, sort=f"-{net}")


def players(url: str) -> None:
    currency = pick_currency(url, queries.PLAYER_CURRENCIES, "players_currency")
    if currency is None:
        return
    st.subheader("Deposits of Discord-referred, KYC-approved players, by country")
    result = fetch(url, queries.DISCORD_DEPOSITS, (currency,))
    if not empty_state(result, "No deposit from a Discord-referred, approved player yet."):
        frame = labelled(numeric(result.frame, "deposit_total"))
        total = f"Deposits ({currency})"
        st.bar_chart(frame, x="Country", y=total, sort=f"-{total}")

    st.subheader("Daily deposits and withdrawals")
    days = int(st.slider("Days", 7, 365, 90, key="players_days"))
    result = fetch(url, queries.DAILY_WALLET, (currency, days))
    if not empty_state(result, "No wallet activity in this period."):
        frame = numeric(result.frame, "deposits", "withdrawals")
        frame = frame.rename(columns={"activity_date": "Day", "deposits": "Deposits",
                                      "withdrawals": "Withdrawals"})  # fmt: skip
        st.line_chart(frame, x="Day", y=["Deposits", "Withdrawals"])

    st.subheader("Top depositors (their three largest deposits)")
    result = fetch(url, queries.TOP_DEPOSITORS, (currency,))
    if not empty_state(result, "No deposit yet."):
        st.dataframe(result.frame, hide_index=True, use_container_width=True)


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
        st.dataframe(flagged.frame, hide_index=True, use_container_width=True)


def health(url: str) -> None:
    st.subheader("Replication, per table")
    states = fetch_table_states(url)
    if not empty_state(states, "Waiting for the first replication: no table reported yet."):
        counts = states.frame["table_state"].value_counts()
        cols = st.columns(max(1, len(counts)))
        for col, (state, count) in zip(cols, counts.items(), strict=False):
            col.metric(str(state), int(count))
        st.dataframe(states.frame, hide_index=True, use_container_width=True)

    st.subheader("Replication lag, last hour")
    lag = fetch(url, queries.LAG, (60,))
    if not empty_state(lag, "No lag sample in the last hour."):
        frame = numeric(lag.frame, "lag_seconds").rename(
            columns={"sampled_at": "Sampled at", "lag_seconds": "Lag (s)"}
        )
        st.line_chart(frame, x="Sampled at", y="Lag (s)")

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
            st.dataframe(_transposed(run.frame), use_container_width=True)
    with right:
        st.subheader("Last Airflow runs")
        dag = fetch(url, queries.DAG_RUN_LAST)
        if dag.missing is None and not dag.frame.empty:
            st.dataframe(dag.frame, hide_index=True, use_container_width=True)
        else:
            st.caption(WAITING["zetl_orchestration.dag_run"])


def labelled(frame: pd.DataFrame) -> pd.DataFrame:
    """Column names as the charts' axes and legends show them (amounts carry the currency)."""
    currency = st.session_state.get("currency_label", "")
    names = {
        "revenue_date": "Day", "publisher_name": "Publisher", "platform": "Platform",
        "game_title": "Game", "country_code": "Country",
        "net_amount": f"Net ({currency})", "gross_amount": f"Gross ({currency})",
        "refund_amount": f"Refunded ({currency})", "deposit_total": f"Deposits ({currency})",
    }  # fmt: skip
    return frame.rename(columns=names)


def _transposed(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.astype(str).T.rename(columns={0: "value"})
