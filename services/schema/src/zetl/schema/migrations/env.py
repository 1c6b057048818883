"""Alembic environment: always online, on the connection ``zetl.schema.migrate`` hands over.

There is no alembic.ini: ``zetl.schema.migrate`` configures Alembic in code, so ``zetl migrate``
works from an installed wheel in any directory.
"""

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection

from zetl.schema.models import LOAD_SCHEMA, Base


def run_migrations(connection: Connection) -> None:
    # Alembic's own version table lives with the loader's bookkeeping, outside the
    # replicated ``public`` schema, so ``public`` holds only domain tables.
    connection.execute(text(f"CREATE SCHEMA IF NOT EXISTS {LOAD_SCHEMA}"))
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        version_table_schema=LOAD_SCHEMA,
        include_schemas=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through zetl.schema.migrate, which supplies a connection")
run_migrations(connection)
