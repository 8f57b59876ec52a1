"""TLS: a handshake without verification, and the facts of the server's certificate."""

from __future__ import annotations

import _ssl
import contextlib
import functools
import hashlib
import socket
import ssl
from datetime import UTC, datetime
from typing import Any

from cryptography import x509

#: Certificates of a server's chain described at most, after its own (a server may send any
#: number; real chains hold one to three).
MAX_CHAIN = 8


#: What the TLS probe offers by ALPN (RFC 7301) where it asks in HTTP inside: the server's
#: choice says whether it speaks HTTP/2.
HTTP_ALPN = ("h2", "http/1.1")


@functools.cache
def scanning_context(alpn: tuple[str, ...] = ()) -> ssl.SSLContext:
    """A client context that accepts any certificate and any protocol version the library
    allows: a scanner describes what it finds, it does not trust it. `alpn`: the protocols
    offered by ALPN, none by default."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    # a library without security levels keeps its defaults
    with contextlib.suppress(ssl.SSLError):
        context.set_ciphers("ALL:@SECLEVEL=0")
    if alpn:
        context.set_alpn_protocols(list(alpn))
    return context


def handshake(
    sock: socket.socket, server_name: str | None, timeout: float, alpn: tuple[str, ...] = ()
) -> ssl.SSLSocket:
    """Wrap a connected socket in TLS; `server_name` is sent as SNI (names only, not
    addresses), `alpn` offered by ALPN."""
    sock.settimeout(timeout)
    return scanning_context(alpn).wrap_socket(sock, server_hostname=server_name)


def refused_alpn(error: ssl.SSLError) -> bool:
    """Whether a handshake failed because the server accepts none of the protocols offered
    by ALPN (a `no_application_protocol` alert), rather than for any other reason."""
    return "NO_APPLICATION_PROTOCOL" in (getattr(error, "reason", None) or "")


def session_facts(tls: ssl.SSLSocket) -> dict[str, Any]:
    """The certificate facts of an established session, with its protocol version, cipher,
    the protocol the server chose by ALPN (`alpn`, None when none was offered or chosen)
    and the chain it sent."""
    der = tls.getpeercert(binary_form=True) or b""
    cipher = tls.cipher()
    facts = certificate_facts(der)
    chain = chain_facts(tls)
    return {
        **facts,
        "version": tls.version(),
        "cipher": cipher[0] if cipher else None,
        "alpn": tls.selected_alpn_protocol(),
        "chain": chain,
        # the top of what the server sent: who vouches for the whole chain
        "chain_issuer": chain[-1]["issuer"] if chain else facts["issuer"],
    }


def chain_facts(tls: ssl.SSLSocket) -> list[dict[str, Any]]:
    """The subject and issuer of each certificate the server sent after its own, in the
    order sent (its intermediates, perhaps its root), at most `MAX_CHAIN`; empty when it sent
    only its own. Read as sent, never verified."""
    reader = getattr(tls, "get_unverified_chain", None)  # public from Python 3.13
    if reader is None:
        reader = getattr(getattr(tls, "_sslobj", None), "get_unverified_chain", None)
    if reader is None:
        return []
    try:
        sent = list(reader() or ())
    except (ssl.SSLError, ValueError):
        return []
    described = []
    for item in sent[1 : 1 + MAX_CHAIN]:
        der = item if isinstance(item, bytes) else item.public_bytes(_ssl.ENCODING_DER)
        facts = certificate_facts(der)
        described.append({"subject": facts["subject"], "issuer": facts["issuer"]})
    return described


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
