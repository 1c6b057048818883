"""The whole local platform from docker-compose.yml, started as the README's quick start says.

`docker compose up -d --build` (or `docker-compose`), then: the sample export and a live
workload reach the replica, every table Synced; the marts are built and the checkpoints pass;
every dashboard page draws its charts in a real browser (headless Chromium; screenshots go to
docs/img/); the replicator stopped while the generator writes on, and the source restarted,
each leave `zetl verify` clean. Everything is torn down at the end, on failure too.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shlex
import shutil
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg2
import pytest

from tests import support
from tests.harness import free_port

if TYPE_CHECKING:
    from playwright.sync_api import Page

# Building every image from scratch takes minutes on a small machine: the first test pays it.
pytestmark = [pytest.mark.e2e, pytest.mark.docker, pytest.mark.timeout(2400)]
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "docs" / "img"
TIMEOUT_S = 300
# Pages and what each must draw once the marts hold data (vega-lite charts).
PAGES = {"storefront": 4, "players": 2, "reconciliation": 0, "health": 2}
PASSWORDS = {
    "SOURCE_PASSWORD": "e2e-source",
    "WAREHOUSE_PASSWORD": "e2e-warehouse",
    "ZETL_OWNER_PASSWORD": "e2e-owner",
    "ZETL_APP_PASSWORD": "e2e-app",
    "ZETL_REPLICATION_PASSWORD": "e2e-replication",
    "ZETL_ANALYST_PASSWORD": "e2e-analyst",
    "ZETL_REPLICATOR_PASSWORD": "e2e-replicator",
    "ZETL_TRANSFORM_PASSWORD": "e2e-transform",
    "ZETL_DQ_PASSWORD": "e2e-dq",
    "ZETL_DASHBOARD_PASSWORD": "e2e-dashboard",
    "ZETL_REDSHIFT_PASSWORD": "e2e-redshift",
    "ZETL_ORCHESTRATION_PASSWORD": "e2e-orchestration",
}


def compose_command() -> list[str]:
    configured = os.environ.get("COMPOSE")
    if configured:
        return shlex.split(configured)
    probe = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
    return ["docker", "compose"] if probe.returncode == 0 else ["docker-compose"]


@dataclass
class Platform:
    project: str
    env: dict[str, str]
    timings: dict[str, float] = field(default_factory=dict)
    started: float = 0.0

    def compose(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*compose_command(), "-p", self.project, *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            check=check,
        )

    def url(self, role: str, which: str, database: str) -> str:
        password = PASSWORDS[f"ZETL_{role.removeprefix('zetl_').upper()}_PASSWORD"]
        return f"postgresql://{role}:{password}@127.0.0.1:{self.env[f'{which}_PORT']}/{database}"

    def zetl(self, *args: str) -> subprocess.CompletedProcess[str]:
        """The host's zetl, as the README runs it: the read-only roles, the published ports."""
        env = dict(
            self.env,
            SOURCE_DATABASE_URL=self.url("zetl_analyst", "SOURCE", "storefront"),
            WAREHOUSE_DATABASE_URL=self.url("zetl_dashboard", "WAREHOUSE", "dev"),
        )
        return subprocess.run(
            [str(ROOT / ".venv/bin/zetl"), *args], env=env, capture_output=True, text=True
        )

    def exit_code(self, service: str) -> int | None:
        container = self.compose("ps", "-q", service).stdout.strip()
        if not container:
            return None
        state = subprocess.run(
            ["docker", "inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", container],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        return int(state[1]) if state[0] == "exited" else None

    def http(self, port_var: str, path: str) -> tuple[int, str]:
        url = f"http://127.0.0.1:{self.env[port_var]}{path}"
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, ""
        except OSError:  # restarting: refused, reset
            return 0, ""

    def mark(self, what: str) -> None:
        self.timings[what] = round(time.monotonic() - self.started, 1)


def wait_for(
    what: str, condition: Callable[[], bool], platform: Platform, timeout: float = TIMEOUT_S
) -> None:
    try:
        support.wait_for(
            condition,
            what,
            timeout,
            every=2,
            ignoring=(psycopg2.Error, OSError, ValueError, KeyError),  # not up yet
        )
    except (AssertionError, psycopg2.Error, OSError, ValueError, KeyError):
        logs = platform.compose("logs", "--tail", "60", check=False).stdout
        pytest.fail(f"timed out waiting for {what}\n{logs}")
    platform.mark(what)


@pytest.fixture(scope="module")
def platform() -> Iterator[Platform]:
    env = dict(
        os.environ,
        **PASSWORDS,
        SOURCE_PORT=str(free_port()),
        WAREHOUSE_PORT=str(free_port()),
        GENERATOR_METRICS_PORT=str(free_port()),
        REPLICATOR_METRICS_PORT=str(free_port()),
        DASHBOARD_PORT=str(free_port()),
        REDSHIFT_PORT=str(free_port()),
        ZETL_IMAGE_TAG="e2e",
        ZETL_GENERATOR_RATE="20",
        # Short turns so the marts follow the workload within the test.
        ZETL_TRANSFORM_INTERVAL="20",
        ZETL_DASHBOARD_REFRESH_SECONDS="5",
    )
    running = Platform(f"zetl-e2e-{uuid.uuid4().hex[:8]}", env)
    images_before = subprocess.run(
        ["docker", "images", "-q", "zetl/dashboard:e2e"], capture_output=True, text=True
    ).stdout.strip()
    running.started = time.monotonic()
    try:
        # The README's quick start, word for word (with the project name and ports the
        # test needs to run beside other stacks).
        up = running.compose("up", "-d", "--build", check=False)
        assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
        running.mark("compose up returned")
        running.timings["images were built before"] = float(bool(images_before))
        yield running
    finally:
        if os.environ.get("ZETL_E2E_KEEP") != "1":
            running.compose("down", "--volumes", "--remove-orphans", check=False)
        print(f"\ne2e timings (seconds since `up`): {json.dumps(running.timings, indent=2)}")


def counts(url: str, tables: list[str] | None = None) -> dict[str, int]:
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        if tables is None:
            cur.execute(
                "SELECT table_name FROM information_schema.tables"
                " WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY 1"
            )
            tables = [name for (name,) in cur.fetchall()]
        found = {}
        for table in tables:
            cur.execute(f"SELECT count(*) FROM {table}")
            found[table] = int(cur.fetchone()[0])  # type: ignore[index]
        return found


def generated(platform: Platform) -> int:
    status, text = platform.http("GENERATOR_METRICS_PORT", "/metrics")
    return sum(
        int(float(line.rsplit(" ", 1)[1]))
        for line in text.splitlines()
        if status == 200 and line.startswith("zetl_generator_events_total")
    )


def all_synced(platform: Platform) -> bool:
    status = platform.zetl("status", "--json")
    tables = json.loads(status.stdout)["tables"] if status.returncode == 0 else []
    return bool(tables) and all(t["state"] == "Synced" for t in tables)


def verify_clean(platform: Platform, after: str) -> None:
    """With the generator paused, the replica catches up and verify finds no difference."""
    platform.compose("stop", "generator")
    wait_for(f"every table Synced after {after}", lambda: all_synced(platform), platform)
    verify = platform.zetl("verify")
    assert verify.returncode == 0, f"after {after}:\n{verify.stdout}\n{verify.stderr}"
    platform.mark(f"verify clean after {after}")
    platform.compose("start", "generator")


def test_the_platform_comes_up_replicates_and_builds(platform: Platform) -> None:
    wait_for("the loader to finish", lambda: platform.exit_code("loader") is not None, platform)
    assert platform.exit_code("migrate") == 0
    assert platform.exit_code("loader") == 0, platform.compose("logs", "loader").stdout
    wait_for(
        "the dashboard to answer",
        lambda: platform.http("DASHBOARD_PORT", "/_stcore/health")[0] == 200,
        platform,
    )
    wait_for("the generator to write 100 events", lambda: generated(platform) >= 100, platform)
    wait_for("every table to be Synced", lambda: all_synced(platform), platform)

    dashboard = platform.url("zetl_dashboard", "WAREHOUSE", "dev")

    def marts_built() -> bool:
        marts = counts(
            dashboard,
            [
                "analytics.daily_revenue",
                "analytics.daily_player_transactions",
                "analytics.player_top_three_deposits",
                "analytics.transaction_reconciliation",
                "analytics.agg_discord_deposits_by_country",
                "analytics.publisher_payouts",
            ],
        )
        return all(n > 0 for n in marts.values())

    wait_for("the marts to be built and non-empty", marts_built, platform)

    # The sample export carries one transaction whose lines do not add up to its total, on
    # purpose: the loader keeps it and records a total_mismatch issue, and source_integrity must
    # report exactly that rule. Every other expectation of every checkpoint must pass.
    analyst = platform.url("zetl_analyst", "SOURCE", "storefront")
    with psycopg2.connect(analyst) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM zetl_load.data_issue WHERE code = 'total_mismatch'")
        sample_mismatches = int(cur.fetchone()[0])  # type: ignore[index]
    assert sample_mismatches == 1

    reports: dict[str, str] = {}

    def checkpoints_passed() -> bool:
        """The latest result of every checkpoint passed. dq runs them again after each
        transform, so a result spoiled by a write in flight is superseded by the next."""
        with psycopg2.connect(dashboard) as conn, conn.cursor() as cur:
            cur.execute(
                "SELECT DISTINCT ON (checkpoint) checkpoint, success, failed, report"
                " FROM zetl_dq.checkpoint_result ORDER BY checkpoint, finished_at DESC"
            )
            latest = {name: (ok, failed, report) for name, ok, failed, report in cur.fetchall()}
        passing = set()
        for name, (ok, _failed, report) in latest.items():
            reports[name] = report
            if ok:
                passing.add(name)
        return passing >= {"source_integrity", "replica_parity", "marts"}

    # replica_parity compares source and replica at one point; while the generator writes at
    # full speed on a loaded machine it can see the replica a few rows behind, so the round
    # that must pass runs with the generator paused (as `zetl verify` does below).
    platform.compose("stop", "generator")
    paused_at = datetime.now(UTC)

    def fresh_round_passed() -> bool:
        with psycopg2.connect(dashboard) as conn, conn.cursor() as cur:
            cur.execute(
                "SELECT min(started_at) FROM (SELECT DISTINCT ON (checkpoint) started_at"
                " FROM zetl_dq.checkpoint_result ORDER BY checkpoint, finished_at DESC) r"
            )
            oldest = cur.fetchone()[0]  # type: ignore[index]
        return oldest is not None and oldest > paused_at and checkpoints_passed()

    try:
        # dq may be mid-round when the generator pauses: up to two rounds of three checkpoints.
        wait_for("every checkpoint to pass", fresh_round_passed, platform, timeout=600)
    except BaseException:
        print("latest checkpoint reports:", *reports.values(), sep="\n")
        raise
    finally:
        platform.compose("start", "generator")


def chromium_path() -> str:
    path = os.environ.get("ZETL_CHROMIUM") or shutil.which("chromium")
    assert path, "Debian's chromium is needed (apt-get install chromium; .ci/run installs it)"
    return path


def test_every_dashboard_page_draws_its_charts(platform: Platform) -> None:
    from playwright.sync_api import sync_playwright

    base = f"http://127.0.0.1:{platform.env['DASHBOARD_PORT']}"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium_path(), args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 1100})
            for name, charts in PAGES.items():
                # Streamlit scrolls inside its own container: a tall window shows a whole page
                # (the README's Storefront picture keeps a screen's proportions).
                height = 1100 if name == "storefront" else 2000
                page.set_viewport_size({"width": 1440, "height": height})
                loaded = time.monotonic()
                wait = (
                    f"() => document.querySelectorAll('.vega-embed').length >= {charts}"
                    if charts
                    else "() => !!document.querySelector(\"[data-testid='stMetric']\")"
                )
                open_page(
                    platform,
                    page,
                    f"{base}/{'' if name == 'storefront' else name}",
                    "[data-testid='stMainBlockContainer'] h1",
                    then=wait,
                )
                page.wait_for_timeout(1500)  # let the charts finish their transition
                settled(page)
                platform.timings[f"page {name} loaded in"] = round(time.monotonic() - loaded, 2)
                assert_no_error(page, name)
                body = page.inner_text("body")
                if name != "health":  # every business page says how fresh it is
                    assert "Data as of: marts built 20" in body, body[:2000]
                    assert "the replica holds the source up to 20" in body, body[:2000]
                page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
            platform.mark("every page drawn")
        finally:
            browser.close()


def assert_no_error(page: Page, name: str) -> None:
    errors = page.locator("[data-testid='stException'], [data-testid='stAlertContentError']")
    assert errors.count() == 0, f"{name}: {errors.first.inner_text()}"
    body = page.inner_text("body")
    assert "Traceback" not in body and "Failed to fetch" not in body, body[:2000]


@contextmanager
def browser_page(height: int = 2000) -> Iterator[Page]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium_path(), args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            yield browser.new_page(
                viewport={"width": 1440, "height": height}, accept_downloads=True
            )
        finally:
            browser.close()


FETCH_FAILED = "Failed to fetch dynamically imported module"


def open_page(
    platform: Platform, page: Page, url: str, ready: str, then: str | None = None
) -> None:
    """Load ``url`` until ``ready`` (a selector) shows, then until ``then`` (a JavaScript
    condition) holds. Streamlit loads each widget's code on first use; on a busy machine one
    such fetch can fail, which a reload cures: one retry for that, never for anything else. A
    page that does not get there fails with what it shows."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    for attempt in (1, 2):
        page.goto(url)
        try:
            page.wait_for_selector(ready, timeout=90_000)
            if then:
                page.wait_for_function(then, timeout=90_000)
        except PlaywrightTimeout:
            body = page.inner_text("body")
            if attempt == 1 and FETCH_FAILED in body:
                continue
            logs = platform.compose("logs", "--tail", "40", "dashboard", check=False).stdout
            pytest.fail(f"{url}: {then or ready} did not come within 90 s\n{body}\n{logs}")
        page.wait_for_timeout(1500)
        if attempt == 1 and FETCH_FAILED in page.inner_text("body"):
            continue
        return


def choose(page: Page, selectbox: str, option: int) -> None:
    """Pick the ``option``-th entry of the select box labelled ``selectbox``. The page re-runs
    itself every few seconds, which may close the list just opened: open it again then."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    control = page.get_by_test_id("stSelectbox").filter(has_text=selectbox)
    for _ in range(5):
        control.get_by_role("button", name="Open").click()
        try:
            page.get_by_role("option").nth(option).click(timeout=5_000)
            return
        except PlaywrightTimeout:
            page.keyboard.press("Escape")
    pytest.fail(f"the options of {selectbox!r} did not open")


def settled(page: Page) -> None:
    """Wait for the page's run to finish (the running indicator gone) before a screenshot."""
    page.wait_for_function(
        "() => !document.querySelector(\"[data-testid='stStatusWidget']\")", timeout=30_000
    )


def download(page: Page, button: int) -> list[list[str]]:
    """Click the page's ``button``-th "Download CSV" and read the file it saves."""
    with page.expect_download(timeout=60_000) as saving:
        page.get_by_role("button", name="Download CSV").nth(button).click()
    return list(csv.reader(Path(saving.value.path()).read_text().splitlines()))


def test_the_storefront_answers_the_morning_questions(platform: Platform) -> None:
    """Headline deltas, a period picked by link (the sample's first week, whose days without
    any sale are a gap, not a slump), each table's CSV, and a publisher's games."""
    base = f"http://127.0.0.1:{platform.env['DASHBOARD_PORT']}"
    with browser_page() as page:
        open_page(platform, page, f"{base}/", "[data-testid='stMetric']")
        body = page.inner_text("body")
        assert re.search(r"On \d{4}-\d\d-\d\d, against the day before", body), body[:2000]
        assert re.search(r"7 days to \d{4}-\d\d-\d\d, against the 7 days before", body)
        labels = page.locator("[data-testid='stMetricLabel']").all_inner_texts()
        assert any(text.endswith(", 7 days") for text in labels), labels
        # Live events are dated now: the latest day with sales is today (UTC).
        today = datetime.now(UTC).date()
        assert f"On {today:%Y-%m-%d}" in body or f"On {today - timedelta(days=1):%Y-%m-%d}" in body

        # The sample export sold on 2025-01-01 only; the next six days have no sale at all.
        open_page(
            platform,
            page,
            f"{base}/?currency=USD&period=2025-01-01&period=2025-01-07",
            "[data-testid='stDataFrame']",
        )
        assert_no_error(page, "storefront, the sample's week")
        picked = [i.input_value() for i in page.locator("[data-testid='stDateInput'] input").all()]
        assert picked == ["2025-01-01", "2025-01-07"]
        page.wait_for_function(
            "() => document.querySelectorAll('.vega-embed').length >= 4", timeout=90_000
        )
        body = page.inner_text("body")
        assert "days with no data in the source, drawn as gaps" in body, body[:3000]
        assert "On 2025-01-07, against the day before" in body
        settled(page)
        page.screenshot(path=str(SCREENSHOTS / "storefront-period.png"), full_page=True)

        publishers = download(page, 0)
        assert publishers[0] == ["Publisher", "Net (USD)", "Gross (USD)", "Refunded (USD)", "Sales"]
        assert len(publishers) > 1, publishers

        # Drill down: pick the second publisher of the list; its games follow.
        choose(page, "Drill down", 1)
        page.wait_for_function(
            "() => location.search.includes('publisher=')"
            " && document.querySelectorAll(\"[data-testid='stDataFrame']\").length >= 2",
            timeout=60_000,
        )
        page.wait_for_timeout(1500)
        games = download(page, 1)
        assert games[0] == [
            "Game", "Platform", "Net (USD)", "Gross (USD)", "Refunded (USD)", "Sales"
        ]  # fmt: skip
        assert len(games) > 1, games
        net = round(sum(float(row[2]) for row in games[1:]), 2)
        assert net in {round(float(row[1]), 2) for row in publishers[1:]}, (
            "the games of a publisher add up to its net",
            games,
            publishers,
        )

        # Players: readable labels in the table and its CSV.
        open_page(platform, page, f"{base}/players", "[data-testid='stDataFrame']")
        depositors = download(page, 0)
        assert depositors[0] == ["Player", "Largest deposit", "Second largest", "Third largest"]
        assert len(depositors) > 1
    platform.mark("the storefront's period, deltas, CSV and drill-down")


def test_a_direct_link_after_a_restart_has_the_navigation(platform: Platform) -> None:
    """A fresh dashboard server, opened first at /health (not /): the sidebar lists the
    pages by title and the layout is the wide one, as when / was opened first."""
    platform.compose("restart", "dashboard")
    wait_for(
        "the restarted dashboard to answer",
        lambda: platform.http("DASHBOARD_PORT", "/_stcore/health")[0] == 200,
        platform,
    )
    base = f"http://127.0.0.1:{platform.env['DASHBOARD_PORT']}"
    with browser_page(height=1100) as page:
        for path in ("health", "players"):
            open_page(platform, page, f"{base}/{path}", "[data-testid='stMainBlockContainer'] h1")
            nav = page.locator("[data-testid='stSidebarNav'] a").all_inner_texts()
            assert nav == ["Storefront", "Players", "Reconciliation", "Platform health"], nav
            box = page.locator("[data-testid='stMainBlockContainer']").bounding_box()
            assert box is not None and box["width"] > 1000, box  # wide, not centred (~730 px)
    platform.mark("a direct link after a restart")


def test_psycopg2_reads_the_marts_through_the_redshift_front(platform: Platform) -> None:
    """The front on 5439 answers as Redshift and relays to the warehouse as the client's role
    (TLS on, as the README connects; the marts were built by the first test)."""
    front = platform.url("zetl_dashboard", "REDSHIFT", "dev") + "?sslmode=require"
    with psycopg2.connect(front) as conn, conn.cursor() as cur:
        assert conn.info.ssl_in_use
        assert conn.get_parameter_status("server_version") == "8.0.2"
        cur.execute("SELECT current_user, count(*) FROM analytics.daily_revenue")
        user, rows = cur.fetchone()  # type: ignore[misc]
        assert (user, rows > 0) == ("zetl_dashboard", True)
        cur.execute("SELECT getdate() <= sysdate + interval '1 minute'")  # Redshift SQL
        assert cur.fetchone() == (True,)
    platform.mark("read the marts through the front")


def test_the_replica_survives_a_stopped_replicator_and_a_source_restart(
    platform: Platform,
) -> None:
    platform.compose("stop", "replicator")
    written = generated(platform)
    wait_for("the generator to write on", lambda: generated(platform) >= written + 100, platform)
    stopped_replicator_is_told(platform)
    platform.compose("start", "replicator")
    verify_clean(platform, "the replicator restarted")

    platform.compose("restart", "source")
    source = platform.url("zetl_analyst", "SOURCE", "storefront")
    wait_for("the source to be back", lambda: bool(counts(source, ["customer"])), platform)
    # The generator reconnects (or its container restarts) and writes on.
    before = counts(source, ["store_transaction"])["store_transaction"]
    wait_for(
        "the generator to write after the source restart",
        lambda: counts(source, ["store_transaction"])["store_transaction"] >= before + 20,
        platform,
    )
    verify_clean(platform, "the source restarted")


def stopped_replicator_is_told(platform: Platform) -> None:
    """With the replicator stopped and the source writing on, `zetl status`, svv_integration
    and the health page all say ErrorState, with a lag that grows, not the last sample's."""
    base = f"http://127.0.0.1:{platform.env['DASHBOARD_PORT']}"
    with browser_page() as page:
        open_page(platform, page, f"{base}/health", "[data-testid='stMetric']")
        # A replicator stopped cleanly says ErrorState as it stops (a silent one is in it 30 s
        # after its last report); the page refreshes every 5 s.
        page.wait_for_function(
            "() => document.body.innerText.includes('The replicator is stopped')", timeout=90_000
        )
        first = lag_now(page)
        shown = page_metric(page, "Lag now")
        page.wait_for_function(
            """shown => [...document.querySelectorAll("[data-testid='stMetric']")].some(
                m => m.innerText.startsWith("Lag now")
                     && m.innerText.split(/\\s+/).join(" ").trim() !== shown)""",
            arg=shown,
            timeout=60_000,
        )
        assert lag_now(page) > first
        assert page_metric(page, "State of").endswith("ErrorState")
    status = platform.zetl("status")
    assert status.returncode != 0, status.stdout + status.stderr
    assert "ErrorState" in status.stdout, status.stdout
    view = platform.url("zetl_dashboard", "REDSHIFT", "dev") + "?sslmode=require"
    with psycopg2.connect(view) as conn, conn.cursor() as cur:
        cur.execute("SELECT state, current_lag FROM svv_integration")
        state, lag_ms = cur.fetchone()  # type: ignore[misc]
    conn.close()
    assert (state.strip(), int(lag_ms) / 1000 >= first) == ("ErrorState", True)
    platform.mark("a stopped replicator told by status, svv_integration and the health page")


def page_metric(page: Page, label: str) -> str:
    """The text of the metric whose label starts with ``label`` (label, then value)."""
    metric = page.get_by_test_id("stMetric").filter(has_text=label).first
    return " ".join(metric.inner_text().split())


def lag_now(page: Page) -> float:
    """The health page's "Lag now" in seconds ("0.4 s", "42 s", "1 min 5 s", "2 h 3 min")."""
    text = page_metric(page, "Lag now").removeprefix("Lag now").strip()
    units = {"h": 3600, "min": 60, "s": 1}
    parts = re.findall(r"([0-9.]+) (h|min|s)\b", text)
    assert parts, text
    return sum(float(number) * units[unit] for number, unit in parts)


def test_a_second_up_leaves_the_live_data_alone(platform: Platform) -> None:
    """The README's command again, over a platform that has run: the loader finds the sample
    already loaded and skips it; no erased player comes back, no KYC decision is reset."""
    source = platform.url("zetl_analyst", "SOURCE", "storefront")
    erased, approved, runs = decided(source)
    up = platform.compose("up", "-d", "--build", check=False)
    assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
    wait_for(
        "the loader to find the sample already loaded",
        lambda: "export already loaded; skipped" in platform.compose("logs", "loader").stdout,
        platform,
    )
    wait_for("the loader to exit", lambda: platform.exit_code("loader") == 0, platform)
    erased_after, approved_after, runs_after = decided(source)
    # A player the generator erased meanwhile, with no money history, is deleted: that is the
    # workload going on, not a decision undone. Only players still present can show a reset.
    undone = players(source, (erased - erased_after) | (approved - approved_after))
    assert not undone, f"decisions undone, the players now: {undone}"
    assert runs_after == runs


def players(url: str, codes: set[str]) -> list[tuple[object, ...]]:
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT customer_code, display_name IS NULL, email IS NULL, kyc_status, updated_at"
            " FROM customer WHERE customer_code = ANY(%s) ORDER BY customer_code",
            (sorted(codes),),
        )
        return cur.fetchall()


def decided(url: str) -> tuple[set[str], set[str], int]:
    """Erased players, KYC-approved players and load runs: what a reload of the sample undid."""
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute("SELECT customer_code FROM customer WHERE email IS NULL")
        erased = {code for (code,) in cur.fetchall()}
        cur.execute("SELECT customer_code FROM customer WHERE kyc_status = 'approved'")
        approved = {code for (code,) in cur.fetchall()}
        cur.execute("SELECT count(*) FROM zetl_load.load_run")
        runs = int(cur.fetchone()[0])  # type: ignore[index]
    return erased, approved, runs
