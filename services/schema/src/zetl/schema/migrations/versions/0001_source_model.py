"""The source model (public, replicated) and the loader's bookkeeping (zetl_load).

Revision ID: 0001
Revises:
Create Date: 2026-11-21 23:05:45.497450
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

LOAD_SCHEMA = "zetl_load"  # frozen here: a migration never changes with the models

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# Every table keeps updated_at current through this trigger, whoever writes (loader,
# generator, a person in psql); a no-op UPDATE keeps the old value, so idempotent writers never
# look like changes to the replicator.
SET_UPDATED_AT = """
CREATE FUNCTION public.set_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW IS DISTINCT FROM OLD THEN
        NEW.updated_at := now();
    END IF;
    RETURN NEW;
END
$$
"""

TABLES = [
    ("public", "publisher"),
    ("public", "publisher_source_key"),
    ("public", "game"),
    ("public", "game_source_key"),
    ("public", "game_listing"),
    ("public", "affiliate"),
    ("public", "customer"),
    ("public", "store_transaction"),
    ("public", "store_transaction_line"),
    ("public", "wallet_transaction"),
    (LOAD_SCHEMA, "load_run"),
    (LOAD_SCHEMA, "quarantine"),
    (LOAD_SCHEMA, "data_issue"),
]


def upgrade() -> None:
    op.execute(f"CREATE SCHEMA IF NOT EXISTS {LOAD_SCHEMA}")
    create_tables()
    op.execute(SET_UPDATED_AT)
    for schema, table in TABLES:
        op.execute(
            f"CREATE TRIGGER set_updated_at BEFORE UPDATE ON {schema}.{table}"
            " FOR EACH ROW EXECUTE FUNCTION public.set_updated_at()"
        )


def create_tables() -> None:
    op.create_table(
        "affiliate",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("affiliate_code", sa.String(length=32), nullable=False),
        sa.Column("origin", sa.String(length=32), nullable=False),
        sa.Column("redeemed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "origin <> '' AND origin = lower(origin)", name=op.f("ck_affiliate_origin")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_affiliate")),
        sa.UniqueConstraint("affiliate_code", name=op.f("uq_affiliate_affiliate_code")),
    )
    op.create_table(
        "game",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("game_code", sa.String(length=32), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("release_date", sa.Date(), nullable=True),
        sa.Column("genre", sa.String(length=64), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("title <> ''", name=op.f("ck_game_title_not_empty")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_game")),
        sa.UniqueConstraint("game_code", name=op.f("uq_game_game_code")),
    )
    op.create_table(
        "publisher",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("publisher_code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("country_code", sa.String(length=2), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("country_code ~ '^[A-Z]{2}$'", name=op.f("ck_publisher_country_code")),
        sa.CheckConstraint("name <> ''", name=op.f("ck_publisher_name_not_empty")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_publisher")),
        sa.UniqueConstraint("publisher_code", name=op.f("uq_publisher_publisher_code")),
    )
    op.create_table(
        "load_run",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("source_dir", sa.Text(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("rows_read", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("rows_loaded", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("rows_merged", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("rows_quarantined", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("issue_count", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_load_run")),
        schema=LOAD_SCHEMA,
    )
    op.create_table(
        "customer",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("customer_code", sa.String(length=32), nullable=False),
        sa.Column("country_code", sa.String(length=2), nullable=True),
        sa.Column("kyc_status", sa.String(length=16), server_default="unknown", nullable=False),
        sa.Column("kyc_approved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("signed_up_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("referred_by_affiliate_id", sa.BigInteger(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "(kyc_status = 'approved') = (kyc_approved_at IS NOT NULL)",
            name=op.f("ck_customer_kyc_approved_at"),
        ),
        sa.CheckConstraint("country_code ~ '^[A-Z]{2}$'", name=op.f("ck_customer_country_code")),
        sa.CheckConstraint(
            "kyc_status IN ('unknown', 'pending', 'approved', 'rejected')",
            name=op.f("ck_customer_kyc_status"),
        ),
        sa.ForeignKeyConstraint(
            ["referred_by_affiliate_id"],
            ["affiliate.id"],
            name=op.f("fk_customer_referred_by_affiliate_id"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customer")),
        sa.UniqueConstraint("customer_code", name=op.f("uq_customer_customer_code")),
        sa.UniqueConstraint(
            "referred_by_affiliate_id", name=op.f("uq_customer_referred_by_affiliate_id")
        ),
    )
    op.create_table(
        "game_listing",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("game_id", sa.BigInteger(), nullable=False),
        sa.Column("platform", sa.String(length=32), nullable=False),
        sa.Column("publisher_id", sa.BigInteger(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("platform <> ''", name=op.f("ck_game_listing_platform_not_empty")),
        sa.ForeignKeyConstraint(["game_id"], ["game.id"], name=op.f("fk_game_listing_game_id")),
        sa.ForeignKeyConstraint(
            ["publisher_id"], ["publisher.id"], name=op.f("fk_game_listing_publisher_id")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_game_listing")),
        sa.UniqueConstraint(
            "game_id",
            "platform",
            "publisher_id",
            name=op.f("uq_game_listing_game_id_platform_publisher_id"),
        ),
    )
    op.create_index(
        op.f("ix_game_listing_publisher_id"), "game_listing", ["publisher_id"], unique=False
    )
    op.create_table(
        "game_source_key",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("source_key", sa.String(length=32), nullable=False),
        sa.Column("source_title", sa.String(length=200), nullable=False),
        sa.Column("game_id", sa.BigInteger(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(["game_id"], ["game.id"], name=op.f("fk_game_source_key_game_id")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_game_source_key")),
        sa.UniqueConstraint("source_key", name=op.f("uq_game_source_key_source_key")),
    )
    op.create_index(
        op.f("ix_game_source_key_game_id"), "game_source_key", ["game_id"], unique=False
    )
    op.create_table(
        "publisher_source_key",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("source_key", sa.String(length=32), nullable=False),
        sa.Column("source_name", sa.String(length=200), nullable=False),
        sa.Column("publisher_id", sa.BigInteger(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["publisher_id"], ["publisher.id"], name=op.f("fk_publisher_source_key_publisher_id")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_publisher_source_key")),
        sa.UniqueConstraint("source_key", name=op.f("uq_publisher_source_key_source_key")),
    )
    op.create_index(
        op.f("ix_publisher_source_key_publisher_id"),
        "publisher_source_key",
        ["publisher_id"],
        unique=False,
    )
    op.create_table(
        "data_issue",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("load_run_id", sa.BigInteger(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("entity", sa.String(length=64), nullable=False),
        sa.Column("source_id", sa.Text(), nullable=True),
        sa.Column("file_name", sa.Text(), nullable=False),
        sa.Column("line_number", sa.BigInteger(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["load_run_id"], [f"{LOAD_SCHEMA}.load_run.id"], name=op.f("fk_data_issue_load_run_id")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_data_issue")),
        schema=LOAD_SCHEMA,
    )
    op.create_index(
        op.f("ix_data_issue_load_run_id_code"),
        "data_issue",
        ["load_run_id", "code"],
        unique=False,
        schema=LOAD_SCHEMA,
    )
    op.create_table(
        "quarantine",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("load_run_id", sa.BigInteger(), nullable=False),
        sa.Column("file_name", sa.Text(), nullable=False),
        sa.Column("line_number", sa.BigInteger(), nullable=False),
        sa.Column("raw_content", sa.Text(), nullable=False),
        sa.Column("reason_code", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["load_run_id"], [f"{LOAD_SCHEMA}.load_run.id"], name=op.f("fk_quarantine_load_run_id")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quarantine")),
        sa.UniqueConstraint(
            "load_run_id",
            "file_name",
            "line_number",
            name=op.f("uq_quarantine_load_run_id_file_name_line_number"),
        ),
        schema=LOAD_SCHEMA,
    )
    op.create_table(
        "store_transaction",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("transaction_code", sa.String(length=32), nullable=False),
        sa.Column("transaction_type", sa.String(length=8), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("total_amount", sa.Numeric(precision=12, scale=2), nullable=False),
        sa.Column("customer_id", sa.BigInteger(), nullable=True),
        sa.Column("refunded_transaction_id", sa.BigInteger(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "(transaction_type = 'payout') = (customer_id IS NULL)",
            name=op.f("ck_store_transaction_customer_by_type"),
        ),
        sa.CheckConstraint(
            "(transaction_type = 'sale' AND total_amount >= 0)"
            " OR (transaction_type IN ('refund', 'payout') AND total_amount <= 0)",
            name=op.f("ck_store_transaction_total_sign"),
        ),
        sa.CheckConstraint("currency ~ '^[A-Z]{3}$'", name=op.f("ck_store_transaction_currency")),
        sa.CheckConstraint(
            "refunded_transaction_id IS NULL"
            " OR (transaction_type = 'refund' AND refunded_transaction_id <> id)",
            name=op.f("ck_store_transaction_refund_link"),
        ),
        sa.CheckConstraint(
            "transaction_type IN ('sale', 'refund', 'payout')",
            name=op.f("ck_store_transaction_transaction_type"),
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customer.id"], name=op.f("fk_store_transaction_customer_id")
        ),
        sa.ForeignKeyConstraint(
            ["refunded_transaction_id"],
            ["store_transaction.id"],
            name=op.f("fk_store_transaction_refunded_transaction_id"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_store_transaction")),
        sa.UniqueConstraint(
            "id",
            "transaction_type",
            "currency",
            name=op.f("uq_store_transaction_id_transaction_type_currency"),
        ),
        sa.UniqueConstraint("transaction_code", name=op.f("uq_store_transaction_transaction_code")),
    )
    op.create_index(
        op.f("ix_store_transaction_customer_id_occurred_at"),
        "store_transaction",
        ["customer_id", "occurred_at"],
        unique=False,
    )
    op.create_index(
        op.f("ix_store_transaction_refunded_transaction_id"),
        "store_transaction",
        ["refunded_transaction_id"],
        unique=False,
    )
    op.create_table(
        "wallet_transaction",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("wallet_transaction_code", sa.String(length=32), nullable=False),
        sa.Column("customer_id", sa.BigInteger(), nullable=False),
        sa.Column("transaction_type", sa.String(length=16), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("amount", sa.Numeric(precision=12, scale=2), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "(transaction_type = 'deposit' AND amount > 0)"
            " OR (transaction_type = 'withdrawal' AND amount < 0)",
            name=op.f("ck_wallet_transaction_sign_by_type"),
        ),
        sa.CheckConstraint("currency ~ '^[A-Z]{3}$'", name=op.f("ck_wallet_transaction_currency")),
        sa.CheckConstraint(
            "transaction_type IN ('deposit', 'withdrawal')",
            name=op.f("ck_wallet_transaction_transaction_type"),
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customer.id"], name=op.f("fk_wallet_transaction_customer_id")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wallet_transaction")),
        sa.UniqueConstraint(
            "wallet_transaction_code", name=op.f("uq_wallet_transaction_wallet_transaction_code")
        ),
    )
    op.create_index(
        op.f("ix_wallet_transaction_customer_id"),
        "wallet_transaction",
        ["customer_id"],
        unique=False,
    )
    op.create_table(
        "store_transaction_line",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("transaction_id", sa.BigInteger(), nullable=False),
        sa.Column("line_number", sa.SmallInteger(), nullable=False),
        sa.Column("transaction_type", sa.String(length=8), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("game_id", sa.BigInteger(), nullable=False),
        sa.Column("platform", sa.String(length=32), nullable=False),
        sa.Column("publisher_id", sa.BigInteger(), nullable=False),
        sa.Column("region", sa.String(length=16), nullable=False),
        sa.Column("gross_amount", sa.Numeric(precision=12, scale=2), nullable=False),
        sa.Column("fee_amount", sa.Numeric(precision=12, scale=2), nullable=False),
        sa.Column("net_amount", sa.Numeric(precision=12, scale=2), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "(transaction_type = 'sale' AND gross_amount >= 0 AND fee_amount >= 0)"
            " OR (transaction_type = 'refund' AND gross_amount <= 0 AND fee_amount <= 0)"
            " OR (transaction_type = 'payout' AND gross_amount <= 0 AND fee_amount = 0)",
            name=op.f("ck_store_transaction_line_sign_by_type"),
        ),
        sa.CheckConstraint("region <> ''", name=op.f("ck_store_transaction_line_region_not_empty")),
        sa.CheckConstraint(
            "line_number > 0", name=op.f("ck_store_transaction_line_line_number_positive")
        ),
        sa.CheckConstraint(
            "net_amount = gross_amount - fee_amount",
            name=op.f("ck_store_transaction_line_net_is_gross_minus_fee"),
        ),
        sa.ForeignKeyConstraint(
            ["game_id", "platform", "publisher_id"],
            ["game_listing.game_id", "game_listing.platform", "game_listing.publisher_id"],
            name=op.f("fk_store_transaction_line_game_id"),
        ),
        sa.ForeignKeyConstraint(
            ["transaction_id", "transaction_type", "currency"],
            [
                "store_transaction.id",
                "store_transaction.transaction_type",
                "store_transaction.currency",
            ],
            name=op.f("fk_store_transaction_line_transaction_id"),
            onupdate="CASCADE",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_store_transaction_line")),
        sa.UniqueConstraint(
            "transaction_id",
            "line_number",
            name=op.f("uq_store_transaction_line_transaction_id_line_number"),
        ),
    )
    op.create_index(
        op.f("ix_store_transaction_line_game_id_platform_publisher_id"),
        "store_transaction_line",
        ["game_id", "platform", "publisher_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(
        op.f("ix_store_transaction_line_game_id_platform_publisher_id"),
        table_name="store_transaction_line",
    )
    op.drop_table("store_transaction_line")
    op.drop_index(op.f("ix_wallet_transaction_customer_id"), table_name="wallet_transaction")
    op.drop_table("wallet_transaction")
    op.drop_index(
        op.f("ix_store_transaction_refunded_transaction_id"), table_name="store_transaction"
    )
    op.drop_index(
        op.f("ix_store_transaction_customer_id_occurred_at"), table_name="store_transaction"
    )
    op.drop_table("store_transaction")
    op.drop_table("quarantine", schema=LOAD_SCHEMA)
    op.drop_index(
        op.f("ix_data_issue_load_run_id_code"), table_name="data_issue", schema=LOAD_SCHEMA
    )
    op.drop_table("data_issue", schema=LOAD_SCHEMA)
    op.drop_index(op.f("ix_publisher_source_key_publisher_id"), table_name="publisher_source_key")
    op.drop_table("publisher_source_key")
    op.drop_index(op.f("ix_game_source_key_game_id"), table_name="game_source_key")
    op.drop_table("game_source_key")
    op.drop_index(op.f("ix_game_listing_publisher_id"), table_name="game_listing")
    op.drop_table("game_listing")
    op.drop_table("customer")
    op.drop_table("load_run", schema=LOAD_SCHEMA)
    op.drop_table("publisher")
    op.drop_table("game")
    op.drop_table("affiliate")
    op.execute("DROP FUNCTION public.set_updated_at()")
