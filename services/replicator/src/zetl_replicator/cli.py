"""The replicator's commands: replicate, status, doctor, verify and resync."""

from __future__ import annotations

import json
import logging
import signal
import threading
import time
from datetime import UTC, datetime
from types import FrameType
from typing import Any

import psycopg2
import typer
from rich.console import Console
from rich.table import Table

from zetl.errors import ConfigError, DataError
from zetl.http import serve_metrics
from zetl_replicator import source
from zetl_replicator.config import ReplicatorConfig
from zetl_replicator.doctor import run_doctor
from zetl_replicator.metrics import Metrics
from zetl_replicator.pgoutput import lsn_to_str, str_to_lsn
from zetl_replicator.pipeline import Replicator, reset
from zetl_replicator.verify import verify as run_verify
from zetl_replicator.warehouse import (
    TableState,
    connect_replica,
    connect_replica_read_only,
    read_progress,
    read_table_states,
    request_resync,
)

log = logging.getLogger(__name__)
console = Console()


def replicate(
    reset_state: bool = typer.Option(
        False, "--reset", help="drop the slot and stored progress first: re-copy every table"
    ),
    metrics_port: int = typer.Option(
        None, help="serve /healthz and /metrics on this port [env ZETL_METRICS_PORT]"
    ),
) -> None:
    """Replicate the source's publication into the replica database until stopped."""
    config = ReplicatorConfig.from_env()
    if reset_state:
        reset(config)
        log.info("slot and progress dropped: every table will be copied again")
    metrics = Metrics()
    port = metrics_port if metrics_port is not None else config.metrics_port
    if port:
        server = serve_metrics(metrics.render, metrics.healthy, port)
        log.info("metrics endpoint", extra={"port": server.server_address[1]})
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("stopping", extra={"signal": signal.Signals(signum).name})
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    Replicator(config, metrics).run(stop)


def _status_data(config: ReplicatorConfig) -> dict[str, Any]:
    # A read command: it opens the replica read-only and never creates it.
    replica = connect_replica_read_only(config.warehouse_url, config.replica_database)
    try:
        src = source.connect_source(config.source_url)
    except BaseException:
        replica.close()
        raise
    try:
        progress = read_progress(replica, config.slot)
        states = read_table_states(replica)
        slot = source.slot_info(src, config.slot)
        with src.cursor() as cur:
            cur.execute("SELECT pg_current_wal_lsn()::text")
            row = cur.fetchone()
        current = str_to_lsn(row[0]) if row else 0
    finally:
        replica.close()
        src.close()
    applied = progress.applied_lsn if progress else 0
    lag_bytes = max(0, current - applied) if progress else None
    lag_seconds = None
    if progress:
        # Caught up (applied >= the source's position) is 0, however old the last commit is.
        commit_time = progress.source_commit_time
        lag_seconds = 0.0
        if applied < current and commit_time is not None:
            lag_seconds = (datetime.now(UTC) - commit_time).total_seconds()
    return {
        "slot": config.slot,
        "slot_health": (slot.wal_status or "unknown") if slot else "missing",
        "slot_active": bool(slot and slot.active),
        "source_lsn": lsn_to_str(current),
        "applied_lsn": lsn_to_str(applied) if progress else None,
        "applied_at": progress.applied_at.isoformat() if progress else None,
        "lag_bytes": lag_bytes,
        "lag_seconds": lag_seconds,
        "tables": [
            {
                "table": name,
                "state": str(s.state),
                "reason": s.reason,
                "rows_applied": s.rows_applied,
                "updated_at": s.updated_at.isoformat(),
            }
            for name, s in sorted(states.items())
        ],
    }


def status(json_output: bool = typer.Option(False, "--json", help="print JSON")) -> None:
    """Per-table state, rows applied, lag (bytes and seconds) and slot health."""
    try:
        data = _status_data(ReplicatorConfig.from_env())
    except psycopg2.Error as exc:
        raise DataError(f"status could not read source or replica: {_first_line(exc)}") from exc
    if json_output:
        typer.echo(json.dumps(data, indent=2))
    else:
        console.print(
            f"slot [bold]{data['slot']}[/]: {data['slot_health']}"
            f" ({'active' if data['slot_active'] else 'inactive'}); applied"
            f" {data['applied_lsn']} of source {data['source_lsn']}; lag {data['lag_bytes']} bytes,"
            f" {data['lag_seconds']} s"
        )
        table = Table("table", "state", "rows applied", "reason", "updated at")
        for t in data["tables"]:
            table.add_row(
                t["table"], t["state"], str(t["rows_applied"]), t["reason"] or "", t["updated_at"]
            )
        console.print(table)
    if data["slot_health"] in ("lost", "missing") and data["applied_lsn"] is not None:
        raise DataError(
            f"slot {data['slot']} is {data['slot_health']}: see docs/replication.md, slot recovery"
        )


def doctor() -> None:
    """Check the source against every zero-ETL requirement and print what to fix."""
    config = ReplicatorConfig.from_env()
    conn = source.connect_source(config.source_url)
    try:
        findings = run_doctor(conn, config.schemas, config.include)
    finally:
        conn.close()
    if not findings:
        console.print("[green]the source meets every zero-ETL requirement[/]")
        return
    table = Table("severity", "where", "problem", "fix")
    for f in findings:
        table.add_row(f.severity, f.subject, f.problem, f.fix)
    console.print(table)
    errors = sum(f.severity == "error" for f in findings)
    if errors:
        raise DataError(f"{errors} zero-ETL requirement(s) not met")


def verify() -> None:
    """Compare row counts and checksums of source and replica; exit 1 on any difference."""
    report = run_verify(ReplicatorConfig.from_env())
    table = Table("table", "source rows", "replica rows", "match")
    for check in report.checks:
        table.add_row(
            check.table,
            str(check.source_rows),
            str(check.replica_rows),
            "yes" if check.ok else "[red]NO[/]",
        )
    console.print(table)
    console.print(
        f"source snapshot at {lsn_to_str(report.source_lsn)}, replica at"
        f" {lsn_to_str(report.replica_lsn)}"
    )
    for name in report.failed:
        console.print(f"{name}: Failed (not replicated by the zero-ETL rules), not compared")
    for line in report.missing:
        console.print(f"[red]{line}[/]")
    if not report.ok:
        bad = [c.table for c in report.checks if not c.ok] + list(report.not_in_step)
        bad += [line.split(":", 1)[0] for line in report.missing]
        raise DataError("replica differs from source: " + ", ".join(bad))
    console.print("[green]replica matches source[/]")


def resync(
    table: str = typer.Argument(..., help="schema.table (schema defaults to public)"),
    wait: bool = typer.Option(True, help="wait until the running replicator re-copied it"),
    timeout: float = typer.Option(300.0, help="seconds to wait"),
) -> None:
    """Re-copy one table while the others keep streaming (needs `zetl replicate` running)."""
    config = ReplicatorConfig.from_env()
    schema, _, name = table.rpartition(".")
    schema = schema or "public"
    replica = connect_replica(config.warehouse_url, config.replica_database)
    try:
        known = read_table_states(replica).get(f"{schema}.{name}")
        if known is None:
            raise ConfigError(f"{schema}.{name} is not a table the replicator knows")
        if known.state == TableState.FAILED:
            # Its reason would be overwritten and no copy would ever come: refuse instead.
            raise ConfigError(
                f"{schema}.{name} is Failed ({known.reason}): zero-ETL does not replicate it, so it"
                " cannot be re-copied. Fix the table (zetl doctor); it is picked up once eligible"
            )
        if not request_resync(replica, schema, name):
            raise ConfigError(f"{schema}.{name} is not a table the replicator knows")
        if not wait:
            return
        deadline = time.monotonic() + timeout
        with console.status(f"waiting for the replicator to re-copy {schema}.{name}"):
            while time.monotonic() < deadline:
                status = read_table_states(replica).get(f"{schema}.{name}")
                if status and status.state == TableState.SYNCED and not status.resync_requested:
                    console.print(f"{schema}.{name} re-copied: Synced")
                    return
                time.sleep(0.5)
    finally:
        replica.close()
    raise DataError(f"{schema}.{name} was not re-copied within {timeout:.0f} s")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def register(app: typer.Typer) -> None:
    app.command()(replicate)
    app.command()(status)
    app.command()(doctor)
    app.command()(verify)
    app.command()(resync)
