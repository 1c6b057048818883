"""Compare source and replica: row counts and order-independent checksums per table.

The source is read in one REPEATABLE READ snapshot, noting the WAL position W it was taken at;
the replica is read once its applied LSN has reached W, so it holds every transaction the
snapshot sees. Writes that land after W can make the two differ for a moment, so a difference
is confirmed by a second round before it is reported.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import psycopg2
import psycopg2.extensions
from psycopg2 import sql

from zetl.errors import DataError, first_line
from zetl.integration import TableState
from zetl_replicator.config import ReplicatorConfig
from zetl_replicator.destination.history import HISTORY_COLUMNS
from zetl_replicator.destination.replica import connect_replica_read_only
from zetl_replicator.source import catalog, server
from zetl_replicator.source.pgoutput import lsn_to_str, str_to_lsn
from zetl_replicator.source.tables import TableInfo
from zetl_replicator.state.store import read_table_states


@dataclass(frozen=True)
class TableCheck:
    table: str
    source_rows: int
    replica_rows: int
    source_checksum: str
    replica_checksum: str

    @property
    def ok(self) -> bool:
        return (self.source_rows, self.source_checksum) == (
            self.replica_rows,
            self.replica_checksum,
        )


@dataclass(frozen=True)
class VerifyReport:
    source_lsn: int
    replica_lsn: int
    checks: tuple[TableCheck, ...]
    not_in_step: tuple[str, ...]  # tables Initializing or ResyncRequired
    failed: tuple[str, ...]  # tables zero-ETL does not replicate (Failed): not compared
    missing: tuple[str, ...] = ()  # Synced tables absent on one side: why, one line each
    # Failed while replicating (a value the rules refuse, a change the replica refused): not
    # compared either, and named apart, as a refresh brings them back.
    apply_failed: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks) and not self.not_in_step and not self.missing


def checksum_sql(table: TableInfo) -> sql.Composed:
    """count(*) and the sum of a 64-bit hash of every row's text, columns in name order.

    A HISTORY_MODE table is compared by its active versions, without the history columns:
    they are what the source has now."""
    history = any(c.name in HISTORY_COLUMNS for c in table.columns)
    columns = sorted(c.name for c in table.columns if c.name not in HISTORY_COLUMNS)
    row = sql.SQL(", ").join(sql.Identifier(c) for c in columns)
    return sql.SQL(
        "SELECT count(*), coalesce(sum(('x' || left(md5(ROW({})::text), 16))"
        "::bit(64)::bigint::numeric), 0)::text FROM {}{}"
    ).format(
        row,
        sql.Identifier(table.schema, table.name),
        sql.SQL(" WHERE _record_is_active" if history else ""),
    )


def _checksums(
    conn: psycopg2.extensions.connection, tables: list[TableInfo]
) -> dict[str, tuple[int, str]]:
    out = {}
    with conn.cursor() as cur:
        for table in tables:
            cur.execute(checksum_sql(table))
            row = cur.fetchone()
            assert row is not None
            out[table.qualified] = (int(row[0]), str(row[1]))
    return out


def _replica_lsn(conn: psycopg2.extensions.connection, slot: str) -> int:
    with conn.cursor() as cur:
        cur.execute(
            "SELECT applied_lsn::text FROM zetl.replication_progress WHERE slot_name = %s", (slot,)
        )
        row = cur.fetchone()
    return str_to_lsn(row[0]) if row else 0


def _missing(synced: list[str], source_tables: set[str], replica_tables: set[str]) -> list[str]:
    lines = [
        f"{n}: Synced, but no longer on the source (dropped or renamed there); the replica"
        " keeps its copy"
        for n in synced
        if n not in source_tables
    ]
    lines += [
        f"{n}: Synced, but missing from the replica database (dropped there?): zetl resync {n}"
        for n in synced
        if n in source_tables and n not in replica_tables
    ]
    return lines


def verify_once(config: ReplicatorConfig, wait_seconds: float = 60.0) -> VerifyReport:
    replica = connect_replica_read_only(config.warehouse_url, config.replica_database)
    src = server.connect_source(config.source_url)
    try:
        states = read_table_states(replica)
        synced = sorted(n for n, s in states.items() if s.state == TableState.SYNCED)
        replica_tables = {t.qualified: t for t in catalog.list_tables(replica, config.scope)}
        replica.commit()
        src.autocommit = False
        with src.cursor() as cur:
            cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            cur.execute("SELECT pg_current_wal_lsn()::text")  # the snapshot is taken here
            row = cur.fetchone()
            assert row is not None
            source_lsn = str_to_lsn(row[0])
        source_tables = {t.qualified: t for t in catalog.list_tables(src, config.scope)}
        # Only tables on both sides can be compared; the others are a difference of their own.
        missing = _missing(synced, set(source_tables), set(replica_tables))
        names = [n for n in synced if n in source_tables and n in replica_tables]
        source_sums = _checksums(src, [source_tables[n] for n in names])
        src.rollback()
        deadline = time.monotonic() + wait_seconds
        while _replica_lsn(replica, config.slot) < source_lsn:
            replica.commit()
            if time.monotonic() > deadline:
                raise DataError(
                    f"the replica has not reached the source's position {lsn_to_str(source_lsn)}"
                    f" within {wait_seconds:.0f} s: is `zetl replicate` running?"
                )
            # Often: under load the replica is at the snapshot's position only until its next
            # commit, and a replica read later than that is ahead of the snapshot.
            time.sleep(0.02)
        replica.commit()
        replica.set_session(isolation_level="REPEATABLE READ", readonly=True)
        replica_lsn = _replica_lsn(replica, config.slot)
        replica_sums = _checksums(replica, [replica_tables[n] for n in names])
        replica.rollback()
    finally:
        replica.close()
        src.close()
    checks = tuple(
        TableCheck(
            table=n,
            source_rows=source_sums[n][0],
            replica_rows=replica_sums[n][0],
            source_checksum=source_sums[n][1],
            replica_checksum=replica_sums[n][1],
        )
        for n in names
    )
    return VerifyReport(
        source_lsn,
        replica_lsn,
        checks,
        not_in_step=tuple(
            sorted(
                n
                for n, s in states.items()
                if s.state in (TableState.INITIALIZING, TableState.RESYNC_REQUIRED)
            )
        ),
        failed=tuple(
            sorted(
                n for n, s in states.items() if s.state == TableState.FAILED and not s.apply_failed
            )
        ),
        missing=tuple(missing),
        apply_failed=tuple(
            sorted(n for n, s in states.items() if s.state == TableState.FAILED and s.apply_failed)
        ),
    )


def verify(config: ReplicatorConfig, rounds: int = 3) -> VerifyReport:
    """Verify, taking up to ``rounds`` snapshots so that writes in flight are not reported."""
    try:
        report = verify_once(config)
        for _ in range(rounds - 1):
            if report.ok:
                break
            time.sleep(1.0)
            report = verify_once(config)
    except psycopg2.Error as exc:  # e.g. a table dropped on either side while it was read
        raise DataError(f"verify could not read source or replica: {first_line(exc)}") from exc
    return report
