"""The Postgres v3 wire protocol, as far as the front reads or writes it.

A message is a type byte, a 4-byte length (itself included) and a body; the startup-phase
packets have no type byte. The front decodes only what it acts on (startup, password, Query,
Parse, Bind, Execute, Close and the backend's ErrorResponse); everything else travels as bytes.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

LENGTH = struct.Struct("!I")
HEADER = struct.Struct("!cI")
INT32 = struct.Struct("!i")

PROTOCOL_3 = 196608
SSL_REQUEST = 80877103
GSSENC_REQUEST = 80877104
CANCEL_REQUEST = 80877102

# Startup packets are small; anything longer is not a Postgres client.
MAX_STARTUP_LENGTH = 10_000

# Authentication request codes (the body of an 'R' message).
AUTH_OK = 0
AUTH_CLEARTEXT = 3
AUTH_MD5 = 5
AUTH_SASL = 10
AUTH_SASL_CONTINUE = 11
AUTH_SASL_FINAL = 12


class ProtocolError(Exception):
    """The peer sent something the protocol does not allow: the connection ends with this."""


def message(kind: bytes, body: bytes = b"") -> bytes:
    return HEADER.pack(kind, len(body) + 4) + body


def cstring(text: str) -> bytes:
    return text.encode() + b"\0"


def split_cstrings(body: bytes) -> list[str]:
    """A body of NUL-terminated strings (the last terminator optional) as text."""
    return [part.decode(errors="replace") for part in body.split(b"\0")]


def read_cstring(body: bytes, pos: int) -> tuple[str, int]:
    """The NUL-terminated string at ``pos`` and the position after it."""
    end = body.find(b"\0", pos)
    if end < 0:
        raise ProtocolError("a string without its terminating NUL")
    return body[pos:end].decode(errors="replace"), end + 1


# --- startup phase -------------------------------------------------------------------------


@dataclass(frozen=True)
class Startup:
    """A StartupMessage: protocol 3.0 and its parameters, in the client's order."""

    parameters: dict[str, str]


@dataclass(frozen=True)
class CancelRequest:
    packet: bytes  # the whole packet, forwarded as it came: pid and secret key inside
    pid: int


@dataclass(frozen=True)
class EncryptionRequest:
    ssl: bool  # True: SSLRequest; False: GSSENCRequest


StartupPacket = Startup | CancelRequest | EncryptionRequest


def parse_startup_packet(packet: bytes) -> StartupPacket:
    """The packet a connection opens with (its length word included)."""
    if len(packet) < 8:
        raise ProtocolError("a startup packet shorter than 8 bytes")
    (code,) = INT32.unpack_from(packet, 4)
    if code == SSL_REQUEST:
        return EncryptionRequest(ssl=True)
    if code == GSSENC_REQUEST:
        return EncryptionRequest(ssl=False)
    if code == CANCEL_REQUEST:
        if len(packet) != 16:
            raise ProtocolError("a CancelRequest that is not 16 bytes long")
        return CancelRequest(packet, INT32.unpack_from(packet, 8)[0])
    if code != PROTOCOL_3:
        raise ProtocolError(f"protocol {code >> 16}.{code & 0xFFFF} is not supported (3.0 is)")
    words = split_cstrings(packet[8:])
    # key, value, key, value, ..., "" (the list's end), then the final NUL's empty split
    pairs = words[: len(words) - (len(words) % 2)]
    parameters: dict[str, str] = {}
    for key, value in zip(pairs[::2], pairs[1::2], strict=True):
        if not key:
            break
        parameters[key] = value
    return Startup(parameters)


def startup_message(parameters: dict[str, str]) -> bytes:
    body = INT32.pack(PROTOCOL_3)
    body += b"".join(cstring(k) + cstring(v) for k, v in parameters.items()) + b"\0"
    return LENGTH.pack(len(body) + 4) + body


def authentication(code: int, data: bytes = b"") -> bytes:
    return message(b"R", INT32.pack(code) + data)


def parameter_status(name: str, value: str) -> bytes:
    return message(b"S", cstring(name) + cstring(value))


def parse_parameter_status(body: bytes) -> tuple[str, str]:
    name, pos = read_cstring(body, 0)
    value, _ = read_cstring(body, pos)
    return name, value


def password_message(password: str) -> bytes:
    return message(b"p", cstring(password))


# --- errors and completions ----------------------------------------------------------------


@dataclass(frozen=True)
class Error:
    """An ErrorResponse's fields that the front looks at or writes."""

    severity: str
    sqlstate: str
    message: str
    detail: str | None = None
    hint: str | None = None

    def encode(self) -> bytes:
        fields = [b"S" + cstring(self.severity), b"V" + cstring(self.severity)]
        fields += [b"C" + cstring(self.sqlstate), b"M" + cstring(self.message)]
        if self.detail:
            fields.append(b"D" + cstring(self.detail))
        if self.hint:
            fields.append(b"H" + cstring(self.hint))
        return message(b"E", b"".join(fields) + b"\0")


def parse_error(body: bytes) -> Error:
    fields = {
        part[:1].decode(): part[1:].decode(errors="replace") for part in body.split(b"\0") if part
    }
    return Error(
        severity=fields.get("V", fields.get("S", "ERROR")),
        sqlstate=fields.get("C", "XX000"),
        message=fields.get("M", ""),
        detail=fields.get("D"),
        hint=fields.get("H"),
    )


def command_complete(tag: str) -> bytes:
    return message(b"C", cstring(tag))


def ready_for_query(status: bytes) -> bytes:
    return message(b"Z", status)


def rows_of(tag: bytes) -> int | None:
    """The row count a CommandComplete tag ends with (SELECT 3, INSERT 0 3, ...), if any."""
    last = tag.rstrip(b"\0").rsplit(b" ", 1)[-1]
    return int(last) if last.isdigit() else None


# --- frontend messages the front rewrites ---------------------------------------------------


def query_text(body: bytes) -> str:
    text, _ = read_cstring(body, 0)
    return text


def query(text: str) -> bytes:
    return message(b"Q", cstring(text))


@dataclass(frozen=True)
class Parse:
    name: str
    query: str
    rest: bytes  # parameter type OIDs, forwarded untouched


def parse_parse(body: bytes) -> Parse:
    name, pos = read_cstring(body, 0)
    text, pos = read_cstring(body, pos)
    return Parse(name, text, body[pos:])


def parse(name: str, text: str, rest: bytes) -> bytes:
    return message(b"P", cstring(name) + cstring(text) + rest)


def bind_names(body: bytes) -> tuple[str, str]:
    """A Bind's (portal, statement) names."""
    portal, pos = read_cstring(body, 0)
    statement, _ = read_cstring(body, pos)
    return portal, statement


def execute_portal(body: bytes) -> str:
    portal, _ = read_cstring(body, 0)
    return portal


def close_target(body: bytes) -> tuple[bytes, str]:
    """A Close's kind (b'S' statement, b'P' portal) and name."""
    name, _ = read_cstring(body, 1)
    return body[:1], name


def describe_statement(name: str) -> bytes:
    return message(b"D", b"S" + cstring(name))


SYNC = message(b"S")
TERMINATE = message(b"X")
