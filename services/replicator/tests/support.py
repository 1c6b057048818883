"""Helpers the replicator's tests share: statements and queries in one go, the replica's
tables and states as tests read them, the real command line, and a replicator process.

Test modules import helpers from here, never from each other; the cross-service ones (waiting
for a condition, a replicator in a thread) are in ``tests.support``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import psycopg2
import psycopg2.errors

from tests.support import wait_for
from zetl_replicator.config import ReplicatorConfig
from zetl_replicator.source.tables import ColumnInfo, TableInfo

Query = Callable[[str], list]  # type: ignore[type-arg]

# A table for tests that need no database: folding and the destination's statements.
T = TableInfo(
    "public",
    "t",
    (
        ColumnInfo("id", "integer", "int4", True),
        ColumnInfo("v", "text", "text", False),
        ColumnInfo("n", "numeric(12,2)", "numeric", False),
    ),
    ("id",),
)


def execute(url: str, *statements: str) -> None:
    """Run ``statements`` in autocommit, one after another."""
    conn = psycopg2.connect(url)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            for statement in statements:
                cur.execute(statement)
    finally:
        conn.close()


def rows(url: str, statement: str) -> list:  # type: ignore[type-arg]
    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute(statement)
            return cur.fetchall()
    finally:
        conn.close()


def columns(replica: Query, table: str) -> list[tuple[str, str]]:
    """The replica table's columns and their types, in order (``table``: schema.table)."""
    return [
        (r[0], r[1])
        for r in replica(
            "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute"
            f" WHERE attrelid = '{table}'::regclass AND attnum > 0 AND NOT attisdropped"
            " ORDER BY attnum"
        )
    ]


def copied_then_streamed(url: str, replica: Query) -> None:
    """Wait for row 1 of ``public.t`` to be copied, then insert a copy of it as row 2 on the
    source (``url``) and wait for it to stream: every column's type through both paths."""
    wait_for(lambda: count(replica, "public.t") == 1, "t copied")
    names = [name for name, _ in columns(replica, "public.t")]  # the source's, in order
    assert names[0] == "id", names
    execute(url, f"INSERT INTO t SELECT 2, {', '.join(names[1:])} FROM t WHERE id = 1")
    wait_for(lambda: count(replica, "public.t") == 2, "t's second row streamed")


def states(replica: Query) -> dict[str, tuple[str, str | None]]:
    return {
        f"{r[0]}.{r[1]}": (r[2], r[3])
        for r in replica("SELECT schema_name, table_name, state, reason FROM zetl.table_state")
    }


def count(replica: Query, table: str, where: str = "true") -> int | None:
    """Rows of ``table`` in the replica matching ``where``; None while the table (or a column
    ``where`` names) is not there yet."""
    try:
        found = replica(f"SELECT count(*) FROM {table} WHERE {where}")
    except (psycopg2.errors.UndefinedTable, psycopg2.errors.UndefinedColumn):
        return None
    return int(found[0][0])


def dev(config: ReplicatorConfig, statement: str) -> list[Any]:
    """Rows of ``statement`` in the warehouse database, unqualified names resolved as an
    analyst's session resolves them (default search_path). Text comes back without the
    blank padding of the views' character(128) columns, as zetl.integration reads it."""
    return [
        tuple(v.rstrip(" ") if isinstance(v, str) else v for v in row)
        for row in rows(config.warehouse_url, statement)
    ]


def table_state(config: ReplicatorConfig, table: str) -> tuple[str, str | None] | None:
    found = dev(
        config,
        "SELECT table_state, reason FROM svv_integration_table_state"
        f" WHERE schema_name || '.' || table_name = '{table}'"
        f" AND target_database = '{config.replica_database}'",
    )
    return (found[0][0], found[0][1]) if found else None


def replica_url(config: ReplicatorConfig) -> str:
    return config.warehouse_url.rsplit("/", 1)[0] + "/" + config.replica_database


def fingerprint(url: str, table: str) -> list[tuple[object, ...]]:
    """Every row's text, sorted (by bytes: the source's collation and the replica's differ),
    hashed as one string: independent of the replicator."""
    return rows(
        url,
        "SELECT count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY t::text COLLATE \"C\"),"
        f" '')) FROM {table} t",
    )


def same_as_source(config: ReplicatorConfig, *tables: str) -> bool:
    return all(
        fingerprint(config.source_url, t) == fingerprint(replica_url(config), f"public.{t}")
        for t in tables
    )


def applied_lsn(replica_url: str) -> str | None:
    """The replica's stored progress (None: none yet, or no replica database yet)."""
    try:
        found = rows(replica_url, "SELECT applied_lsn::text FROM zetl.replication_progress")
    except psycopg2.Error:  # killed before it created the replica database
        return None
    return str(found[0][0]) if found else None


def env_for(config: ReplicatorConfig) -> dict[str, str]:
    """The environment that makes ``zetl`` commands use ``config``."""
    return {
        "SOURCE_DATABASE_URL": config.source_url,
        "WAREHOUSE_DATABASE_URL": config.warehouse_url,
        "ZETL_REPLICA_DATABASE": config.replica_database,
        "ZETL_SLOT": config.slot,
        "ZETL_PUBLICATION": config.publication,
        "ZETL_BATCH_MAX_SECONDS": str(config.batch_max_seconds),
        "ZETL_DISCOVERY_INTERVAL_SECONDS": str(config.discovery_interval_seconds),
        "ZETL_DATA_FILTER": config.data_filter,
    }


def zetl(config: ReplicatorConfig, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the real command line, as people do; output is stdout and stderr together."""
    return subprocess.run(
        [sys.executable, "-m", "zetl", *args],
        env={**os.environ, **env_for(config), "COLUMNS": "200"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=120,
        check=False,
    )


def start_replicator(
    config: ReplicatorConfig, extra_env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """``zetl replicate`` as a process of its own (to kill, say)."""
    return subprocess.Popen(
        [sys.executable, "-m", "zetl", "replicate"],
        env={**os.environ, **env_for(config), **(extra_env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


# The replica refusing every write to {table} with SQLSTATE {code}, as the server would (drop
# the trigger zetl_test_refuse to take it back).
REFUSE_WRITES = """
CREATE FUNCTION public.zetl_test_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '{message}' USING ERRCODE = '{code}';
END $$;
CREATE TRIGGER zetl_test_refuse BEFORE INSERT OR UPDATE OR DELETE ON public.{table}
    FOR EACH ROW EXECUTE FUNCTION public.zetl_test_refuse();
-- The replicator applies as a replica session: only an ALWAYS trigger fires for it.
ALTER TABLE public.{table} ENABLE ALWAYS TRIGGER zetl_test_refuse;
"""
