"""``zetl migrate``: bring the source database to the newest schema."""

from __future__ import annotations

import logging

import typer

from zetl.settings import Settings

logger = logging.getLogger(__name__)


def migrate(
    wait: float = typer.Option(60.0, help="seconds to wait for the server to accept connections"),
) -> None:
    """Upgrade the source database (SOURCE_DATABASE_URL) to the newest schema. Idempotent."""
    # Imported here: Alembic, SQLAlchemy and psycopg2 would slow every other zetl command.
    from zetl.db import redact, wait_until_ready
    from zetl.schema.migrate import upgrade

    url = Settings.from_env().require_source()
    logger.info("waiting for the source database", extra={"url": redact(url)})
    wait_until_ready(url, timeout_s=wait)
    before, after = upgrade(url)
    logger.info("source schema is current", extra={"from_revision": before, "revision": after})


def register(app: typer.Typer) -> None:
    app.command("migrate")(migrate)
