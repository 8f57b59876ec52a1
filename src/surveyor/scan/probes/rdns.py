"""Name resolution for a scan: the `Resolver` seam, and forward lookups of hostname targets,
bounded by a timeout on a small thread pool (reverse lookups of responding hosts are
`reverse_dns.ReverseLookups`).

The system resolver has no timeout of its own that a caller controls, so each lookup runs on a
pool thread and the caller waits at most `timeout`; a lookup that overruns finishes in the
background (on a daemon thread: it never delays the process's exit) and its answer is
dropped. `Resolver` is the seam tests replace.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Protocol

from surveyor.scan.daemon_pool import DaemonPool


class Resolver(Protocol):
    """Turns addresses into names and names into addresses; may raise OSError or block."""

    def reverse(self, address: str) -> list[str]: ...

    def forward(self, name: str) -> list[str]: ...


class SystemResolver:
    """The operating system's resolver (hosts file, DNS, ...)."""

    def reverse(self, address: str) -> list[str]:
        name, aliases, _ = socket.gethostbyaddr(address)
        return [name, *aliases]

    def forward(self, name: str) -> list[str]:
        answers = socket.getaddrinfo(name, None, proto=socket.IPPROTO_TCP)
        # IPv4 first: it is what most inventories key on
        ordered = sorted(answers, key=lambda answer: answer[0] != socket.AF_INET)
        return list(dict.fromkeys(str(answer[4][0]) for answer in ordered))


class BoundedResolver:
    """A `Resolver` whose lookups give up after `timeout`, answering no names instead of
    raising; names come back lower-cased, without a trailing dot, each once."""

    def __init__(self, resolver: Resolver, *, timeout: float, threads: int) -> None:
        self._resolver = resolver
        self._timeout = timeout
        self._threads = max(1, threads)
        self._pool = DaemonPool(self._threads, "surveyor-dns")

    def forward(self, name: str) -> list[str]:
        return self._wait(self._pool.submit(self._resolver.forward, name))

    def forward_all(self, names: Sequence[str]) -> dict[str, list[str]]:
        """Look several names up side by side; each may take `timeout` of a thread's time."""
        futures = {name: self._pool.submit(self._resolver.forward, name) for name in names}
        rounds = -(-len(futures) // self._threads)
        deadline = time.monotonic() + self._timeout * max(1, rounds)
        return {
            name: self._wait(future, max(0.0, deadline - time.monotonic()))
            for name, future in futures.items()
        }

    def _wait(self, future: Future[list[str]], timeout: float | None = None) -> list[str]:
        try:
            return list(future.result(timeout=self._timeout if timeout is None else timeout))
        except (FutureTimeout, OSError, UnicodeError):
            future.cancel()
            return []

    def close(self) -> None:
        self._pool.close()


def clean_names(names: list[str]) -> list[str]:
    """Names lower-cased, without a trailing dot, each once, in order."""
    cleaned = (name.rstrip(".").lower() for name in names)
    return list(dict.fromkeys(name for name in cleaned if name))
