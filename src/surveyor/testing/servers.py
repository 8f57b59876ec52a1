"""What the private servers the tests start share (`named.py`, `snmpd.py`, `slapd.py`,
`postgres.py`, and the lab's certificates in `labcerts.py`): a free port, stopping the
server's process, and writing a certificate with its key."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes


def free_tcp_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on at `host` right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def stop_process(process: subprocess.Popen[Any] | None) -> None:
    """Stop a server's process if it still runs: ask it to end, and kill it after 10 s."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def write_certificate(
    certificate: x509.Certificate, key: PrivateKeyTypes, cert_file: Path, key_file: Path
) -> None:
    """The certificate and its private key as PEM files, the key readable only by its
    owner."""
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_file.chmod(0o600)
