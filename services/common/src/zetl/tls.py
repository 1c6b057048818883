"""The platform's TLS certificates: one small certificate authority, a server certificate each.

The local servers require TLS as RDS does (``rds.force_ssl = 1``): the source and the warehouse
(Postgres) and the Redshift front each present a certificate signed by one CA, so a client that
trusts ``ca.crt`` can check every one of them (``sslmode=verify-full``) and ``sslmode=require``
works everywhere. The certificates are made once, on first start, into a directory (a volume):
``ca.crt`` at its top, ``NAME/server.crt``, ``NAME/server.key`` and ``NAME/ca.crt`` per server.
The CA's key is never written: a new directory gives a new CA.

Compose makes the directory with ``python -m zetl.tls DIR NAME:UID:HOST,HOST ...`` (UID: who
must own the key, since Postgres refuses a key others can read); the test harness and the
Redshift front call ``ensure_certificates``.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from zetl.errors import ConfigError

CA_FILE = "ca.crt"
CERT_FILE = "server.crt"
KEY_FILE = "server.key"
VALID_DAYS = 3650


@dataclass(frozen=True)
class ServerCertificate:
    """A server certificate to make: where its files go, the names it is valid for, and the
    user that must own its key (None: whoever runs this)."""

    directory: Path
    hostnames: tuple[str, ...]
    owner: int | None = None

    def complete(self) -> bool:
        return all((self.directory / name).exists() for name in (CA_FILE, CERT_FILE, KEY_FILE))


def ensure_certificates(ca_file: Path, servers: Sequence[ServerCertificate]) -> bool:
    """Make the CA (``ca_file``) and every server's certificate unless all exist already;
    True when they were made. Raises ConfigError when the directory cannot be written."""
    if ca_file.exists() and all(server.complete() for server in servers):
        return False
    try:
        _generate(ca_file, servers)
    except OSError as exc:
        raise ConfigError(f"{ca_file.parent}: cannot write the TLS certificates: {exc}") from exc
    return True


def _generate(ca_file: Path, servers: Sequence[ServerCertificate]) -> None:
    now = datetime.datetime.now(datetime.UTC)
    validity = (now - datetime.timedelta(minutes=5), now + datetime.timedelta(days=VALID_DAYS))
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("zetl local CA")
    ca = (
        _builder(ca_name, ca_name, ca_key.public_key(), validity)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    ca_pem = ca.public_bytes(pem)
    for server in servers:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = _name(server.hostnames[0] if server.hostnames else "localhost")
        cert = (
            _builder(subject, ca_name, key.public_key(), validity)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(cert_sign=False), critical=True)
            .add_extension(
                x509.SubjectAlternativeName(_subject_names(server.hostnames)), critical=False
            )
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
            )
            .sign(ca_key, hashes.SHA256())
        )
        key_pem = key.private_bytes(
            pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        server.directory.mkdir(parents=True, exist_ok=True)
        # Key first, CA last: a directory with all three files is a complete one.
        _write(server.directory / KEY_FILE, key_pem, 0o600, server.owner)
        _write(server.directory / CERT_FILE, cert.public_bytes(pem), 0o644, server.owner)
        _write(server.directory / CA_FILE, ca_pem, 0o644, server.owner)
    ca_file.parent.mkdir(parents=True, exist_ok=True)
    _write(ca_file, ca_pem, 0o644, None)


def _builder(
    subject: x509.Name,
    issuer: x509.Name,
    public_key: ec.EllipticCurvePublicKey,
    validity: tuple[datetime.datetime, datetime.datetime],
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(validity[0])
        .not_valid_after(validity[1])
    )


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "zetl"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _subject_names(hostnames: Sequence[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for host in hostnames:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


def _write(path: Path, data: bytes, mode: int, owner: int | None) -> None:
    """Write through a temporary file and a rename, so a reader never sees half a file."""
    temporary = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    if owner is not None:
        os.chown(temporary, owner, owner)
    temporary.replace(path)


def parse_server(directory: Path, spec: str) -> ServerCertificate:
    """``NAME:UID:HOST,HOST`` (UID may be empty) as a certificate in ``directory/NAME``."""
    parts = spec.split(":", 2)
    if (
        len(parts) != 3
        or not parts[0]
        or not parts[2]
        or not (parts[1] == "" or parts[1].isdigit())
    ):
        raise ConfigError(f"{spec!r} is not NAME:UID:HOST,HOST (UID may be empty)")
    name, uid, hosts = parts
    hostnames = tuple(host.strip() for host in hosts.split(",") if host.strip())
    return ServerCertificate(directory / name, hostnames, int(uid) if uid else None)


def main(argv: Sequence[str]) -> int:
    if len(argv) < 2:
        print("usage: python -m zetl.tls DIR NAME:UID:HOST,HOST ...", file=sys.stderr)
        return 2
    directory = Path(argv[0])
    try:
        servers = [parse_server(directory, spec) for spec in argv[1:]]
        made = ensure_certificates(directory / CA_FILE, servers)
    except ConfigError as exc:
        print(f"zetl: error: {exc}", file=sys.stderr)
        return int(exc.exit_code)
    state = "made" if made else "kept"
    print(f"zetl tls: {state} the certificates in {directory} (clients trust {CA_FILE})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
