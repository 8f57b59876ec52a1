"""A TCP relay through a Unix socket, so a process in the lab can reach one loopback service.

The scanner's namespace has no route out, yet an explorer running there must reach its console,
which listens on the loopback of the namespace the tests run in. A Unix socket is a file, not a
network address, so it crosses namespaces without creating any route:

    explorer -> 127.0.0.1:PORT (scanner namespace)  `labrelay listen-tcp PORT SOCKET`
             -> SOCKET (a file in the lab's directory)
             -> 127.0.0.1:PORT (caller's namespace)  `labrelay listen-unix SOCKET PORT`

Each side prints `ready` once listening and runs until its standard input closes.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import threading
from collections.abc import Callable

_CHUNK = 65536


def _pump(source: socket.socket, target: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while chunk := source.recv(_CHUNK):
            target.sendall(chunk)
    # Either side hanging up ends the whole connection, so the other side sees it at once
    # (a console holding a long poll learns that its explorer is gone).
    for sock in (source, target):
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def _splice(client: socket.socket, connect: Callable[[], socket.socket]) -> None:
    try:
        upstream = connect()
    except OSError:
        client.close()
        return
    with client, upstream:
        back = threading.Thread(target=_pump, args=(upstream, client), daemon=True)
        back.start()
        _pump(client, upstream)
        back.join()


def _serve(listener: socket.socket, connect: Callable[[], socket.socket]) -> None:
    while True:
        client, _ = listener.accept()
        threading.Thread(target=_splice, args=(client, connect), daemon=True).start()


def listen_tcp(port: int, socket_path: str) -> socket.socket:
    """Listen on 127.0.0.1:`port` here; each connection continues through `socket_path`."""
    listener = socket.create_server(("127.0.0.1", port))

    def connect() -> socket.socket:
        upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        upstream.connect(socket_path)
        return upstream

    threading.Thread(target=_serve, args=(listener, connect), daemon=True).start()
    return listener


def listen_unix(socket_path: str, port: int) -> socket.socket:
    """Listen on `socket_path`; each connection continues to 127.0.0.1:`port` here."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(socket_path)
    listener.listen(128)

    def connect() -> socket.socket:
        return socket.create_connection(("127.0.0.1", port))

    threading.Thread(target=_serve, args=(listener, connect), daemon=True).start()
    return listener


def main() -> None:
    mode = sys.argv[1]
    if mode == "listen-tcp":
        listen_tcp(int(sys.argv[2]), sys.argv[3])
    elif mode == "listen-unix":
        listen_unix(sys.argv[2], int(sys.argv[3]))
    else:
        raise SystemExit(f"unknown mode {mode!r}: use listen-tcp or listen-unix")
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    while sys.stdin.buffer.read(4096):
        pass
    os._exit(0)


if __name__ == "__main__":
    main()
