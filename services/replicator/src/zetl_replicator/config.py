"""The replicator's settings, declared with zetl.settings' typed spec (one ``NAME_FILE`` rule,
one set of parsers for every service): each field names its environment variable and how its text
is read, so a default lives in one place, the field's own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from zetl.errors import ConfigError
from zetl.settings import (
    EnvSpec,
    Settings,
    identifier,
    names,
    number,
    port,
    setting,
    whole,
)
from zetl_replicator.sync.datafilter import DataFilter, from_include_patterns
from zetl_replicator.sync.datafilter import parse as parse_filter


def _workers(name: str, text: str) -> int:
    return max(1, whole(name, text))


def _schemas(name: str, text: str) -> tuple[str, ...]:
    schemas = names(name, text)
    if not schemas:
        raise ConfigError(f"{name}={text!r} names no schema (e.g. public,sales)")
    return schemas


def _data_filter(name: str, text: str) -> str:
    text = text.strip()
    if text:
        parse_filter(text)  # a bad filter is a config error now, not at the first use
    return text


@dataclass(frozen=True)
class ReplicatorConfig(EnvSpec):
    """Where to replicate from and to, what, and how to batch.

    ``data_filter`` is zero-ETL's data filter, in AWS's syntax (``datafilter``); with it, every
    schema of the source is looked at. Without it, every table of ``schemas``. ``include``
    (``schema.table`` patterns) is the older form of the filter.
    """

    # From the settings every service shares (zetl.settings)
    source_url: str
    warehouse_url: str
    replica_database: str
    slot: str = setting("ZETL_SLOT", "zetl_replicator", identifier)
    publication: str = setting("ZETL_PUBLICATION", "zetl_publication", identifier)
    schemas: tuple[str, ...] = setting("ZETL_SCHEMAS", ("public",), _schemas)
    include: tuple[str, ...] = setting("ZETL_INCLUDE", (), names)
    data_filter: str = setting("ZETL_DATA_FILTER", "", _data_filter)
    batch_max_seconds: float = setting("ZETL_BATCH_MAX_SECONDS", 0.5, number)
    # With nothing more waiting, a batch still waits this long (from its first transaction) for
    # more: under load, fewer and larger warehouse commits; the replica lags that much more.
    batch_min_seconds: float = setting("ZETL_BATCH_MIN_SECONDS", 0.05, number)
    batch_max_bytes: int = setting("ZETL_BATCH_MAX_BYTES", 64 * 1024 * 1024, whole)
    copy_workers: int = setting("ZETL_COPY_WORKERS", 2, _workers)
    discovery_interval_seconds: float = setting("ZETL_DISCOVERY_INTERVAL_SECONDS", 5.0, number)
    metrics_port: int = setting("ZETL_METRICS_PORT", 0, port)  # 0: no HTTP endpoint
    # How long a connection may carry nothing before the replicator suspects a frozen network
    # (Postgres' wal_receiver_timeout, for both sides): a silent stream asks the source for a
    # keepalive and reconnects if none comes within as long again; a statement running longer
    # is checked with the server, and broken if the server is not working on it.
    stall_seconds: float = setting("ZETL_STALL_SECONDS", 30.0, number)

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, **given: object
    ) -> ReplicatorConfig:
        settings = Settings.from_env(environ)
        return super().from_env(
            environ,
            source_url=settings.require_source(),
            warehouse_url=settings.require_warehouse(),
            replica_database=settings.replica_database,
            **given,
        )

    def table_filter(self) -> DataFilter | None:
        """The data filter tables are chosen by (None: every table of ``schemas``)."""
        if self.data_filter:
            return parse_filter(self.data_filter)
        if self.include:
            return from_include_patterns(self.include)
        return None

    @property
    def scope(self) -> tuple[str, ...] | None:
        """The schemas to look in: None (all) when a data filter chooses."""
        return None if self.data_filter else self.schemas
