"""A short-lived, in-process memory of resolved bearer tokens.

Most requests then skip the token lookup. An entry lives a few seconds, so a revoked token or
a changed role takes effect at once in the process that made the change (it clears the
memory) and within `ttl` seconds in other console processes.
"""

from __future__ import annotations

import hashlib
import threading
import time

from surveyor.store.accounts import Principal


class PrincipalCache:
    def __init__(self, ttl: float = 5.0, max_entries: int = 10_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: dict[str, tuple[float, Principal]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _key(token: str) -> str:
        return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()

    def get(self, token: str) -> Principal | None:
        key = self._key(token)
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if entry[0] < time.monotonic():
                del self._entries[key]
                return None
            return entry[1]

    def put(self, token: str, principal: Principal, *, lifetime: float | None = None) -> None:
        ttl = self.ttl if lifetime is None else max(0.0, min(self.ttl, lifetime))
        with self._lock:
            if len(self._entries) >= self.max_entries:
                self._entries.clear()
            self._entries[self._key(token)] = (time.monotonic() + ttl, principal)

    def clear(self) -> None:
        """Forget everything: called whenever a token, user or membership changes."""
        with self._lock:
            self._entries.clear()
