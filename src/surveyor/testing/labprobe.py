"""Probes run inside a lab namespace, for the lab's own checks (independent of the scan engine).

`python -m surveyor.testing.labprobe connect TIMEOUT ADDRESS:PORT...` connects to every target at
once and prints `{"address:port": {"state", "seconds"}}`: state `open` (connected), `closed`
(refused), `filtered` (no answer within TIMEOUT) or `unreachable` (no route, or no ARP answer).

`python -m surveyor.testing.labprobe grab TIMEOUT KIND ADDRESS:PORT...` reads what each service
says: the first line for KIND `banner`; status, Server header and title for `http`; the same plus
the certificate's subject and SHA-256 fingerprint for `https`.
"""

from __future__ import annotations

import errno
import hashlib
import json
import re
import socket
import ssl
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from cryptography import x509
from cryptography.x509.oid import NameOID

_UNREACHABLE = {errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN}
_TITLE = re.compile(rb"<title>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_MAX_RESPONSE = 65536


def _split(target: str) -> tuple[str, int]:
    address, _, port = target.rpartition(":")
    return address, int(port)


def connect(target: str, timeout: float) -> dict[str, object]:
    """Connect once to `address:port` and classify what happened."""
    started = time.monotonic()
    state = "open"
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(_split(target))
        except ConnectionRefusedError:
            state = "closed"
        except TimeoutError:
            state = "filtered"
        except OSError as exc:
            if exc.errno not in _UNREACHABLE:
                raise
            state = "unreachable"
    return {"state": state, "seconds": round(time.monotonic() - started, 4)}


def _read_all(sock: socket.socket) -> bytes:
    data = b""
    while len(data) < _MAX_RESPONSE:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def _http_facts(sock: socket.socket, host: str) -> dict[str, object]:
    sock.sendall(f"GET / HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
    head, _, body = _read_all(sock).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    title = _TITLE.search(body)
    return {
        "status": int(lines[0].split()[1]),
        "server": headers.get("Server"),
        "title": title.group(1).decode() if title else None,
    }


def grab(target: str, kind: str, timeout: float) -> dict[str, object]:
    """What the service at `address:port` says, as a dict of facts."""
    address, port = _split(target)
    with socket.create_connection((address, port), timeout=timeout) as sock:
        if kind == "banner":
            return {"banner": sock.makefile("rb").readline().decode().rstrip("\r\n")}
        if kind == "http":
            return _http_facts(sock, address)
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        with context.wrap_socket(sock) as tls:
            der = tls.getpeercert(binary_form=True) or b""
            certificate = x509.load_der_x509_certificate(der)
            common_name = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
            facts = _http_facts(tls, address)
        facts["subject_cn"] = str(common_name[0].value)
        facts["sha256"] = hashlib.sha256(der).hexdigest()
        return facts


def _run_all(targets: list[str], probe: Callable[[str], dict[str, object]]) -> None:
    with ThreadPoolExecutor(max_workers=max(1, min(64, len(targets)))) as pool:
        results = list(pool.map(probe, targets))
    print(json.dumps(dict(zip(targets, results, strict=True))))


def main() -> None:
    command, timeout = sys.argv[1], float(sys.argv[2])
    if command == "connect":
        _run_all(sys.argv[3:], lambda target: connect(target, timeout))
    elif command == "grab":
        kind = sys.argv[3]
        _run_all(sys.argv[4:], lambda target: grab(target, kind, timeout))
    else:
        raise SystemExit(f"unknown command {command!r}: use connect or grab")


if __name__ == "__main__":
    main()
