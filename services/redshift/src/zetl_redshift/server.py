"""The Redshift front: a Postgres v3 protocol server relaying each client to the warehouse.

One :class:`Session` per client, with its own warehouse connection, logged in as the client's
role. Two loops run per session:

- client to warehouse: every message is framed; Query and Parse texts go through
  :func:`zetl_redshift.translate.translate`, the rest is forwarded as it came;
- warehouse to client: chunks are forwarded as they came. Only message boundaries are read
  (type byte and length); DataRow messages are skipped over, never decoded.

What the front answers itself is put into the warehouse's own reply stream, so it reaches the
client in protocol order and the transaction state stays the warehouse's:

- a refused statement becomes a Describe of a statement that does not exist (a Sync after it,
  for a simple Query); the warehouse's error for it is replaced by the refusal's, and the
  warehouse skips to Sync and fails an open transaction, as it would for any error;
- a zero-ETL statement becomes an empty statement; its EmptyQueryResponse is replaced by the
  command tag once ``zetl_redshift.integration.run`` ran it as the client's role.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import ssl
from collections import deque
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import psycopg2
import psycopg2.extensions

from zetl.db import connect, redact, with_database
from zetl.errors import ConfigError, first_line
from zetl_redshift import backend as wh
from zetl_redshift import catalog, history
from zetl_redshift import messages as m
from zetl_redshift.config import FrontConfig
from zetl_redshift.translate import Refused, ZeroEtlCommand, translate

log = logging.getLogger(__name__)

CHUNK = 256 * 1024
# What the front reports instead of the warehouse's own values (the rest passes through).
# redshift_connector parses server_version with packaging.version: a Debian build's
# "17.10 (Debian 17.10-1)" would break its connect. server_protocol_version is not sent: it
# would announce Redshift's own RowDescription layout, which the warehouse does not send.
REDSHIFT_PARAMETERS = {"server_version": "8.0.2"}
# Startup parameters Postgres accepts (names compared in lower case; custom `a.b` ones too).
FORWARDED_PARAMETERS = frozenset(
    {
        "user",
        "database",
        "options",
        "application_name",
        "client_encoding",
        "datestyle",
        "timezone",
        "extra_float_digits",
        "intervalstyle",
        "search_path",
        "standard_conforming_strings",
        "bytea_output",
        "statement_timeout",
        "lc_messages",
    }
)
# What Redshift's drivers send for Redshift alone; dropped without a word.
REDSHIFT_ONLY_PARAMETERS = frozenset(
    {
        "client_protocol_version",
        "driver_version",
        "os_version",
        "driver_discovery_version",
        "plugin_name",
        "idp_type",
        "provider_name",
        "token_type",
        "identity_namespace",
        "idc_client_display_name",
    }
)
REFUSAL_MARKER = "zetl_redshift_refused_"
QUERY_CANCELED = "57014"

_DATA_ROW = ord("D")
_markers = itertools.count(1)


class ClientGone(Exception):  # noqa: N818 - a condition
    """The client closed its connection or broke the protocol."""


# How a peer that went away shows: nothing to report.
_GONE = (ClientGone, ConnectionError, asyncio.IncompleteReadError)


def forwarded_parameters(parameters: dict[str, str]) -> dict[str, str]:
    """The client's startup parameters the warehouse accepts; the others are logged, once each."""
    kept: dict[str, str] = {}
    for name, value in parameters.items():
        lowered = name.lower()
        if lowered in FORWARDED_PARAMETERS or "." in name:
            kept[name] = value
        elif lowered not in REDSHIFT_ONLY_PARAMETERS:
            log.info("startup parameter dropped", extra={"parameter": name})
    return kept


@dataclass
class Pending:
    """A statement sent to the warehouse whose reply is still coming.

    ``group`` counts the Query/Sync messages sent before it: its reply ends with ReadyForQuery
    number ``group + 1``. A simple Query ends there; an Execute at its CommandComplete (or
    EmptyQueryResponse, PortalSuspended, or an error, which skips the rest of its group).
    """

    group: int
    simple: bool
    text: str
    command: ZeroEtlCommand | None
    started: datetime
    rows: int | None = None
    error: m.Error | None = None


@dataclass
class Session:
    front: Front
    client_reader: asyncio.StreamReader
    client_writer: asyncio.StreamWriter
    backend: wh.Backend
    user: str
    database: str
    password: str
    statements: dict[str, str | ZeroEtlCommand] = field(default_factory=dict)
    portals: dict[str, str | ZeroEtlCommand] = field(default_factory=dict)
    pending: deque[Pending] = field(default_factory=deque)
    refusals: dict[str, Refused] = field(default_factory=dict)
    groups_sent: int = 0
    groups_done: int = 0

    async def run(self) -> None:
        to_backend = asyncio.create_task(self._from_client())
        to_client = asyncio.create_task(self._from_backend())
        relays = (to_backend, to_client)
        try:
            done, _ = await asyncio.wait(relays, return_when=asyncio.FIRST_COMPLETED)
        finally:  # the front stopping cancels this task: its relays end with it
            for task in relays:
                task.cancel()
            outcomes = await asyncio.gather(*relays, return_exceptions=True)
            self.backend.close()
        if self.groups_sent > self.groups_done:
            # The client left mid-statement: a backend in pg_sleep or a long scan would not
            # notice its closed socket until it next writes; cancel the statement.
            with contextlib.suppress(Exception):
                await wh.cancel(self.front.config.warehouse, self._cancel_packet())
        if to_backend not in done:
            # The warehouse ended the session (its FATAL error is on the way): deliver it.
            self.client_writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.client_writer.wait_closed(), 5)
        for outcome in outcomes:
            if isinstance(outcome, Exception) and not isinstance(outcome, _GONE):
                log.error("session failed", exc_info=outcome, extra=self._who())

    def _who(self) -> dict[str, Any]:
        return {"user": self.user, "database": self.database, "pid": self.backend.pid}

    def _cancel_packet(self) -> bytes:
        body = self.backend.key_data[5:]
        return m.LENGTH.pack(16) + m.INT32.pack(m.CANCEL_REQUEST) + body

    # --- client to warehouse ---------------------------------------------------------------

    async def _from_client(self) -> None:
        reader, out = self.client_reader, self.backend.writer
        buffer = b""
        while True:
            chunk = await reader.read(CHUNK)
            if not chunk:
                raise ClientGone
            buffer += chunk
            pos, size, parts = 0, len(buffer), []
            while pos + 5 <= size:
                kind, length = m.HEADER.unpack_from(buffer, pos)
                end = pos + 1 + length
                if length < 4:
                    raise ClientGone(f"a message of type {kind!r} with length {length}")
                if end > size:
                    break
                if kind in b"QPBECSFX":
                    part = self._client_message(kind, buffer, pos, end)
                    parts.append(part)
                    if kind == b"X":
                        out.write(b"".join(parts))
                        await out.drain()
                        raise ClientGone
                else:
                    parts.append(buffer[pos:end])
                pos = end
            buffer = buffer[pos:]
            if parts:
                out.write(b"".join(parts))
                await out.drain()

    def _client_message(self, kind: bytes, buffer: bytes, pos: int, end: int) -> bytes:
        """The bytes to send the warehouse for one client message that the front looks at."""
        raw = buffer[pos:end]
        body = raw[5:]
        if kind == b"Q":
            return self._simple_query(m.query_text(body))
        if kind == b"P":
            return self._parse(m.parse_parse(body))
        if kind == b"B":
            portal, statement = m.bind_names(body)
            self.portals[portal] = self.statements.get(statement, "")
        elif kind == b"E":
            target = self.portals.get(m.execute_portal(body), "")
            command = target if isinstance(target, ZeroEtlCommand) else None
            text = target.statement if isinstance(target, ZeroEtlCommand) else target
            self.pending.append(Pending(self.groups_sent, False, text, command, _now()))
        elif kind == b"C":
            which, name = m.close_target(body)
            (self.statements if which == b"S" else self.portals).pop(name, None)
        elif kind in b"SF":  # Sync, FunctionCall: each ends with a ReadyForQuery
            self.groups_sent += 1
        return raw

    def _simple_query(self, text: str) -> bytes:
        group = self.groups_sent
        self.groups_sent += 1
        try:
            action = translate(text)
        except Refused as refusal:
            return self._refuse(text, refusal) + m.SYNC
        if isinstance(action, ZeroEtlCommand):
            self.pending.append(Pending(group, True, text, action, _now()))
            return m.query("")
        self.pending.append(Pending(group, True, text, None, _now()))
        return m.query(action.sql)

    def _parse(self, parse: m.Parse) -> bytes:
        try:
            action = translate(parse.query)
        except Refused as refusal:
            self.statements.pop(parse.name, None)
            return self._refuse(parse.query, refusal)
        if isinstance(action, ZeroEtlCommand):
            self.statements[parse.name] = action
            return m.parse(parse.name, "", parse.rest)
        self.statements[parse.name] = parse.query
        return m.parse(parse.name, action.sql, parse.rest)

    def _refuse(self, text: str, refusal: Refused) -> bytes:
        """A Describe the warehouse fails, in place of the refused statement (see the module)."""
        marker = f"{REFUSAL_MARKER}{next(_markers)}"
        self.refusals[marker] = refusal
        log.info(
            "statement refused",
            extra={**self._who(), "sqlstate": refusal.sqlstate, "reason": refusal.message},
        )
        now = _now()
        error = m.Error("ERROR", refusal.sqlstate, refusal.message)
        self._record(Pending(self.groups_sent, True, text, None, now, error=error), now)
        return m.describe_statement(marker)

    # --- warehouse to client ---------------------------------------------------------------

    async def _from_backend(self) -> None:
        reader, out = self.backend.reader, self.client_writer
        buffer = b""
        while True:
            chunk = await reader.read(CHUNK)
            if not chunk:
                return  # the warehouse closed the connection (after its own FATAL error)
            buffer = buffer + chunk if buffer else chunk
            while True:
                buffer = await self._forward_complete(buffer)
                if len(buffer) < 5:
                    break
                # A long message still arriving (a wide row): read the rest of it at once, and
                # forward it before waiting for more (it may be the last the warehouse sends).
                missing = 1 + m.LENGTH.unpack_from(buffer, 1)[0] - len(buffer)
                if missing <= CHUNK:
                    break
                buffer += await reader.readexactly(missing)
            await out.drain()

    async def _forward_complete(self, buffer: bytes) -> bytes:
        """Write the complete messages at the start of ``buffer`` to the client (DataRows as they
        are, others through _backend_message); return the incomplete rest."""
        pos, size, start = 0, len(buffer), 0
        parts: list[bytes] = []
        while pos + 5 <= size:
            end = pos + 1 + m.LENGTH.unpack_from(buffer, pos + 1)[0]
            if end > size:
                break
            if buffer[pos] != _DATA_ROW:  # rows, the bulk of it, are only stepped over
                kind = buffer[pos : pos + 1]
                replacement = await self._backend_message(kind, buffer[pos + 5 : end])
                if replacement is not None:
                    parts += (buffer[start:pos], replacement)
                    start = end
            pos = end
        if pos:
            parts.append(buffer[start:pos] if start or pos < size else buffer)
            self.client_writer.write(b"".join(parts) if len(parts) > 1 else parts[0])
        return buffer[pos:]

    async def _backend_message(self, kind: bytes, body: bytes) -> bytes | None:
        """Act on one warehouse message other than DataRow; bytes replace it for the client."""
        head = self.pending[0] if self.pending else None
        if head is not None and head.group != self.groups_done:
            head = None  # the reply under way is not that statement's (yet)
        if kind in b"CIs":
            if head is None:
                return None
            if kind == b"C" and (rows := m.rows_of(body)) is not None:
                head.rows = (head.rows or 0) + rows
            replacement = None
            if kind == b"I" and head.command is not None:
                replacement = await self._run_zero_etl(head)
            if not head.simple:
                self._finish(self.pending.popleft())
            return replacement
        if kind == b"E":
            return self._error(m.parse_error(body), head)
        if kind == b"Z":
            self.groups_done += 1
            while self.pending and self.pending[0].group < self.groups_done:
                self._finish(self.pending.popleft())
        return None

    def _error(self, error: m.Error, head: Pending | None) -> bytes | None:
        """An ErrorResponse: a refusal's marker is replaced by the refusal; the statement it
        ends is recorded as failed; the warehouse skips the rest of the group, so its other
        Executes never ran and are not recorded."""
        refusal = None
        if REFUSAL_MARKER in error.message and '"' in error.message:
            refusal = self.refusals.pop(error.message.split('"')[1], None)
        if head is not None and head.simple:
            head.error = error
        elif head is not None:
            if refusal is None:
                head.error = error
                self._finish(self.pending.popleft())
            while self.pending and self.pending[0].group == self.groups_done:
                self.pending.popleft()
        if refusal is None:
            return None
        return m.Error("ERROR", refusal.sqlstate, refusal.message).encode()

    async def _run_zero_etl(self, entry: Pending) -> bytes:
        assert entry.command is not None
        from zetl_redshift import integration

        dsn = psycopg2.extensions.make_dsn(
            host=self.front.config.warehouse.host,
            port=self.front.config.warehouse.port,
            dbname=self.database,
            user=self.user,
            password=self.password,
            sslmode=self.front.config.warehouse.sslmode,
            sslrootcert=self.front.config.warehouse.sslrootcert,
        )
        try:
            tag = await asyncio.to_thread(integration.run, entry.command.statement, dsn)
        except Refused as refusal:
            entry.error = m.Error("ERROR", refusal.sqlstate, refusal.message)
        except psycopg2.Error as exc:
            entry.error = m.Error("ERROR", exc.pgcode or "XX000", first_line(exc))
        except Exception as exc:
            entry.error = m.Error("ERROR", "XX000", first_line(exc))
        else:
            log.info("zero-ETL statement", extra={**self._who(), "tag": tag})
            return m.command_complete(tag)
        log.info("zero-ETL statement failed", extra={**self._who(), "error": entry.error.message})
        return entry.error.encode()

    def _finish(self, entry: Pending) -> None:
        self._record(entry, _now())

    def _record(self, entry: Pending, ended: datetime) -> None:
        if self.front.history is None or not entry.text:
            return
        error = entry.error
        status = "success"
        if error is not None:
            status = "canceled" if error.sqlstate == QUERY_CANCELED else "failed"
        self.front.history.record(
            history.QueryRecord(
                user_name=self.user,
                database_name=self.database,
                session_id=self.backend.pid,
                query_text=entry.text,
                start_time=entry.started,
                end_time=ended,
                status=status,
                returned_rows=entry.rows,
                error_message=None if error is None else error.message,
            )
        )


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class Front:
    """The listening server: accepts clients, negotiates TLS, logs them in, relays them."""

    def __init__(self, config: FrontConfig) -> None:
        self.config = config
        self.ssl_context: ssl.SSLContext | None = None
        self.history: history.QueryHistory | None = None
        self._installed: dict[str, asyncio.Future[None]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._server: asyncio.Server | None = None

    async def start(self) -> asyncio.Server:
        """Prepare (certificate, the front's schema) and listen; returns the bound server."""
        if self.config.tls:
            self.ssl_context = await asyncio.to_thread(self._tls_context)
        await asyncio.to_thread(self._install_home)
        home: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        home.set_result(None)
        self._installed[self.config.warehouse.database] = home
        if self.config.history:
            self.history = history.QueryHistory(
                self.config.warehouse.url, self.config.history_flush_seconds
            )
            self._spawn(self.history.run())
        try:
            self._server = await asyncio.start_server(
                self._accept, self.config.host, self.config.port, limit=CHUNK
            )
        except OSError as exc:
            raise ConfigError(
                f"cannot listen on {self.config.host}:{self.config.port}: {exc.strerror}"
            ) from exc
        log.info(
            "redshift front listening",
            extra={
                "address": f"{self.config.host}:{self.port}",
                "warehouse": f"{self.config.warehouse.host}:{self.config.warehouse.port}",
                "tls": self.config.tls,
            },
        )
        return self._server

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def _tls_context(self) -> ssl.SSLContext:
        from zetl_redshift.tls import server_context

        return server_context(self.config.tls_dir, self.config.tls_hostnames)

    def _install_home(self) -> None:
        """The front's own schema in its own database: history table and view, catalog."""
        conn = connect(self.config.warehouse.url)
        try:
            history.install(conn)
            catalog.install(conn)
            conn.commit()
        except psycopg2.Error as exc:
            raise ConfigError(
                f"the front's role cannot install its schema zetl_redshift in"
                f" {redact(self.config.warehouse.url)}: {first_line(exc)}"
                " (it needs CREATE on the database; docs/roles.md)"
            ) from exc
        finally:
            conn.close()

    def _spawn(self, coroutine: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        peer = writer.get_extra_info("peername")
        try:
            await self._serve_client(reader, writer)
        except _GONE:
            pass
        except m.ProtocolError as exc:
            log.warning("client refused", extra={"peer": str(peer), "reason": str(exc)})
        except ssl.SSLError as exc:
            log.warning("TLS handshake failed", extra={"peer": str(peer), "reason": str(exc)})
        except Exception:
            log.exception("client connection failed", extra={"peer": str(peer)})
        except asyncio.CancelledError:
            pass  # the front is stopping: this connection ends with it
        finally:
            writer.transport.abort()

    async def _serve_client(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        packet = m.parse_startup_packet(await _read_startup(reader))
        for _ in range(2):  # GSSENCRequest, then SSLRequest, is what libpq may send
            if not isinstance(packet, m.EncryptionRequest):
                break
            if packet.ssl and self.ssl_context is not None:
                writer.write(b"S")
                await writer.drain()
                await writer.start_tls(self.ssl_context)
            else:
                writer.write(b"N")
                await writer.drain()
            packet = m.parse_startup_packet(await _read_startup(reader))
        if isinstance(packet, m.CancelRequest):
            log.info("cancel request", extra={"pid": packet.pid})
            await wh.cancel(self.config.warehouse, packet.packet)
            return
        if not isinstance(packet, m.Startup):
            raise m.ProtocolError("a second encryption request")
        await self._log_in(packet, reader, writer)

    async def _log_in(
        self, startup: m.Startup, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        parameters = forwarded_parameters(startup.parameters)
        user = parameters.get("user", "")
        if not user:
            writer.write(m.Error("FATAL", "28000", "no PostgreSQL user name specified").encode())
            raise m.ProtocolError("a startup without a user name")
        database = parameters.setdefault("database", user)
        writer.write(m.authentication(m.AUTH_CLEARTEXT))
        await writer.drain()
        kind, body = await wh.read_message(reader)
        if kind != b"p":
            raise m.ProtocolError(f"expected a password message, got {kind!r}")
        password = m.query_text(body)
        who = {"user": user, "database": database}
        try:
            backend = await wh.connect(self.config.warehouse, parameters, password)
        except wh.BackendRefused as refused:
            log.info("login refused", extra={**who, "reason": str(refused)})
            writer.write(refused.error)
            await writer.drain()
            return
        except (OSError, TimeoutError) as exc:
            log.error("warehouse unreachable", extra={"reason": str(exc) or type(exc).__name__})
            error = m.Error("FATAL", "08006", "the warehouse behind the front is unreachable")
            writer.write(error.encode())
            await writer.drain()
            return
        try:
            await self._ensure_catalog(database)
            writer.write(self._welcome(backend))
            await writer.drain()
            log.debug("session started", extra={**who, "pid": backend.pid})
            session = Session(self, reader, writer, backend, user, database, password)
            await session.run()
        finally:
            backend.close()

    def _welcome(self, backend: wh.Backend) -> bytes:
        parts = [m.authentication(m.AUTH_OK)]
        for name, value in backend.parameters:
            parts.append(m.parameter_status(name, REDSHIFT_PARAMETERS.get(name, value)))
        parts += backend.notices
        parts += [backend.key_data, m.ready_for_query(backend.status)]
        return b"".join(parts)

    async def _ensure_catalog(self, database: str) -> None:
        """Install Redshift's catalog in a database the first time a client opens it."""
        task = self._installed.get(database)
        if task is None:
            task = asyncio.ensure_future(asyncio.to_thread(self._install_catalog, database))
            self._installed[database] = task
        await asyncio.shield(task)

    def _install_catalog(self, database: str) -> None:
        try:
            conn = connect(with_database(self.config.warehouse.url, database))
            try:
                catalog.install(conn)
                conn.commit()
            finally:
                conn.close()
        except Exception as exc:  # a database the front may not write: served without it
            log.warning(
                "catalog not installed", extra={"database": database, "reason": first_line(exc)}
            )


async def _read_startup(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readexactly(4)
    (length,) = m.LENGTH.unpack(head)
    if not 8 <= length <= m.MAX_STARTUP_LENGTH:
        raise m.ProtocolError(f"a startup packet of {length} bytes")
    return head + await reader.readexactly(length - 4)


async def serve(config: FrontConfig, stop: asyncio.Event | None = None) -> None:
    """Run the front until ``stop`` is set (or forever)."""
    front = Front(config)
    await front.start()
    try:
        await (stop.wait() if stop is not None else asyncio.Future())
    finally:
        await front.close()
