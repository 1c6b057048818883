"""The replicator's commands: replicate, status, doctor, verify and resync.

Imported whenever ``zetl`` starts (every command registers here): only typer, the standard
library and zetl's basics at module level; the pipeline, psycopg2 and rich inside the commands.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
import time
from types import FrameType
from typing import TYPE_CHECKING

import typer

from zetl.errors import ConfigError, DataError, first_line

if TYPE_CHECKING:
    from rich.console import Console


log = logging.getLogger(__name__)


def _console() -> Console:
    from rich.console import Console

    return Console()


def replicate(
    reset_state: bool = typer.Option(
        False, "--reset", help="drop the slot and stored progress first: re-copy every table"
    ),
    metrics_port: int = typer.Option(
        None, help="serve /healthz and /metrics on this port [env ZETL_METRICS_PORT]"
    ),
) -> None:
    """Replicate the source's publication into the replica database until stopped."""
    from zetl.http import serve_metrics
    from zetl_replicator.config import ReplicatorConfig
    from zetl_replicator.ops.metrics import Metrics
    from zetl_replicator.pipeline import Replicator, reset

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


def status(json_output: bool = typer.Option(False, "--json", help="print JSON")) -> None:
    """The integration and per-table state (svv_integration, svv_integration_table_state),
    lag (bytes and seconds) and slot health; the replica's side even when the source is down.
    Exits 1 when nothing replicates (ErrorState, the source down, the slot lost)."""
    import psycopg2

    from zetl.integration import ERROR_STATE
    from zetl_replicator.config import ReplicatorConfig
    from zetl_replicator.ops.status import read_status

    try:
        report = read_status(ReplicatorConfig.from_env())
    except psycopg2.Error as exc:
        raise DataError(f"status could not read the monitoring views: {first_line(exc)}") from exc
    if json_output:
        typer.echo(json.dumps(report.as_json(), indent=2))
    else:
        from rich.table import Table

        console = _console()
        console.print(
            f"integration [bold]{report.integration_id}[/]: {report.integration_state};"
            f" {report.tables_replicated} tables Synced, {report.tables_failed} Failed;"
            f" lag {report.lag_seconds} s"
        )
        if report.source_error:
            console.print(f"[red]source unreachable[/]: {report.source_error}")
        else:
            console.print(
                f"slot [bold]{report.slot}[/]: {report.slot_health}"
                f" ({'active' if report.slot_active else 'inactive'}); applied"
                f" {report.applied_lsn} of source {report.source_lsn};"
                f" lag {report.lag_bytes} bytes"
            )
        if report.last_error:
            console.print(f"last error: {report.last_error}")
        table = Table("table", "state", "rows", "rows applied", "reason", "updated at (UTC)")
        for t in report.tables:
            table.add_row(
                t.table,
                t.state,
                str(t.table_rows),
                str(t.rows_applied),
                t.reason or "",
                t.updated_at.isoformat() if t.updated_at else "-",
            )
        console.print(table)
    if report.source_error:
        raise DataError(f"the source is unreachable: {report.source_error}")
    if report.integration_state == ERROR_STATE:
        raise DataError(
            f"the integration is in {ERROR_STATE} ({report.last_error or 'no report'}):"
            " nothing replicates; is zetl replicate running?"
        )
    if report.slot_health in ("lost", "missing") and report.applied_lsn is not None:
        raise DataError(
            f"slot {report.slot} is {report.slot_health}: see docs/replication.md, slot recovery"
        )


def doctor() -> None:
    """Check the source against every zero-ETL requirement and print what to fix."""
    from rich.table import Table

    from zetl_replicator.config import ReplicatorConfig
    from zetl_replicator.ops.doctor import predicted_states, run_doctor
    from zetl_replicator.source import catalog, server

    console = _console()
    config = ReplicatorConfig.from_env()
    conn = server.connect_source(config.source_url)
    try:
        findings = run_doctor(conn, config.scope, config.table_filter())
        tables = catalog.list_tables(conn, config.scope, config.table_filter())
    finally:
        conn.close()
    states = Table("table", "zero-ETL state", "reason", title="predicted table states")
    for name, state, reason in predicted_states(tables):
        states.add_row(name, state, reason)
    console.print(states)
    if findings:
        table = Table("severity", "where", "problem", "fix")
        for f in findings:
            table.add_row(f.severity, f.subject, f.problem, f.fix)
        console.print(table)
    errors = sum(f.severity == "error" for f in findings)
    if errors:
        raise DataError(f"{errors} zero-ETL requirement(s) not met")
    console.print("[green]the source meets every zero-ETL requirement[/]")


def verify() -> None:
    """Compare row counts and checksums of source and replica; exit 1 on any difference."""
    from rich.table import Table

    from zetl_replicator.config import ReplicatorConfig
    from zetl_replicator.ops.verify import verify as run_verify
    from zetl_replicator.source.pgoutput import lsn_to_str

    console = _console()
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
    for name in report.apply_failed:
        console.print(
            f"[yellow]{name}: Failed while replicating (zetl status says why), not compared;"
            f" re-copy it with: zetl refresh TABLE {name}[/]"
        )
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
    from zetl.integration import TableState
    from zetl_replicator.config import ReplicatorConfig
    from zetl_replicator.destination.replica import connect_replica
    from zetl_replicator.state.store import PostgresStateStore

    console = _console()
    config = ReplicatorConfig.from_env()
    schema, _, name = table.rpartition(".")
    schema = schema or "public"
    replica = connect_replica(config.warehouse_url, config.replica_database)
    store = PostgresStateStore(replica)
    try:
        known = store.table_states().get(f"{schema}.{name}")
        if known is None:
            raise ConfigError(f"{schema}.{name} is not a table the replicator knows")
        if known.state == TableState.FAILED and not known.apply_failed:
            # Its reason would be overwritten and no copy would ever come: refuse instead.
            raise ConfigError(
                f"{schema}.{name} is Failed ({known.reason}): zero-ETL does not replicate it, so it"
                " cannot be re-copied. Fix the table (zetl doctor); it is picked up once eligible"
            )
        if not store.request_resync(schema, name):
            raise ConfigError(f"{schema}.{name} is not a table the replicator knows")
        if not wait:
            return
        deadline = time.monotonic() + timeout
        with console.status(f"waiting for the replicator to re-copy {schema}.{name}"):
            while time.monotonic() < deadline:
                status = store.table_states().get(f"{schema}.{name}")
                if status and status.state == TableState.SYNCED and not status.resync_requested:
                    console.print(f"{schema}.{name} re-copied: Synced")
                    return
                time.sleep(0.5)
    finally:
        replica.close()
    raise DataError(f"{schema}.{name} was not re-copied within {timeout:.0f} s")


def refresh(
    clause: list[str] = typer.Argument(
        ...,
        help="TABLE s.t[, ...] | ALL|INERROR|REMEDIABLE TABLES [IN SCHEMA s]",
    ),
) -> None:
    """Re-copy tables, as ALTER DATABASE ... INTEGRATION REFRESH does (the running replicator
    copies them while the others keep streaming)."""
    from zetl_replicator.config import ReplicatorConfig
    from zetl_replicator.destination.replica import connect_replica_read_only
    from zetl_replicator.ops.clauses import parse_refresh, tables_to_refresh
    from zetl_replicator.state.store import PostgresStateStore

    kind, names = parse_refresh(clause)
    config = ReplicatorConfig.from_env()
    replica = connect_replica_read_only(config.warehouse_url, config.replica_database)
    try:
        states = PostgresStateStore(replica).table_states()
    finally:
        replica.close()
    chosen = tables_to_refresh(kind, names, states)
    from zetl_replicator.destination.replica import connect_replica

    replica = connect_replica(config.warehouse_url, config.replica_database)
    try:
        store = PostgresStateStore(replica)
        for name in chosen:
            schema, _, table = name.partition(".")
            store.request_resync(schema, table)
    finally:
        replica.close()
    typer.echo(f"refresh requested for {len(chosen)} table(s): {', '.join(chosen) or '-'}")


database_app = typer.Typer(
    help="The target database's options, as ALTER DATABASE ... INTEGRATION SET sets them.",
    no_args_is_help=True,
)


@database_app.command("set")
def database_set(
    options: list[str] = typer.Argument(..., help="e.g. QUERY_ALL_STATES = TRUE"),
) -> None:
    """Set options of the replica database (the running replicator follows within seconds)."""
    from zetl_replicator.config import ReplicatorConfig
    from zetl_replicator.destination.replica import connect_replica_read_only
    from zetl_replicator.ops.clauses import parse_options
    from zetl_replicator.state.options import set_options

    values = parse_options(options)
    config = ReplicatorConfig.from_env()
    replica = connect_replica_read_only(config.warehouse_url, config.replica_database)
    replica.close()  # it exists and has its state store: now change it
    from zetl_replicator.destination.replica import connect_replica

    conn = connect_replica(config.warehouse_url, config.replica_database)
    try:
        set_options(conn, values)
    finally:
        conn.close()
    typer.echo(", ".join(f"{k} = {v}" for k, v in values.items()))


@database_app.command("show")
def database_show() -> None:
    """Print the replica database's options."""
    from dataclasses import asdict

    from zetl_replicator.config import ReplicatorConfig
    from zetl_replicator.destination.replica import connect_replica_read_only
    from zetl_replicator.state.options import read_options

    config = ReplicatorConfig.from_env()
    replica = connect_replica_read_only(config.warehouse_url, config.replica_database)
    try:
        options = read_options(replica)
    finally:
        replica.close()
    for name, value in asdict(options).items():
        typer.echo(f"{name.upper()} = {value}")


def register(app: typer.Typer) -> None:
    app.command()(replicate)
    app.command()(status)
    app.command()(doctor)
    app.command()(verify)
    app.command()(resync)
    app.command()(refresh)
    app.add_typer(database_app, name="database")
