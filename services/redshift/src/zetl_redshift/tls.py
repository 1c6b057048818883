"""The front's TLS certificate: generated on first start, kept in a directory (a volume).

Redshift's drivers verify the server by default (redshift_connector: ``sslmode=verify-ca``), so
a self-signed server certificate is not enough: the front makes a small certificate authority of
its own, signs its server certificate with it and keeps ``ca.crt`` beside it for clients to
trust (``SSL_CERT_FILE`` for redshift_connector, ``sslrootcert`` for libpq). The CA's key is
never written: a new directory gives a new CA.
"""

from __future__ import annotations

import datetime
import ipaddress
import logging
import os
import ssl
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from zetl.errors import ConfigError

log = logging.getLogger(__name__)

CA_FILE = "ca.crt"
CERT_FILE = "server.crt"
KEY_FILE = "server.key"
VALID_DAYS = 3650


def server_context(directory: Path, hostnames: Sequence[str]) -> ssl.SSLContext:
    """The server side's TLS context, with the certificate in ``directory`` (made if missing)."""
    ensure_certificate(directory, hostnames)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(directory / CERT_FILE, directory / KEY_FILE)
    return context


def ensure_certificate(directory: Path, hostnames: Sequence[str]) -> None:
    if all((directory / name).exists() for name in (CA_FILE, CERT_FILE, KEY_FILE)):
        return
    try:
        directory.mkdir(parents=True, exist_ok=True)
        _generate(directory, hostnames)
    except OSError as exc:
        raise ConfigError(
            f"ZETL_REDSHIFT_TLS_DIR={directory}: cannot write the certificate: {exc.strerror}"
        ) from exc
    log.info("generated a TLS certificate", extra={"ca": str(directory / CA_FILE)})


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


def _generate(directory: Path, hostnames: Sequence[str]) -> None:
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("zetl redshift front CA")
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(hostnames[0] if hostnames else "localhost"))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(_subject_names(hostnames)), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    key_bytes = key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    # Key first, certificates last: a directory with all three files is a complete one.
    _write(directory / KEY_FILE, key_bytes, 0o600)
    _write(directory / CERT_FILE, cert.public_bytes(pem), 0o644)
    _write(directory / CA_FILE, ca.public_bytes(pem), 0o644)


def _write(path: Path, data: bytes, mode: int) -> None:
    """Write through a temporary file and a rename, so a reader never sees half a file."""
    temporary = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    temporary.replace(path)
