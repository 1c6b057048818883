"""``zetl generate``: the continuous workload, its rule check and the sample exports."""

from __future__ import annotations

import logging
import sys
import time
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from zetl.errors import ConfigError, DataError
from zetl.settings import Settings
from zetl_generator.mix import EventKind, Mix

# The workload, the rules and the exports pull in psycopg2 and Faker: they are imported in the
# commands that use them, so other zetl commands start fast.
if TYPE_CHECKING:
    from zetl_generator.workload import WorkloadStats

logger = logging.getLogger("zetl.generator")
generate_app = typer.Typer(
    help="Write a realistic, rule-abiding workload to the source database (and exports).",
    invoke_without_command=True,
    no_args_is_help=False,
)
PROGRESS_EVERY_S = 5.0


def register(app: typer.Typer) -> None:
    app.add_typer(generate_app, name="generate")


def render_metrics(stats: WorkloadStats) -> str:
    lines = ["# TYPE zetl_generator_events_total counter"]
    lines += [
        f'zetl_generator_events_total{{kind="{kind.value}"}} {stats.events[kind]}'
        for kind in EventKind
    ]
    lines += [
        "# TYPE zetl_generator_rate_per_second gauge",
        f"zetl_generator_rate_per_second {stats.rate:.3f}",
        "# TYPE zetl_generator_reconnects_total counter",
        f"zetl_generator_reconnects_total {stats.reconnects}",
    ]
    return "\n".join(lines) + "\n"


class ProgressReporter:
    """A status line on a terminal, a structured log line every few seconds otherwise."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self._last = 0.0

    def __call__(self, stats: WorkloadStats) -> None:
        now = time.monotonic()
        if now - self._last < (0.5 if self.tty else PROGRESS_EVERY_S):
            return
        self._last = now
        if self.tty:
            print(f"\r{stats.total} events, {stats.rate:.1f}/s", end="", file=sys.stderr)
        else:
            logger.info("generating", extra=stats.summary())


@generate_app.callback()
def generate(
    ctx: typer.Context,
    rate: float = typer.Option(
        None,
        min=0.001,
        envvar="ZETL_GENERATOR_RATE",
        help="transactions per second (default: as fast as the database goes)",
    ),
    duration: float = typer.Option(None, min=0, help="stop after this many seconds"),
    max_events: int = typer.Option(None, min=0, help="stop after this many events"),
    wait: float = typer.Option(
        60.0, min=0, help="seconds to wait for the source to accept connections"
    ),
    seed: int = typer.Option(0, help="same seed and same starting state give the same data"),
    mix: str = typer.Option(
        None,
        help="event weights, e.g. purchase=5,refund=1 (kinds: "
        + ", ".join(kind.value for kind in EventKind)
        + ")",
    ),
    metrics_port: int = typer.Option(None, help="serve /metrics and /healthz on this port"),
    simulated_clock: bool = typer.Option(
        False,
        "--simulated-clock",
        help="date events by a simulated clock the seed reproduces (default: the present)",
    ),
) -> None:
    """Run the workload until stopped (SIGTERM/SIGINT stop it at a transaction boundary)."""
    if ctx.invoked_subcommand is not None:
        return
    from zetl.db import wait_until_ready
    from zetl.http import serve_metrics
    from zetl_generator.workload import Workload, WorkloadOptions, stop_on_signals

    url = Settings.from_env().require_source()
    options = WorkloadOptions(rate, duration, max_events, seed, Mix.parse(mix), simulated_clock)
    wait_until_ready(url, timeout_s=wait)
    workload = Workload(url, options)
    if metrics_port is not None:
        serve_metrics(lambda: render_metrics(workload.stats), workload.healthy, metrics_port)
    with stop_on_signals() as stop:
        stats = workload.run(stop, on_event=ProgressReporter())
    if sys.stderr.isatty():
        print(file=sys.stderr)
    logger.info("workload finished", extra=stats.summary())
    typer.echo(" ".join(f"{key}={value}" for key, value in stats.summary().items()))


@generate_app.command("check")
def check() -> None:
    """Check every business rule against the source database; exit 1 if one is broken."""
    from zetl.db import connect
    from zetl.schema.rules import check_rules

    conn = connect(Settings.from_env().require_source())
    try:
        with conn, conn.cursor() as cur:
            results = check_rules(cur)
    finally:
        conn.close()
    for result in results:
        status = "ok" if result.violations == 0 else f"BROKEN by {result.violations} rows"
        examples = f" (e.g. {', '.join(result.examples)})" if result.examples else ""
        typer.echo(f"{result.rule.name:28} {status}{examples}  -- {result.rule.description}")
    broken = [r.rule.name for r in results if r.violations]
    if broken:
        raise DataError(f"business rules broken: {', '.join(broken)}")


class ExportFormat(StrEnum):
    PLAYERS = "players"
    STOREFRONT = "storefront"


@generate_app.command("export")
def export(
    format: ExportFormat = typer.Option(..., "--format", help="players or storefront"),
    out: Path = typer.Option(..., "--out", help="directory to write the CSV files into"),
    seed: int = typer.Option(0, help="the same seed gives the same files"),
    rows: int = typer.Option(
        1000, min=1, help="rows per file (players) or transaction lines (storefront)"
    ),
    messy: bool = typer.Option(False, "--messy", help="storefront: the production defects"),
) -> None:
    """Write a sample export: players, affiliates and wallet transactions, or the storefront."""
    if messy and format is ExportFormat.PLAYERS:
        raise ConfigError("--messy applies to --format storefront only")
    from zetl_generator.export_players import write_players_export
    from zetl_generator.export_storefront import StorefrontExport

    try:
        if format is ExportFormat.PLAYERS:
            written = write_players_export(out, rows, seed)
        else:
            written = StorefrontExport(seed, messy).write(out, rows)
    except OSError as exc:
        raise ConfigError(f"cannot write the export to {out}: {exc.strerror}") from exc
    for name, count in written.items():
        typer.echo(f"{out / name}: {count} rows")
