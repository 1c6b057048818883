"""Load runs remember which export they applied: a checksum of its files, so a rerun of the
same export (a second ``docker compose up``) is recognised and skipped instead of rolling live
data back to the export's values.

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LOAD_SCHEMA = "zetl_load"


def upgrade() -> None:
    op.add_column(
        "load_run", sa.Column("export_checksum", sa.String(64), nullable=True), schema=LOAD_SCHEMA
    )
    op.create_index(
        op.f("ix_load_run_export_checksum"), "load_run", ["export_checksum"], schema=LOAD_SCHEMA
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_load_run_export_checksum"), table_name="load_run", schema=LOAD_SCHEMA)
    op.drop_column("load_run", "export_checksum", schema=LOAD_SCHEMA)
