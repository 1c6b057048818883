"""`zetl dashboard` refuses to start without its one setting, with one clear line."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


def test_a_missing_warehouse_url_is_a_usage_error() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WAREHOUSE_DATABASE_URL")}
    result = subprocess.run(
        [sys.executable, "-m", "zetl", "dashboard"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "WAREHOUSE_DATABASE_URL" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_refresh_interval_must_be_a_number() -> None:
    from zetl.errors import ConfigError
    from zetl_dashboard.data import refresh_seconds

    assert refresh_seconds({}) == 30
    assert refresh_seconds({"ZETL_DASHBOARD_REFRESH_SECONDS": "2"}) == 5  # a floor, not a DoS
    with pytest.raises(ConfigError, match="ZETL_DASHBOARD_REFRESH_SECONDS"):
        refresh_seconds({"ZETL_DASHBOARD_REFRESH_SECONDS": "soon"})


def test_the_default_currency_must_be_a_currency_code() -> None:
    from zetl.errors import ConfigError
    from zetl_dashboard.data import default_currency

    assert default_currency({}) is None
    assert default_currency({"ZETL_DASHBOARD_CURRENCY": " eur "}) == "EUR"
    with pytest.raises(ConfigError, match="ZETL_DASHBOARD_CURRENCY must be a three-letter"):
        default_currency({"ZETL_DASHBOARD_CURRENCY": "dollars"})
