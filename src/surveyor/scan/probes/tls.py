"""TLS: a handshake without verification, and the facts of the server's certificate."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import socket
import ssl
from datetime import UTC, datetime
from typing import Any

from cryptography import x509


@functools.cache
def scanning_context() -> ssl.SSLContext:
    """A client context that accepts any certificate and any protocol version the library
    allows: a scanner describes what it finds, it does not trust it."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    # a library without security levels keeps its defaults
    with contextlib.suppress(ssl.SSLError):
        context.set_ciphers("ALL:@SECLEVEL=0")
    return context


def handshake(sock: socket.socket, server_name: str | None, timeout: float) -> ssl.SSLSocket:
    """Wrap a connected socket in TLS; `server_name` is sent as SNI (names only, not addresses)."""
    sock.settimeout(timeout)
    return scanning_context().wrap_socket(sock, server_hostname=server_name)


def session_facts(tls: ssl.SSLSocket) -> dict[str, Any]:
    """The certificate facts of an established session, with its protocol version and cipher."""
    der = tls.getpeercert(binary_form=True) or b""
    cipher = tls.cipher()
    return {
        **certificate_facts(der),
        "version": tls.version(),
        "cipher": cipher[0] if cipher else None,
    }


def certificate_facts(der: bytes) -> dict[str, Any]:
    """Subject, issuer, SANs, validity (RFC 3339) and SHA-256 fingerprint (hex) of a DER
    certificate; a certificate that cannot be parsed keeps only its fingerprint."""
    facts: dict[str, Any] = {
        "subject": None,
        "issuer": None,
        "sans": [],
        "not_before": None,
        "not_after": None,
        "sha256": hashlib.sha256(der).hexdigest() if der else None,
    }
    if not der:
        return facts
    # a device's malformed certificate keeps what could be read, and never ends the scan
    with contextlib.suppress(Exception):
        certificate = x509.load_der_x509_certificate(der)
        facts["subject"] = certificate.subject.rfc4514_string()
        facts["issuer"] = certificate.issuer.rfc4514_string()
        facts["not_before"] = _rfc3339(certificate.not_valid_before_utc)
        facts["not_after"] = _rfc3339(certificate.not_valid_after_utc)
        facts["sans"] = _alternative_names(certificate)
    return facts


def _alternative_names(certificate: x509.Certificate) -> list[str]:
    try:
        extension = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return []
    names: list[str] = []
    for name in extension.value:
        if isinstance(name, x509.DNSName | x509.RFC822Name | x509.UniformResourceIdentifier):
            names.append(name.value)
        elif isinstance(name, x509.IPAddress):
            names.append(str(name.value))
    return names


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
