"""``zetl redshift``: the Redshift-compatible front.

Imported whenever ``zetl`` starts: only typer and the standard library at module level.
"""

from __future__ import annotations

import asyncio
import logging
import signal

import typer

log = logging.getLogger(__name__)

app = typer.Typer(help="The Redshift-compatible front before the warehouse.", no_args_is_help=True)


@app.command()
def serve(
    host: str = typer.Option(None, help="address to listen on [env ZETL_REDSHIFT_HOST; 127.0.0.1]"),
    port: int = typer.Option(None, help="port to listen on [env ZETL_REDSHIFT_PORT; 5439]"),
) -> None:
    """Serve the warehouse (every database of WAREHOUSE_DATABASE_URL's server) to Redshift's
    drivers and dbt-redshift until stopped."""
    from dataclasses import replace

    from zetl_redshift.config import FrontConfig, port_number
    from zetl_redshift.server import serve as run

    config = FrontConfig.from_env()
    if host is not None:
        config = replace(config, host=host)
    if port is not None:
        config = replace(config, port=port_number("--port", str(port)))

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await run(config, stop)
        log.info("redshift front stopped")

    asyncio.run(main())


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="redshift")
