"""replica_parity's evidence: ``zetl verify``'s comparison at one consistent point, stored per
table in ``zetl_dq.replica_parity`` for the checkpoint's expectations to evaluate.

verify (zetl_replicator.ops.verify) takes the source snapshot, waits for the replica to reach its
WAL position and compares counts and row checksums; it is called, not restated, here.
"""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg2.extensions

from zetl.integration import TableState
from zetl_quality.checks import PARITY_TABLE, RESULTS_SCHEMA
from zetl_replicator.config import ReplicatorConfig


def ensure_table(cur: psycopg2.extensions.cursor) -> None:
    cur.execute(f"CREATE SCHEMA IF NOT EXISTS {RESULTS_SCHEMA}")
    cur.execute(
        f"""CREATE TABLE IF NOT EXISTS {PARITY_TABLE} (
            run_id text NOT NULL,
            checked_at timestamptz NOT NULL,
            table_name text NOT NULL,
            table_state text NOT NULL,
            source_rows bigint,
            replica_rows bigint,
            source_checksum text,
            replica_checksum text,
            source_lsn pg_lsn,
            replica_lsn pg_lsn,
            missing text,
            PRIMARY KEY (run_id, table_name)
        )"""
    )


def snapshot(
    config: ReplicatorConfig, run_id: str, warehouse: psycopg2.extensions.connection
) -> int:
    """Compare source and replica (verify) and store one row per table; returns the row count."""
    from zetl_replicator.destination.replica import connect_replica_read_only
    from zetl_replicator.ops.verify import verify
    from zetl_replicator.source.pgoutput import lsn_to_str
    from zetl_replicator.state.store import read_table_states

    report = verify(config)
    replica = connect_replica_read_only(config.warehouse_url, config.replica_database)
    try:
        states = {name: str(state.state) for name, state in read_table_states(replica).items()}
    finally:
        replica.close()
    checked_at = datetime.now(UTC)
    source_lsn, replica_lsn = lsn_to_str(report.source_lsn), lsn_to_str(report.replica_lsn)
    rows: dict[str, tuple[object, ...]] = {}
    for name, state in states.items():
        rows[name] = (name, state, None, None, None, None, None)
    for check in report.checks:
        rows[check.table] = (
            check.table,
            states.get(check.table, TableState.SYNCED.value),
            check.source_rows,
            check.replica_rows,
            check.source_checksum,
            check.replica_checksum,
            None,
        )
    for line in report.missing:
        name = line.split(":", 1)[0]
        rows[name] = (name, states.get(name, TableState.SYNCED.value), None, None, None, None, line)
    with warehouse.cursor() as cur:
        ensure_table(cur)
        for row in rows.values():
            cur.execute(
                f"INSERT INTO {PARITY_TABLE} (run_id, checked_at, table_name, table_state,"
                " source_rows, replica_rows, source_checksum, replica_checksum, missing,"
                " source_lsn, replica_lsn) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (run_id, checked_at, *row, source_lsn, replica_lsn),
            )
    warehouse.commit()
    return len(rows)
