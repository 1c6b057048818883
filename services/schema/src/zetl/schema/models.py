"""The normalized source model of the storefront and wallet (SQLAlchemy 2, typed).

Every table has a surrogate ``id`` (bigint identity), its source natural key unique beside it
(``G001``, ``CUST-1001``, ``T0001``) so lineage is never lost, and ``created_at``/``updated_at``
(timestamptz, UTC; a trigger bumps ``updated_at`` whenever a row really changes).

Only types Redshift zero-ETL replicates as they are: bigint/smallint, numeric(12,2) for money
(always beside a ``currency`` column), bounded varchar, date, timestamptz. Closed vocabularies
(transaction types, KYC status) are varchar with a CHECK constraint rather than Postgres ENUM
types: Redshift has no enumerated types, and a CHECK can be widened by a plain migration.

Tables in ``public`` are the replicated domain. The loader's bookkeeping (load runs,
quarantined rows, data issues) lives in the ``zetl_load`` schema: it is operational, holds raw
rows of any length (beyond Redshift's 64K varchar) and is not part of the analytics contract.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Identity,
    Index,
    MetaData,
    Numeric,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from zetl.schema.vocabulary import (
    CODE_LENGTH,
    EMAIL_LENGTH,
    KYC_STATUSES,
    NAME_LENGTH,
    TRANSACTION_TYPES,
    WALLET_TRANSACTION_TYPES,
)

LOAD_SCHEMA = "zetl_load"

NAMING_CONVENTION = {
    "pk": "pk_%(table_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
}

Money = Numeric(12, 2)
CURRENCY_CHECK = "currency ~ '^[A-Z]{3}$'"
COUNTRY_CHECK = "country_code ~ '^[A-Z]{2}$'"


def one_of(column: str, values: tuple[str, ...]) -> str:
    """A CHECK expression limiting a varchar column to a closed vocabulary."""
    quoted = ", ".join(f"'{value}'" for value in values)
    return f"{column} IN ({quoted})"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Keyed:
    """The surrogate primary key and the audit timestamps every table carries."""

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


# --- catalogue -------------------------------------------------------------------------------


class Publisher(Keyed, Base):
    """A canonical publisher; the source codes merged into it are in ``publisher_source_key``."""

    __tablename__ = "publisher"

    publisher_code: Mapped[str] = mapped_column(String(CODE_LENGTH), unique=True)
    name: Mapped[str] = mapped_column(String(NAME_LENGTH))
    country_code: Mapped[str | None] = mapped_column(String(2))

    __table_args__ = (
        CheckConstraint(COUNTRY_CHECK, name="country_code"),
        CheckConstraint("name <> ''", name="name_not_empty"),
    )


class PublisherSourceKey(Keyed, Base):
    """Lineage: every source publisher code and the canonical publisher it was merged into."""

    __tablename__ = "publisher_source_key"

    source_key: Mapped[str] = mapped_column(String(CODE_LENGTH), unique=True)
    source_name: Mapped[str] = mapped_column(String(NAME_LENGTH))
    publisher_id: Mapped[int] = mapped_column(ForeignKey("publisher.id"), index=True)


class Game(Keyed, Base):
    """A canonical game; the source codes merged into it are in ``game_source_key``."""

    __tablename__ = "game"

    game_code: Mapped[str] = mapped_column(String(CODE_LENGTH), unique=True)
    title: Mapped[str] = mapped_column(String(NAME_LENGTH))
    release_date: Mapped[date | None] = mapped_column(Date)
    genre: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (CheckConstraint("title <> ''", name="title_not_empty"),)


class GameSourceKey(Keyed, Base):
    """Lineage: every source game code and the canonical game it was merged into."""

    __tablename__ = "game_source_key"

    source_key: Mapped[str] = mapped_column(String(CODE_LENGTH), unique=True)
    source_title: Mapped[str] = mapped_column(String(NAME_LENGTH))
    game_id: Mapped[int] = mapped_column(ForeignKey("game.id"), index=True)


class GameListing(Keyed, Base):
    """A game sold on a platform under a publisher: the publisher belongs to the sale, not
    only to the game (the same game ships under different publishers on different platforms).
    """

    __tablename__ = "game_listing"

    game_id: Mapped[int] = mapped_column(ForeignKey("game.id"))
    platform: Mapped[str] = mapped_column(String(CODE_LENGTH))
    publisher_id: Mapped[int] = mapped_column(ForeignKey("publisher.id"), index=True)

    __table_args__ = (
        UniqueConstraint("game_id", "platform", "publisher_id"),
        CheckConstraint("platform <> ''", name="platform_not_empty"),
    )


# --- players ---------------------------------------------------------------------------------


class Affiliate(Keyed, Base):
    """A single-use referral code from an acquisition channel (``origin``: discord, ...).

    The customer who redeemed it points at it (``customer.referred_by_affiliate_id``, unique),
    so each code is redeemed by exactly one customer once ``redeemed_at`` is set.
    """

    __tablename__ = "affiliate"

    affiliate_code: Mapped[str] = mapped_column(String(CODE_LENGTH), unique=True)
    origin: Mapped[str] = mapped_column(String(CODE_LENGTH))
    redeemed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (CheckConstraint("origin <> '' AND origin = lower(origin)", name="origin"),)


class Customer(Keyed, Base):
    """A player of the storefront."""

    __tablename__ = "customer"

    customer_code: Mapped[str] = mapped_column(String(CODE_LENGTH), unique=True)
    # Personal data: NULL once the player exercised the right to erasure.
    display_name: Mapped[str | None] = mapped_column(String(NAME_LENGTH))
    email: Mapped[str | None] = mapped_column(String(EMAIL_LENGTH))
    country_code: Mapped[str | None] = mapped_column(String(2))
    kyc_status: Mapped[str] = mapped_column(String(16), server_default="unknown")
    kyc_approved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    signed_up_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    referred_by_affiliate_id: Mapped[int | None] = mapped_column(
        ForeignKey("affiliate.id"), unique=True
    )

    __table_args__ = (
        CheckConstraint(COUNTRY_CHECK, name="country_code"),
        CheckConstraint(one_of("kyc_status", KYC_STATUSES), name="kyc_status"),
        CheckConstraint(
            "(kyc_status = 'approved') = (kyc_approved_at IS NOT NULL)", name="kyc_approved_at"
        ),
    )


# --- money -----------------------------------------------------------------------------------


class StoreTransaction(Keyed, Base):
    """A storefront transaction header: a sale, a refund of an earlier sale, or a payout.

    ``total_amount`` is the total the source reported, kept as is even when it disagrees with
    the lines (the loader reports that as ``total_mismatch``). Payouts pay publishers (the
    publisher is on each line) and have no customer.
    """

    __tablename__ = "store_transaction"

    transaction_code: Mapped[str] = mapped_column(String(CODE_LENGTH), unique=True)
    transaction_type: Mapped[str] = mapped_column(String(8))
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    currency: Mapped[str] = mapped_column(String(3))
    total_amount: Mapped[Decimal] = mapped_column(Money)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customer.id"))
    refunded_transaction_id: Mapped[int | None] = mapped_column(
        ForeignKey("store_transaction.id"), index=True
    )

    __table_args__ = (
        # The target of the lines' composite foreign key, so lines can check signs by type.
        UniqueConstraint("id", "transaction_type", "currency"),
        Index(None, "customer_id", "occurred_at"),
        CheckConstraint(one_of("transaction_type", TRANSACTION_TYPES), name="transaction_type"),
        CheckConstraint(CURRENCY_CHECK, name="currency"),
        CheckConstraint(
            "(transaction_type = 'payout') = (customer_id IS NULL)", name="customer_by_type"
        ),
        CheckConstraint(
            "refunded_transaction_id IS NULL OR (transaction_type = 'refund'"
            " AND refunded_transaction_id <> id)",
            name="refund_link",
        ),
        CheckConstraint(
            "(transaction_type = 'sale' AND total_amount >= 0)"
            " OR (transaction_type IN ('refund', 'payout') AND total_amount <= 0)",
            name="total_sign",
        ),
    )


class StoreTransactionLine(Keyed, Base):
    """One line of a transaction: a game on a platform under a publisher, in a region.

    ``transaction_type`` and ``currency`` repeat the header's (enforced by the composite
    foreign key, cascaded on update) so the sign rules can be CHECK constraints here.
    """

    __tablename__ = "store_transaction_line"

    transaction_id: Mapped[int] = mapped_column(BigInteger)
    line_number: Mapped[int] = mapped_column(SmallInteger)
    transaction_type: Mapped[str] = mapped_column(String(8))
    currency: Mapped[str] = mapped_column(String(3))
    game_id: Mapped[int] = mapped_column(BigInteger)
    platform: Mapped[str] = mapped_column(String(CODE_LENGTH))
    publisher_id: Mapped[int] = mapped_column(BigInteger)
    region: Mapped[str] = mapped_column(String(16))
    gross_amount: Mapped[Decimal] = mapped_column(Money)
    fee_amount: Mapped[Decimal] = mapped_column(Money)
    net_amount: Mapped[Decimal] = mapped_column(Money)

    __table_args__ = (
        UniqueConstraint("transaction_id", "line_number"),
        ForeignKeyConstraint(
            ["transaction_id", "transaction_type", "currency"],
            [
                "store_transaction.id",
                "store_transaction.transaction_type",
                "store_transaction.currency",
            ],
            onupdate="CASCADE",
            ondelete="CASCADE",
        ),
        ForeignKeyConstraint(
            ["game_id", "platform", "publisher_id"],
            ["game_listing.game_id", "game_listing.platform", "game_listing.publisher_id"],
        ),
        Index(None, "game_id", "platform", "publisher_id"),
        CheckConstraint("line_number > 0", name="line_number_positive"),
        CheckConstraint("region <> ''", name="region_not_empty"),
        CheckConstraint("net_amount = gross_amount - fee_amount", name="net_is_gross_minus_fee"),
        CheckConstraint(
            "(transaction_type = 'sale' AND gross_amount >= 0 AND fee_amount >= 0)"
            " OR (transaction_type = 'refund' AND gross_amount <= 0 AND fee_amount <= 0)"
            " OR (transaction_type = 'payout' AND gross_amount <= 0 AND fee_amount = 0)",
            name="sign_by_type",
        ),
    )


class WalletTransaction(Keyed, Base):
    """Money a customer moves into (deposit, positive) or out of (withdrawal, negative) the
    wallet, so ``sum(amount)`` per customer and currency is the balance."""

    __tablename__ = "wallet_transaction"

    wallet_transaction_code: Mapped[str] = mapped_column(String(CODE_LENGTH), unique=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customer.id"), index=True)
    transaction_type: Mapped[str] = mapped_column(String(16))
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    currency: Mapped[str] = mapped_column(String(3))
    amount: Mapped[Decimal] = mapped_column(Money)

    __table_args__ = (
        CheckConstraint(
            one_of("transaction_type", WALLET_TRANSACTION_TYPES), name="transaction_type"
        ),
        CheckConstraint(CURRENCY_CHECK, name="currency"),
        CheckConstraint(
            "(transaction_type = 'deposit' AND amount > 0)"
            " OR (transaction_type = 'withdrawal' AND amount < 0)",
            name="sign_by_type",
        ),
    )


# --- loader bookkeeping (schema zetl_load, not replicated) -----------------------------------


class LoadRun(Keyed, Base):
    """One ``zetl load``: committed together with the data it loaded, or not at all."""

    __tablename__ = "load_run"
    __table_args__ = ({"schema": LOAD_SCHEMA},)

    source_dir: Mapped[str] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    rows_read: Mapped[int] = mapped_column(BigInteger, server_default="0")
    rows_loaded: Mapped[int] = mapped_column(BigInteger, server_default="0")
    rows_merged: Mapped[int] = mapped_column(BigInteger, server_default="0")
    rows_quarantined: Mapped[int] = mapped_column(BigInteger, server_default="0")
    issue_count: Mapped[int] = mapped_column(BigInteger, server_default="0")
    # sha256 over the export's file names and contents: the same export is never applied twice
    # unless asked (zetl load --reload).
    export_checksum: Mapped[str | None] = mapped_column(String(64), index=True)


class Quarantine(Keyed, Base):
    """An input row that could not be loaded, kept verbatim with where it came from and why."""

    __tablename__ = "quarantine"
    __table_args__ = (
        UniqueConstraint("load_run_id", "file_name", "line_number"),
        {"schema": LOAD_SCHEMA},
    )

    load_run_id: Mapped[int] = mapped_column(ForeignKey(f"{LOAD_SCHEMA}.load_run.id"))
    file_name: Mapped[str] = mapped_column(Text)
    line_number: Mapped[int] = mapped_column(BigInteger)
    raw_content: Mapped[str] = mapped_column(Text)
    reason_code: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)


class DataIssue(Keyed, Base):
    """Something a load noticed about the data, under a stable ``code`` (``invalid_date``,
    ``duplicate_merged``, ``total_mismatch``, ...), with the source id, file and line."""

    __tablename__ = "data_issue"
    __table_args__ = (
        Index(None, "load_run_id", "code"),
        {"schema": LOAD_SCHEMA},
    )

    load_run_id: Mapped[int] = mapped_column(ForeignKey(f"{LOAD_SCHEMA}.load_run.id"))
    code: Mapped[str] = mapped_column(String(64))
    entity: Mapped[str] = mapped_column(String(64))
    source_id: Mapped[str | None] = mapped_column(Text)
    file_name: Mapped[str] = mapped_column(Text)
    line_number: Mapped[int | None] = mapped_column(BigInteger)
    detail: Mapped[str] = mapped_column(Text)
