"""The front's TLS certificate: generated on first start, kept in a directory (a volume).

Redshift's drivers verify the server by default (redshift_connector: ``sslmode=verify-ca``), so
a self-signed server certificate is not enough: the certificate is signed by a CA whose
``ca.crt`` sits beside it for clients to trust (``SSL_CERT_FILE`` for redshift_connector,
``sslrootcert`` for libpq). Compose makes the directory with the other servers' certificates
(one CA for the platform, zetl.tls); started alone, the front makes a CA of its own.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Sequence
from pathlib import Path

from zetl.tls import CA_FILE, CERT_FILE, KEY_FILE, ServerCertificate, ensure_certificates

log = logging.getLogger(__name__)

__all__ = ["CA_FILE", "CERT_FILE", "KEY_FILE", "ensure_certificate", "server_context"]


def server_context(directory: Path, hostnames: Sequence[str]) -> ssl.SSLContext:
    """The server side's TLS context, with the certificate in ``directory`` (made if missing)."""
    ensure_certificate(directory, hostnames)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(directory / CERT_FILE, directory / KEY_FILE)
    return context


def ensure_certificate(directory: Path, hostnames: Sequence[str]) -> None:
    server = ServerCertificate(directory, tuple(hostnames))
    if ensure_certificates(directory / CA_FILE, [server]):
        log.info("generated a TLS certificate", extra={"ca": str(directory / CA_FILE)})
