"""The source database schema: SQLAlchemy models (``models``) and their Alembic migrations.

``zetl migrate`` (``zetl.schema.cli``) upgrades a database to the newest migration; the loader
and the generator import the models from here, so the schema is defined in exactly one place.

The models are loaded on first use, not with the package: ``zetl migrate``'s command module
lives in this package, and importing SQLAlchemy for it would slow every zetl command.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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


def __getattr__(name: str) -> Any:
    if name in __all__:
        from zetl.schema import models

        return getattr(models, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
