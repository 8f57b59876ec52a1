"""Listeners for benchmark (a), in their own process so they never compete with a scanner.

`python -m bench._scan_listeners ADDRESS:PORT...` listens on each loopback address and port it
can bind, prints the bound ones as one JSON line, accepts and closes every connection, and exits
when its standard input closes.
"""

from __future__ import annotations

import contextlib
import json
import selectors
import socket
import sys
import threading
from ipaddress import ip_address


def _listen(target: str) -> socket.socket | None:
    address, _, port = target.rpartition(":")
    if not ip_address(address).is_loopback:
        raise SystemExit(f"{target}: benchmark listeners stay on 127.0.0.0/8")
    listener = socket.socket()
    try:
        listener.bind((address, int(port)))
    except OSError:  # taken by something else on this machine: leave it out
        listener.close()
        return None
    listener.listen(1024)
    listener.setblocking(False)
    return listener


def _serve(selector: selectors.BaseSelector, stop: threading.Event) -> None:
    while not stop.is_set():
        for key, _ in selector.select(timeout=0.2):
            listener = key.fileobj
            assert isinstance(listener, socket.socket)
            while True:
                try:
                    conn, _ = listener.accept()
                except OSError:  # nothing more to accept now, or a reset connection
                    break
                conn.close()


def main() -> None:
    selector = selectors.DefaultSelector()
    bound = []
    for target in sys.argv[1:]:
        listener = _listen(target)
        if listener is not None:
            selector.register(listener, selectors.EVENT_READ)
            bound.append(target)
    print(json.dumps(bound), flush=True)
    stop = threading.Event()
    server = threading.Thread(target=_serve, args=(selector, stop), daemon=True)
    server.start()
    with contextlib.suppress(KeyboardInterrupt):
        sys.stdin.read()
    stop.set()
    server.join(1.0)


if __name__ == "__main__":
    main()
