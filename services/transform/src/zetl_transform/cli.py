"""``zetl transform``: build the dbt models, set up the replica link, check SQL for Redshift.

Only typer, the standard library and zetl basics are imported here; dbt and sqlglot are
imported inside the commands, so ``zetl --help`` stays fast.
"""

from __future__ import annotations

import typer

from zetl.errors import ConfigError, DataError
from zetl.settings import Settings

transform_app = typer.Typer(
    help="Build the dbt models (transform/) in the warehouse, or check them for Redshift.",
    invoke_without_command=True,
    no_args_is_help=False,
)


def register(app: typer.Typer) -> None:
    app.add_typer(transform_app, name="transform")


SELECT_OPTION = typer.Option(None, "--select", "-s", help="dbt node selection")
FULL_REFRESH_OPTION = typer.Option(
    False, "--full-refresh", help="rebuild incremental models from scratch"
)
TARGET_OPTION = typer.Option(
    "local",
    "--target",
    envvar="ZETL_DBT_TARGET",
    help="local (warehouse), local-redshift (the warehouse through zetl's Redshift front, with"
    " dbt-redshift) or aws (Redshift)",
)


@transform_app.callback()
def transform(
    ctx: typer.Context,
    select: list[str] = SELECT_OPTION,
    full_refresh: bool = FULL_REFRESH_OPTION,
    target: str = TARGET_OPTION,
) -> None:
    """Refresh the replica link (local targets), then dbt build; exit 1 if a model or test fails."""
    if ctx.invoked_subcommand is None:
        _build(select, full_refresh, target)


@transform_app.command("build")
def build_command(
    select: list[str] = SELECT_OPTION,
    full_refresh: bool = FULL_REFRESH_OPTION,
    target: str = TARGET_OPTION,
) -> None:
    """The same as `zetl transform` (the image's command: `build --target aws`)."""
    _build(select, full_refresh, target)


def _build(select: list[str] | None, full_refresh: bool, target: str) -> None:
    from zetl_transform.project import TARGETS, project_dir
    from zetl_transform.runner import build

    if target not in TARGETS:
        raise ConfigError(f"--target must be one of {', '.join(TARGETS)}, not {target!r}")
    settings = Settings.from_env()
    run = build(
        project=project_dir(),
        warehouse_url=settings.warehouse_database_url,
        replica_database=settings.replica_database,
        target=target,
        select=list(select or []),
        full_refresh=full_refresh,
    )
    for failure in run.failures:
        typer.echo(f"FAILED {failure}", err=True)
    typer.echo(run.message)
    if not run.success:
        raise DataError(f"dbt build failed: {len(run.failures)} failing nodes (run {run.run_id})")


@transform_app.command("setup")
def setup(
    grantee: str | None = typer.Option(
        None, help="role that runs `zetl transform` (default: the connecting user)"
    ),
    remote_host: str = typer.Option(
        "localhost", help="how the warehouse server reaches itself for the replica database"
    ),
    remote_port: int | None = typer.Option(None, help="its port (default: the server's own)"),
) -> None:
    """Set up the postgres_fdw link to the replica database (a superuser, once; idempotent)."""
    from zetl_transform.link import refresh
    from zetl_transform.link import setup as setup_link

    settings = Settings.from_env()
    url = settings.require_warehouse()
    setup_link(url, settings.replica_database, grantee, remote_host, remote_port)
    if grantee is None:
        report = refresh(url, settings.replica_database, auto_setup=False)
        typer.echo(f"replica link ready: {len(report.kept) + len(report.added)} tables imported")
    else:
        typer.echo(f"replica link ready for role {grantee}")


@transform_app.command("link")
def link() -> None:
    """Refresh the replica link: re-import the replica's tables (no privilege beyond the
    transform role's; a superuser also sets the link up when it is missing)."""
    from zetl_transform.link import refresh

    settings = Settings.from_env()
    report = refresh(settings.require_warehouse(), settings.replica_database)
    typer.echo(
        f"replica link refreshed: {len(report.kept) + len(report.added) + len(report.replaced)}"
        f" tables ({len(report.added)} added, {len(report.replaced)} replaced,"
        f" {len(report.dropped)} dropped)"
    )


@transform_app.command("check")
def check(
    project: str | None = typer.Option(None, help="dbt project directory (default: transform/)"),
) -> None:
    """Check every model's SQL for what Redshift rejects, without a connection; exit 1 if any."""
    from pathlib import Path

    from zetl_transform.check import run_check
    from zetl_transform.project import project_dir

    findings = run_check(Path(project) if project else project_dir())
    for finding in findings:
        typer.echo(finding.render())
    if findings:
        raise DataError(f"{len(findings)} Redshift incompatibilities found")
    typer.echo("Redshift check: every model passes")
