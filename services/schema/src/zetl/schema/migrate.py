"""Upgrade a source database to the newest schema, with Alembic configured in code."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from zetl.db import connect
from zetl.errors import DataError, first_line
from zetl.schema.models import LOAD_SCHEMA

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# Serializes concurrent `zetl migrate` runs (two containers starting together).
MIGRATION_LOCK_ID = 7_240_311


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def engine_for(url: str) -> Engine:
    """An engine on a libpq URL or DSN, connecting through zetl.db for its clear errors."""
    return create_engine("postgresql+psycopg2://", creator=lambda: connect(url), poolclass=NullPool)


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError(f"no migrations found in {MIGRATIONS_DIR}")
    return head


def current_revision(connection: Connection) -> str | None:
    context = MigrationContext.configure(connection, opts={"version_table_schema": LOAD_SCHEMA})
    return context.get_current_revision()


def upgrade(url: str, revision: str = "head") -> tuple[str | None, str | None]:
    """Upgrade to ``revision``; returns the revision before and after. Idempotent."""
    config = alembic_config()
    with engine_for(url).connect() as connection:
        # A session lock: it ends with the connection, so a failed migration needs no unlock
        # (an unlock on its aborted transaction would hide the real error behind another).
        connection.execute(text("SELECT pg_advisory_lock(:id)"), {"id": MIGRATION_LOCK_ID})
        connection.commit()
        before = current_revision(connection)
        config.attributes["connection"] = connection
        try:
            command.upgrade(config, revision)
        except DBAPIError as exc:
            reason = first_line(exc.orig or exc)
            raise DataError(
                f"migration to {revision} failed, nothing was applied: {reason}"
            ) from exc
        connection.commit()
        after = current_revision(connection)
    return before, after


def downgrade(url: str, revision: str) -> None:
    config = alembic_config()
    with engine_for(url).connect() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)
        connection.commit()
