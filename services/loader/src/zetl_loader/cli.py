"""``zetl load DIR``: turn a production export into the normalized source database.

Exit codes (docs/architecture.md): 0 when every row loaded (data issues such as merged
duplicates or a flagged total are reported, the data is kept); 1 when rows were quarantined —
the load is committed, the rest of the data is in, but some input did not make it and someone
must look;
2 for a missing directory, file or column, or an unreachable database (nothing loaded).

An export loaded before (same files, same bytes) is skipped with exit 0: applying it again
would roll rows that changed since back to the export's values. ``--reload`` applies it anyway.
``--accept-quarantine`` turns exit 1 for quarantined rows into 0 (with the same warning), for a
platform that must keep going with what loaded (docker compose); the bare command keeps 1.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from zetl.errors import ExitCode
from zetl.settings import Settings

if TYPE_CHECKING:
    from zetl_loader.extract import ProgressCallback
    from zetl_loader.pipeline import ProgressFactory

logger = logging.getLogger(__name__)


@contextmanager
def _progress() -> Iterator[ProgressFactory | None]:
    """A progress bar per file on a terminal; nothing (structured logs only) otherwise."""
    if not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=False) as progress:

        def track(file_name: str, size: int) -> ProgressCallback:
            task = progress.add_task(file_name, total=size)
            return lambda done: progress.update(task, advance=done)

        yield track


def load(
    directory: Annotated[Path, typer.Argument(help="the export directory (publisher.csv, ...)")],
    report: Annotated[
        Path | None, typer.Option("--report", help="write a JSON summary of the load here")
    ] = None,
    reload: Annotated[
        bool,
        typer.Option(
            "--reload",
            help="apply an export that was loaded before again (its values overwrite newer ones)",
        ),
    ] = False,
    accept_quarantine: Annotated[
        bool,
        typer.Option(
            "--accept-quarantine",
            help="exit 0 when the only problem is quarantined rows (they stay in zetl_load)",
        ),
    ] = False,
) -> None:
    """Load a CSV export into the source database (SOURCE_DATABASE_URL). Idempotent."""
    # Imported here, not at the top: the pipeline pulls in psycopg2 and SQLAlchemy, which
    # would slow every other zetl command.
    from zetl_loader.pipeline import run_load

    url = Settings.from_env().require_source()
    with _progress() as progress:
        result = run_load(url, directory, progress, reload=reload)
    if report is not None:
        result.write(report)
    if result.skipped_as_loaded:
        logger.info(
            "export already loaded; skipped (--reload applies it again)",
            extra={"load_run_id": result.load_run_id, "source_dir": str(directory)},
        )
        return
    for entity, counts in result.entities.items():
        logger.info("loaded", extra={"entity": entity, **counts.as_dict()})
    logger.info(
        "load committed",
        extra={
            "load_run_id": result.load_run_id,
            "quarantined": result.quarantined,
            "issues": result.issue_counts,
        },
    )
    if result.quarantined:
        logger.warning(
            "rows were quarantined; see zetl_load.quarantine",
            extra={"load_run_id": result.load_run_id, "rows": result.quarantined},
        )
        if not accept_quarantine:
            raise typer.Exit(int(ExitCode.DATA))


def register(app: typer.Typer) -> None:
    app.command("load")(load)
