"""What the dashboard reads from the warehouse's dev database, and nothing else.

Every query reads a mart (``analytics``) or a monitoring relation, never the replica's raw
tables, through a read-only session. A relation that does not exist yet (the first
transform has not run, no checkpoint yet) is an empty state, not an error: ``Result.missing``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import astuple, dataclass, field, fields
from typing import TYPE_CHECKING, Any

import pandas as pd

from zetl import integration
from zetl.db import connect
from zetl.errors import ConfigError
from zetl.settings import EnvSpec, Settings, integer, setting

if TYPE_CHECKING:
    from psycopg2.extensions import cursor

DEFAULT_REFRESH_SECONDS = 30


@dataclass(frozen=True)
class Result:
    """Rows of one query, or why there are none yet (``missing`` names the absent relation)."""

    frame: pd.DataFrame = field(default_factory=pd.DataFrame)
    missing: str | None = None

    @property
    def empty(self) -> bool:
        return self.missing is not None or self.frame.empty


def _refresh(name: str, value: str) -> int:
    return max(5, integer(name, value))  # a floor: many browsers must not hammer the warehouse


def _currency(name: str, value: str) -> str:
    code = value.strip().upper()
    if len(code) != 3 or not code.isalpha():
        raise ConfigError(
            f"{name} must be a three-letter currency code (USD, EUR, ...), not {value!r}"
        )
    return code


@dataclass(frozen=True)
class DashboardSettings(EnvSpec):
    refresh_seconds: int = setting(
        "ZETL_DASHBOARD_REFRESH_SECONDS", DEFAULT_REFRESH_SECONDS, _refresh
    )
    # The currency pages open on; unset (or absent from the data): the one with most revenue.
    currency: str | None = setting("ZETL_DASHBOARD_CURRENCY", None, _currency)


def refresh_seconds(environ: dict[str, str] | None = None) -> int:
    return DashboardSettings.from_env(environ).refresh_seconds


def default_currency(environ: dict[str, str] | None = None) -> str | None:
    return DashboardSettings.from_env(environ).currency


def warehouse_url() -> str:
    return Settings.from_env().require_warehouse()


def read(url: str, relations: tuple[str, ...], query: str, params: tuple[Any, ...] = ()) -> Result:
    """Run ``query`` in a read-only transaction once every relation in ``relations`` exists."""
    conn = connect(url, application_name="zetl-dashboard", connect_timeout=5)
    try:
        conn.set_session(readonly=True, autocommit=False)
        with conn.cursor() as cur:
            for relation in relations:
                cur.execute("SELECT to_regclass(%s)", (relation,))
                row = cur.fetchone()
                if row is None or row[0] is None:
                    return Result(missing=relation)
            cur.execute(query, params)
            columns = [c.name for c in cur.description or ()]
            return Result(frame=pd.DataFrame(cur.fetchall(), columns=columns))
    finally:
        conn.rollback()
        conn.close()


def read_table_states(url: str) -> Result:
    """svv_integration_table_state of every integration."""
    return _read_view(
        url, integration.read_tables, integration.TABLE_STATE_VIEW, integration.TableStatus
    )


def read_integrations(url: str) -> Result:
    """svv_integration of every integration: its state and its lag as of now, so a stopped
    replicator shows as ErrorState with a growing lag (as ``zetl status`` says)."""
    return _read_view(
        url,
        integration.read_integrations,
        integration.INTEGRATION_VIEW,
        integration.IntegrationStatus,
    )


def _read_view(
    url: str,
    reader: Callable[[cursor], Sequence[Any] | None],
    view: str,
    row: type[Any],  # the dataclass the reader returns
) -> Result:
    """The ``row`` dataclasses one of zetl.integration's readers returns, as a frame, read in a
    read-only transaction like every other read; ``view`` is missing when the reader finds
    no view."""
    conn = connect(url, application_name="zetl-dashboard", connect_timeout=5)
    try:
        conn.set_session(readonly=True, autocommit=False)
        with conn.cursor() as cur:
            found = reader(cur)
    finally:
        conn.rollback()
        conn.close()
    if found is None:
        return Result(missing=view)
    columns = [f.name for f in fields(row)]
    return Result(frame=pd.DataFrame([astuple(r) for r in found], columns=columns))


def numeric(frame: pd.DataFrame, *columns: str) -> pd.DataFrame:
    """Decimal columns (numeric in Postgres) as floats, which charts can plot."""
    for column in columns:
        if column in frame:
            frame[column] = pd.to_numeric(frame[column], errors="coerce")
    return frame
