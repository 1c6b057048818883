"""Every page, run by Streamlit's AppTest (no browser): charts where there is data, a clear
empty state where there is none yet, never a traceback."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

pytestmark = pytest.mark.docker

PAGES = Path(__file__).resolve().parents[1] / "src" / "zetl_dashboard" / "pages"
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


def test_storefront_figures_come_from_the_mart(
    filled_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = run_page("storefront.py", filled_url, monkeypatch)
    metrics = {m.label: m.value for m in app.metric}
    # 41 days x 3 publishers x 2 games x 2 platforms, 3 sales each.
    assert metrics["Sales"] == f"{41 * 3 * 2 * 2 * 3:,}"
    assert app.selectbox[0].options == ["USD"]
    # The currency is in the label, so the amount alone fits its column.
    assert {"Gross (USD)", "Net (USD)", "Refunded (USD)"} <= set(metrics)
    assert all(" " not in value for value in metrics.values())


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
    assert list(table["transaction_code"]) == ["T2"]


def test_an_unreachable_warehouse_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"postgresql://zetl_dashboard:secret@127.0.0.1:{port}/dev?connect_timeout=2"
    app = run_page("storefront.py", url, monkeypatch)
    shown = texts(app)
    assert "Cannot read the warehouse right now" in shown
    assert "secret" not in shown
