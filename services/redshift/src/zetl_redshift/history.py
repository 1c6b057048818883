"""SYS_QUERY_HISTORY: every statement the front relays, recorded in the warehouse.

The session hands a :class:`QueryRecord` to :meth:`QueryHistory.record` when a statement ends
(a list append, nothing more); a background task writes what gathered every
``ZETL_REDSHIFT_HISTORY_FLUSH_SECONDS`` in one INSERT, over the front's own connection, to
``zetl_redshift.query_history`` of the front's own database. ``zetl_redshift.sys_query_history``
shows it under Redshift's column names; as on Redshift, a user sees only their own queries,
a superuser all of them.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import astuple, dataclass
from datetime import datetime
from typing import Any

import psycopg2
import psycopg2.extensions
import psycopg2.extras

from zetl.db import connect, redact
from zetl.errors import first_line

log = logging.getLogger(__name__)

# Records waiting beyond this while the warehouse does not answer are dropped (and counted in
# the log): the front keeps relaying queries whatever happens to its history.
MAX_PENDING = 100_000

INSTALL_SQL = """
SELECT pg_advisory_xact_lock(hashtext('zetl_redshift.history'));
CREATE SCHEMA IF NOT EXISTS zetl_redshift;
GRANT USAGE ON SCHEMA zetl_redshift TO PUBLIC;
CREATE TABLE IF NOT EXISTS zetl_redshift.query_history (
    query_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_name text NOT NULL,
    database_name text NOT NULL,
    session_id integer NOT NULL,
    query_type text NOT NULL,
    query_text text NOT NULL,
    start_time timestamp NOT NULL,  -- UTC, as Redshift's timestamps are
    end_time timestamp NOT NULL,
    status text NOT NULL,  -- success, failed, canceled
    returned_rows bigint,
    error_message text
);
CREATE INDEX IF NOT EXISTS query_history_start_time
    ON zetl_redshift.query_history (start_time);
REVOKE ALL ON zetl_redshift.query_history FROM PUBLIC;
CREATE OR REPLACE VIEW zetl_redshift.sys_query_history AS
SELECT r.oid::integer AS user_id,
       h.query_id,
       'default'::varchar(320) AS query_label,
       NULL::bigint AS transaction_id,
       h.session_id,
       h.database_name::varchar(128) AS database_name,
       h.query_type::varchar(32) AS query_type,
       h.status::varchar(10) AS status,
       false AS result_cache_hit,
       h.start_time,
       h.end_time,
       (extract(epoch FROM h.end_time - h.start_time) * 1000000)::bigint AS elapsed_time,
       0::bigint AS queue_time,
       (extract(epoch FROM h.end_time - h.start_time) * 1000000)::bigint AS execution_time,
       left(h.error_message, 512)::varchar(512) AS error_message,
       h.returned_rows,
       NULL::bigint AS returned_bytes,
       left(h.query_text, 4000)::varchar(4000) AS query_text,
       'zetl'::varchar(256) AS redshift_version,
       NULL::varchar(150) AS usage_limit,
       'primary'::varchar(32) AS compute_type,
       0::bigint AS compile_time,
       0::bigint AS planning_time,
       0::bigint AS lock_wait_time
FROM zetl_redshift.query_history h
LEFT JOIN pg_catalog.pg_roles r ON r.rolname = h.user_name
WHERE h.user_name = current_user
   OR (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user);
GRANT SELECT ON zetl_redshift.sys_query_history TO PUBLIC;
"""

INSERT_SQL = """
INSERT INTO zetl_redshift.query_history (user_name, database_name, session_id, query_type,
    query_text, start_time, end_time, status, returned_rows, error_message) VALUES %s
"""


@dataclass(frozen=True)
class QueryRecord:
    user_name: str
    database_name: str
    session_id: int
    query_text: str
    start_time: datetime  # UTC, naive
    end_time: datetime
    status: str
    returned_rows: int | None
    error_message: str | None


def install(conn: psycopg2.extensions.connection) -> None:
    """Create the history table and its view (idempotent; concurrent installs wait)."""
    with conn, conn.cursor() as cur:
        cur.execute(INSTALL_SQL)


_FIRST_WORDS = re.compile(r"^\s*(?:--[^\n]*\n\s*|/\*.*?\*/\s*)*(\w+)(?:\s+(\w+))?", re.DOTALL)
_DDL = {"CREATE", "ALTER", "DROP", "TRUNCATE", "COMMENT", "GRANT", "REVOKE"}
_UTILITY = {"BEGIN", "START", "COMMIT", "END", "ROLLBACK", "SET", "RESET", "SHOW", "ABORT"}


def query_type(text: str) -> str:
    """Redshift's query_type of a statement: SELECT, INSERT, ..., DDL, CTAS, UTILITY, OTHER."""
    found = _FIRST_WORDS.match(text)
    if not found:
        return "OTHER"
    word = found.group(1).upper()
    if word in ("SELECT", "WITH", "VALUES"):
        return "SELECT"
    if word in ("INSERT", "UPDATE", "DELETE", "MERGE", "COPY", "UNLOAD"):
        return word
    if word == "CREATE" and re.search(r"\bAS\s+(SELECT|WITH)\b", text, re.IGNORECASE):
        return "CTAS"
    if word in _DDL:
        return "DDL"
    if word in _UTILITY:
        return "UTILITY"
    return "OTHER"


class QueryHistory:
    """Records gathered in memory, written in batches by :meth:`run` (a task of the front)."""

    def __init__(self, url: str, flush_seconds: float) -> None:
        self._url = url
        self._flush_seconds = flush_seconds
        self._pending: list[QueryRecord] = []
        self._dropped = 0
        self._conn: psycopg2.extensions.connection | None = None

    def record(self, entry: QueryRecord) -> None:
        if len(self._pending) >= MAX_PENDING:
            self._dropped += 1
            return
        self._pending.append(entry)

    async def run(self) -> None:
        """Write what gathered, every flush interval, until cancelled (then once more)."""
        try:
            while True:
                await asyncio.sleep(self._flush_seconds)
                await self.flush()
        finally:
            await self.flush()
            if self._conn is not None:
                self._conn.close()

    async def flush(self) -> None:
        batch, self._pending = self._pending, []
        if self._dropped:
            log.warning("query history dropped records", extra={"records": self._dropped})
            self._dropped = 0
        if batch:
            await asyncio.to_thread(self._write, batch)

    def _write(self, batch: list[QueryRecord]) -> None:
        rows: list[tuple[Any, ...]] = [
            (r.user_name, r.database_name, r.session_id, query_type(r.query_text), *astuple(r)[3:])
            for r in batch
        ]
        try:
            if self._conn is None or self._conn.closed:
                self._conn = connect(self._url)
            with self._conn, self._conn.cursor() as cur:
                psycopg2.extras.execute_values(cur, INSERT_SQL, rows, page_size=1000)
        except Exception as exc:  # the history must never stop the front
            log.warning(
                "query history not written",
                extra={"records": len(batch), "url": redact(self._url), "error": first_line(exc)},
            )
            if self._conn is not None:
                self._conn.close()
                self._conn = None
