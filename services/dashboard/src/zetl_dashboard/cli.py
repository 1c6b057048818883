"""``zetl dashboard``: serve the Streamlit app (the warehouse's marts, read-only)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from zetl.settings import Settings

APP = Path(__file__).resolve().parent / "app.py"


def dashboard(
    port: Annotated[int, typer.Option(help="port to serve on")] = 8501,
    address: Annotated[str, typer.Option(help="address to listen on")] = "0.0.0.0",  # noqa: S104
) -> None:
    """Serve the dashboard (WAREHOUSE_DATABASE_URL, a read-only role) on http://ADDRESS:PORT."""
    Settings.from_env().require_warehouse()  # a missing setting is a usage error, now
    args = [
        sys.executable, "-m", "streamlit", "run", str(APP),
        "--server.port", str(port), "--server.address", address,
        "--server.headless", "true", "--browser.gatherUsageStats", "false",
        "--client.toolbarMode", "viewer",
    ]  # fmt: skip
    os.execv(sys.executable, args)  # noqa: S606 - streamlit becomes the container's process


def register(app: typer.Typer) -> None:
    app.command("dashboard")(dashboard)
