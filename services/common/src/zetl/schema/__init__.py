"""The source database schema: SQLAlchemy models (``models``) and their Alembic migrations.

``zetl migrate`` (``zetl.schema.cli``) upgrades a database to the newest migration; the loader
and the generator import the models from here, so the schema is defined in exactly one place.
"""

from zetl.schema.models import (
    LOAD_SCHEMA,
    Affiliate,
    Base,
    Customer,
    DataIssue,
    Game,
    GameListing,
    GameSourceKey,
    LoadRun,
    Publisher,
    PublisherSourceKey,
    Quarantine,
    StoreTransaction,
    StoreTransactionLine,
    WalletTransaction,
)

__all__ = [
    "LOAD_SCHEMA",
    "Affiliate",
    "Base",
    "Customer",
    "DataIssue",
    "Game",
    "GameListing",
    "GameSourceKey",
    "LoadRun",
    "Publisher",
    "PublisherSourceKey",
    "Quarantine",
    "StoreTransaction",
    "StoreTransactionLine",
    "WalletTransaction",
]
