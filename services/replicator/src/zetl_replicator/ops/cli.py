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
from typing import TYPE_CHECKING, Any

import typer

from zetl.errors import ConfigError, DataError

if TYPE_CHECKING:
    from rich.console import Console

    from zetl_replicator.config import ReplicatorConfig

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


_INTEGRATION_SQL = """
SELECT i.integration_id, i.state, i.current_lag, i.last_replicated_checkpoint,
       i.total_tables_replicated, i.total_tables_failed, s.last_error, s.heartbeat
FROM svv_integration i
JOIN zetl.integration_status s USING (target_database)
WHERE i.target_database = %s
"""
_TABLES_SQL = """
SELECT v.schema_name || '.' || v.table_name, v.table_state, v.reason, v.table_rows,
       v.last_updated_timestamp, t.rows_applied
FROM svv_integration_table_state v
JOIN zetl.integration_table_status t USING (target_database, schema_name, table_name)
WHERE v.target_database = %s
ORDER BY 1
"""


def _status_data(config: ReplicatorConfig) -> dict[str, Any]:
    """What the monitoring views in the warehouse database say, plus the slot's health when
    the source answers (when it does not, the replica's side is shown all the same)."""
    import psycopg2

    from zetl.db import connect
    from zetl_replicator.source import server
    from zetl_replicator.source.pgoutput import lsn_to_str, str_to_lsn

    not_initialised = DataError(
        f"replica database {config.replica_database} is not initialised: run zetl replicate"
    )
    dev = connect(config.warehouse_url)
    try:
        dev.set_session(readonly=True)
        with dev.cursor() as cur:
            cur.execute("SELECT to_regclass('svv_integration') IS NOT NULL")
            row = cur.fetchone()
            if not (row and row[0]):
                raise not_initialised
            cur.execute(_INTEGRATION_SQL, (config.replica_database,))
            integration = cur.fetchone()
            if integration is None:
                raise not_initialised
            cur.execute(_TABLES_SQL, (config.replica_database,))
            tables = cur.fetchall()
    finally:
        dev.close()
    applied_text: str | None = integration[3]
    applied = str_to_lsn(applied_text) if applied_text else None
    data: dict[str, Any] = {
        "integration_id": str(integration[0]),
        "integration_state": integration[1],
        "last_error": integration[6],
        "reported_at": integration[7].isoformat(),
        "slot": config.slot,
        "slot_health": None,
        "slot_active": None,
        "source_lsn": None,
        "source_error": None,
        "applied_lsn": applied_text,
        "lag_bytes": None,
        "lag_seconds": None if integration[2] is None else integration[2] / 1000,
        "tables_replicated": integration[4],
        "tables_failed": integration[5],
        "tables": [
            {
                "table": r[0],
                "state": r[1],
                "reason": r[2],
                "table_rows": r[3],
                "rows_applied": r[5],
                "updated_at": r[4].isoformat(),
            }
            for r in tables
        ],
    }
    try:
        src = server.connect_source(config.source_url)
    except ConfigError as exc:  # the source is down: the replica's side still stands
        data["source_error"] = str(exc)
        return data
    try:
        slot = server.slot_info(src, config.slot)
        with src.cursor() as cur:
            cur.execute("SELECT pg_current_wal_lsn()::text")
            row = cur.fetchone()
    except (psycopg2.Error, ConfigError) as exc:  # ConfigError: ConnectionLost, say
        data["source_error"] = _first_line(exc)
        return data
    finally:
        src.close()
    current = str_to_lsn(row[0]) if row else 0
    data["slot_health"] = (slot.wal_status or "unknown") if slot else "missing"
    data["slot_active"] = bool(slot and slot.active)
    data["source_lsn"] = lsn_to_str(current)
    if applied is not None:
        data["lag_bytes"] = max(0, current - applied)
        if applied >= current:
            data["lag_seconds"] = 0.0  # caught up, however old the last commit is
    return data


def status(json_output: bool = typer.Option(False, "--json", help="print JSON")) -> None:
    """The integration and per-table state (svv_integration, svv_integration_table_state),
    lag (bytes and seconds) and slot health; the replica's side even when the source is down."""
    import psycopg2

    from zetl_replicator.config import ReplicatorConfig

    try:
        data = _status_data(ReplicatorConfig.from_env())
    except psycopg2.Error as exc:
        raise DataError(f"status could not read the monitoring views: {_first_line(exc)}") from exc
    if json_output:
        typer.echo(json.dumps(data, indent=2))
    else:
        from rich.table import Table

        console = _console()
        console.print(
            f"integration [bold]{data['integration_id']}[/]: {data['integration_state']};"
            f" {data['tables_replicated']} tables Synced, {data['tables_failed']} Failed;"
            f" lag {data['lag_seconds']} s"
        )
        if data["source_error"]:
            console.print(f"[red]source unreachable[/]: {data['source_error']}")
        else:
            console.print(
                f"slot [bold]{data['slot']}[/]: {data['slot_health']}"
                f" ({'active' if data['slot_active'] else 'inactive'}); applied"
                f" {data['applied_lsn']} of source {data['source_lsn']};"
                f" lag {data['lag_bytes']} bytes"
            )
        if data["last_error"]:
            console.print(f"last error: {data['last_error']}")
        table = Table("table", "state", "rows", "rows applied", "reason", "updated at (UTC)")
        for t in data["tables"]:
            table.add_row(
                t["table"],
                t["state"],
                str(t["table_rows"]),
                str(t["rows_applied"]),
                t["reason"] or "",
                t["updated_at"],
            )
        console.print(table)
    if data["source_error"]:
        raise DataError(f"the source is unreachable: {data['source_error']}")
    if data["slot_health"] in ("lost", "missing") and data["applied_lsn"] is not None:
        raise DataError(
            f"slot {data['slot']} is {data['slot_health']}: see docs/replication.md, slot recovery"
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
    from zetl_replicator.config import ReplicatorConfig
    from zetl_replicator.destination.replica import connect_replica
    from zetl_replicator.state.store import PostgresStateStore, TableState

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


REFRESH_USAGE = (
    "use: zetl refresh TABLE schema.table[, ...] | ALL TABLES [IN SCHEMA s[, ...]]"
    " | INERROR TABLES [IN SCHEMA s[, ...]]"
)


def parse_refresh(words: list[str]) -> tuple[str, list[str]]:
    """The clause of ``ALTER DATABASE ... INTEGRATION REFRESH`` as words: (kind, names), kind
    ``tables`` (names: schema.table), ``all`` or ``inerror`` (names: schemas, none for all)."""
    tokens = [t for t in " ".join(words).replace(",", " , ").split() if t != ","]
    upper = [t.upper() for t in tokens]
    if upper[:2] in (["ALL", "TABLES"], ["INERROR", "TABLES"]):
        kind, rest = upper[0].lower(), tokens[2:]
        if not rest:
            return kind, []
        if [t.upper() for t in rest[:2]] == ["IN", "SCHEMA"] and len(rest) > 2:
            return kind, rest[2:]
        raise ConfigError(REFRESH_USAGE)
    # Redshift's grammar says TABLE; its troubleshooting page writes TABLES: both are taken.
    if upper[:1] in (["TABLE"], ["TABLES"]):
        names = tokens[1:]
        if names and all(t.count(".") == 1 and "" not in t.split(".") for t in names):
            return "tables", names
    raise ConfigError(REFRESH_USAGE)


def refresh(
    clause: list[str] = typer.Argument(
        ..., help="TABLE s.t[, ...] | ALL TABLES [IN SCHEMA s] | INERROR TABLES [IN SCHEMA s]"
    ),
) -> None:
    """Re-copy tables, as ALTER DATABASE ... INTEGRATION REFRESH does (the running replicator
    copies them while the others keep streaming)."""
    from zetl_replicator.config import ReplicatorConfig
    from zetl_replicator.destination.replica import connect_replica_read_only
    from zetl_replicator.state.store import PostgresStateStore, TableState

    kind, names = parse_refresh(clause)
    config = ReplicatorConfig.from_env()
    replica = connect_replica_read_only(config.warehouse_url, config.replica_database)
    try:
        states = PostgresStateStore(replica).table_states()
    finally:
        replica.close()
    if kind == "tables":
        unknown = [n for n in names if n not in states]
        if unknown:
            raise ConfigError("not tables of the integration: " + ", ".join(unknown))
        chosen = names
    else:
        in_error = (TableState.FAILED, TableState.RESYNC_REQUIRED)
        chosen = sorted(
            n
            for n, s in states.items()
            if (kind == "all" or s.state in in_error) and (not names or s.schema in names)
        )
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


OPTIONS_USAGE = (
    "use: zetl database set [QUERY_ALL_STATES [=] TRUE|FALSE] [ACCEPTINVCHARS [=] TRUE|FALSE]"
    " [REFRESH_INTERVAL seconds] [TRUNCATECOLUMNS [=] TRUE|FALSE] [HISTORY_MODE [=] TRUE|FALSE]"
)


def parse_options(words: list[str]) -> dict[str, bool | int | None]:
    """``ALTER DATABASE ... INTEGRATION SET`` 's options as words: {OPTION: value}."""
    from zetl_replicator.state.options import OPTIONS

    tokens = " ".join(words).replace("=", " = ").split()
    values: dict[str, bool | int | None] = {}
    i = 0
    while i < len(tokens):
        name = tokens[i].upper()
        if name not in OPTIONS:
            raise ConfigError(f"unknown option {tokens[i]!r}; {OPTIONS_USAGE}")
        i += 1
        if i < len(tokens) and tokens[i] == "=":
            i += 1
        if i >= len(tokens):
            raise ConfigError(f"{name} needs a value; {OPTIONS_USAGE}")
        text = tokens[i]
        i += 1
        if name == "REFRESH_INTERVAL":
            if not text.isdigit():
                raise ConfigError(f"REFRESH_INTERVAL {text!r}: seconds, a whole number >= 0")
            values[name] = int(text)
        elif text.upper() in ("TRUE", "FALSE"):
            values[name] = text.upper() == "TRUE"
        else:
            raise ConfigError(f"{name} {text!r}: TRUE or FALSE")
    if not values:
        raise ConfigError(OPTIONS_USAGE)
    return values


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


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def register(app: typer.Typer) -> None:
    app.command()(replicate)
    app.command()(status)
    app.command()(doctor)
    app.command()(verify)
    app.command()(resync)
    app.command()(refresh)
    app.add_typer(database_app, name="database")
