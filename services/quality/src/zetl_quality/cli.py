"""``zetl dq``: list and run the great_expectations checkpoints.

Only typer and zetl basics load with the CLI: great_expectations (seconds to import) loads
inside ``zetl dq run``.
"""

from __future__ import annotations

import typer

from zetl.errors import DataError
from zetl_quality.checks import CHECKPOINTS, Target

dq_app = typer.Typer(
    help="Data-quality checkpoints (great_expectations) over the source, replica and marts.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.add_typer(dq_app, name="dq")


@dq_app.command("list")
def list_checkpoints(
    names: bool = typer.Option(
        False, "--names", help="names only, one a line (what `make dq` and the scheduler run)"
    ),
) -> None:
    """List the checkpoints and what each checks."""
    if names:
        typer.echo("\n".join(CHECKPOINTS))
        return
    width = max(len(n) for n in CHECKPOINTS)
    for spec in CHECKPOINTS.values():
        typer.echo(f"{spec.name:<{width}}  {spec.description}")


@dq_app.command("run")
def run_checkpoint(
    name: str = typer.Argument(..., help=f"checkpoint: {', '.join(CHECKPOINTS)}"),
    target: Target = typer.Option(
        Target.LOCAL, "--target", envvar="ZETL_DQ_TARGET", help="local warehouse or aws (Redshift)"
    ),
) -> None:
    """Run a checkpoint; exit 0 when every expectation passes, 1 when one fails."""
    from zetl_quality.runner import run

    result = run(name, target)
    typer.echo(result.report)
    if not result.success:
        raise DataError(
            f"checkpoint {name}: {result.failed} of {result.evaluated} expectations failed"
        )
