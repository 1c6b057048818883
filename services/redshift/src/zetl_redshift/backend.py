"""A client's connection to the warehouse: opened as the client's own role, with its password.

The front asks every client for its password in cleartext (inside TLS), the one form all
Redshift drivers and libpq accept, and answers whatever the warehouse asks for with it:
SCRAM-SHA-256, MD5 or cleartext. The warehouse decides who may log in and what they may do;
the front grants nothing. A refusal comes back as the warehouse's own ErrorResponse.

The connection is encrypted as the warehouse URL's sslmode says, as libpq would: the servers
of the platform (and RDS, Redshift) refuse anything else.
"""

from __future__ import annotations

import asyncio
import hashlib
import ssl
from dataclasses import dataclass, field

import scramp

from zetl_redshift import messages as m
from zetl_redshift.config import Warehouse

SCRAM = "SCRAM-SHA-256"
SSL_REQUEST = m.INT32.pack(8) + m.INT32.pack(80877103)


class BackendRefused(Exception):  # noqa: N818 - a refusal, carried to the client as it came
    """The warehouse refused the login or the startup: ``error`` is its ErrorResponse."""

    def __init__(self, error: bytes) -> None:
        super().__init__(m.parse_error(error[5:]).message)
        self.error = error


@dataclass
class Backend:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    parameters: list[tuple[str, str]] = field(default_factory=list)
    key_data: bytes = b""  # the BackendKeyData message as it came: real pid and secret key
    pid: int = 0
    notices: list[bytes] = field(default_factory=list)
    status: bytes = b"I"

    def close(self) -> None:
        """Drop the connection now: the backend notices at its next read or write."""
        self.writer.transport.abort()


async def read_message(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    header = await reader.readexactly(5)
    kind, length = m.HEADER.unpack(header)
    if length < 4:
        raise m.ProtocolError(f"a message of type {kind!r} with length {length}")
    return kind, await reader.readexactly(length - 4)


async def connect(
    warehouse: Warehouse, parameters: dict[str, str], password: str, timeout: float = 30.0
) -> Backend:
    """Log in to the warehouse with the client's startup parameters and password; return once
    it is ready for queries. Raises BackendRefused with the warehouse's error."""
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection(warehouse.host, warehouse.port), timeout
    )
    backend = Backend(reader, writer)
    try:
        await asyncio.wait_for(_encrypt(backend, warehouse), timeout)
        await asyncio.wait_for(_start(backend, parameters, password), timeout)
    except BaseException:
        backend.close()
        raise
    return backend


async def _encrypt(backend: Backend, warehouse: Warehouse) -> None:
    """Ask for TLS (SSLRequest) unless sslmode=disable; a server that declines is refused
    from require on, and spoken to in plaintext below it (as libpq does)."""
    if warehouse.sslmode == "disable":
        return
    backend.writer.write(SSL_REQUEST)
    await backend.writer.drain()
    answer = await backend.reader.readexactly(1)
    if answer == b"S":
        await backend.writer.start_tls(client_context(warehouse), server_hostname=warehouse.host)
    elif warehouse.sslmode in ("require", "verify-ca", "verify-full"):
        text = f"the warehouse does not offer TLS, which sslmode={warehouse.sslmode} requires"
        raise BackendRefused(m.Error("FATAL", "08004", text).encode())


def client_context(warehouse: Warehouse) -> ssl.SSLContext:
    """libpq's checks for the sslmode: verify-full the chain and the name, verify-ca the chain
    only, anything lower encryption alone."""
    if not warehouse.sslmode.startswith("verify"):
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    context = ssl.create_default_context(cafile=warehouse.sslrootcert)
    context.check_hostname = warehouse.sslmode == "verify-full"
    return context


async def _start(backend: Backend, parameters: dict[str, str], password: str) -> None:
    writer = backend.writer
    writer.write(m.startup_message(parameters))
    await writer.drain()
    scram: scramp.ScramClient | None = None
    while True:
        kind, body = await read_message(backend.reader)
        if kind == b"E":
            raise BackendRefused(m.message(kind, body))
        if kind == b"R":
            (code,) = m.INT32.unpack_from(body)
            reply, scram = _answer(code, body[4:], parameters.get("user", ""), password, scram)
            if reply:
                writer.write(reply)
                await writer.drain()
        elif kind == b"S":
            backend.parameters.append(m.parse_parameter_status(body))
        elif kind == b"K":
            backend.key_data = m.message(kind, body)
            (backend.pid,) = m.INT32.unpack_from(body)
        elif kind == b"N":
            backend.notices.append(m.message(kind, body))
        elif kind == b"Z":
            backend.status = body[:1]
            return
        else:
            raise m.ProtocolError(f"the warehouse sent {kind!r} during startup")


def _answer(
    code: int, data: bytes, user: str, password: str, scram: scramp.ScramClient | None
) -> tuple[bytes, scramp.ScramClient | None]:
    """What to send for an authentication request: (message or b"", the SCRAM exchange)."""
    if code == m.AUTH_OK:
        return b"", scram
    if code == m.AUTH_CLEARTEXT:
        return m.password_message(password), scram
    if code == m.AUTH_MD5:
        inner = hashlib.md5((password + user).encode(), usedforsecurity=False).hexdigest()
        outer = hashlib.md5(inner.encode() + data[:4], usedforsecurity=False).hexdigest()
        return m.password_message("md5" + outer), scram
    if code == m.AUTH_SASL:
        offered = [name for name in m.split_cstrings(data) if name]
        if SCRAM not in offered:
            raise m.ProtocolError(f"the warehouse offers SASL {offered}, not {SCRAM}")
        client = scramp.ScramClient([SCRAM], user, password)
        first = client.get_client_first().encode()
        body = m.cstring(SCRAM) + m.INT32.pack(len(first)) + first
        return m.message(b"p", body), client
    if code == m.AUTH_SASL_CONTINUE and scram is not None:
        scram.set_server_first(data.decode())
        return m.message(b"p", scram.get_client_final().encode()), scram
    if code == m.AUTH_SASL_FINAL and scram is not None:
        scram.set_server_final(data.decode())
        return b"", scram
    raise m.ProtocolError(f"the warehouse asks for authentication method {code}, not supported")


async def cancel(warehouse: Warehouse, packet: bytes, timeout: float = 10.0) -> None:
    """Forward a client's CancelRequest: the warehouse finds the backend by its pid and key."""
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection(warehouse.host, warehouse.port), timeout
    )
    try:
        writer.write(packet)
        await writer.drain()
        await asyncio.wait_for(reader.read(1), timeout)  # the server closes when done
    finally:
        writer.close()
