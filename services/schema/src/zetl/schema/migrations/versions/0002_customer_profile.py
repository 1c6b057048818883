"""Customer profile: the player's display name and email (personal data, erasable).

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("customer", sa.Column("display_name", sa.String(200), nullable=True))
    op.add_column("customer", sa.Column("email", sa.String(320), nullable=True))


def downgrade() -> None:
    op.drop_column("customer", "email")
    op.drop_column("customer", "display_name")
