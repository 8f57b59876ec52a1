"""Logging in: the rules that `POST /api/v1/auth/login` and the web console's sign-in share.

A login names an e-mail, a password and its source (the client address the console sees,
or the one a trusted proxy forwarded). `LoginThrottle` decides first whether the source may
try at all; only then is the password checked. Every check costs one Argon2 verification,
for unknown and inactive accounts too (against a dummy hash), so the time a login takes
says nothing about whether the account exists.

The throttle counts failed logins over a sliding window, and refuses a source, never an
account, so the account's owner can still sign in from elsewhere while it is attacked:

- a source and an account: at most `per_source_and_account` failures (guessing one password);
- a source: at most `per_source` failures over all accounts (spraying from one place);
- an account under attack (`account_alarm` failures from all sources): a source that has
  failed on it waits before each further try, twice as long after each failure;
- the console under attack (`global_alarm` failures in all): the same back-off for every
  source by its failures anywhere (spraying from many places).

A source without recent failures is never made to wait. An attempt counts as failed from
the moment it is admitted until its password proves right, so parallel guesses are counted
before their answers are known. A wrong password, an unknown e-mail and an inactive account
are failures; a right password is none, even when it opens no session (no membership).

A signed-in account that confirms a change with its current password (`reauthenticating`)
goes through the same throttle, with the account as its source.
"""

from __future__ import annotations

import math
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from functools import cache
from typing import Any, TypeVar

from surveyor.security.passwords import hash_password, verify_password
from surveyor.service.accounts import AccountRefused
from surveyor.service.accounts import Refusal as AccountRefusal
from surveyor.store import accounts
from surveyor.store.accounts import Principal, Role
from surveyor.store.engine import Database

K = TypeVar("K")


@dataclass(frozen=True)
class LoginLimits:
    """How many failed logins the throttle tolerates within `window_seconds`."""

    window_seconds: float = 300.0
    per_source_and_account: int = 10
    per_source: int = 30
    account_alarm: int = 30
    global_alarm: int = 100
    #: The wait of a source under an alarm after one failure; it doubles with each further
    #: failure (an owner who mistyped during an attack waits this long, once).
    backoff_seconds: float = 15.0


class LoginThrottle:
    """Failed logins in memory, by source, account, both, and in all (one per process)."""

    def __init__(
        self, limits: LoginLimits | None = None, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limits = limits or LoginLimits()
        self._clock = clock
        self._lock = threading.Lock()
        self._by_pair: dict[tuple[str, str], deque[float]] = {}
        self._by_source: dict[str, deque[float]] = {}
        self._by_account: dict[str, deque[float]] = {}
        self._all: deque[float] = deque(maxlen=self.limits.global_alarm)
        self._swept_at = clock()

    def admit(self, source: str, account: str) -> int | None:
        """Seconds `source` must wait before trying `account`, or None: the attempt is then
        counted as failed until `succeeded` says otherwise."""
        account = account.lower()
        limits = self.limits
        with self._lock:
            now = self._clock()
            self._sweep(now)
            pair = self._prune(
                self._by_pair.get((source, account)), limits.per_source_and_account, now
            )
            mine = self._prune(self._by_source.get(source), limits.per_source, now)
            theirs = self._prune(self._by_account.get(account), limits.account_alarm, now)
            everyone = self._prune(self._all, limits.global_alarm, now)
            until = max(
                self._full_until(pair, now),
                self._full_until(mine, now),
                self._backoff_until(pair, now) if len(theirs) >= limits.account_alarm else now,
                self._backoff_until(mine, now) if len(everyone) >= limits.global_alarm else now,
            )
            if until > now:
                return max(1, math.ceil(until - now))
            for failures in (pair, mine, theirs, everyone):
                failures.append(now)
            self._by_pair[source, account] = pair
            self._by_source[source] = mine
            self._by_account[account] = theirs
            return None

    def succeeded(self, source: str, account: str) -> None:
        """The admitted attempt had the right password: it was no failure, and the source's
        earlier failures on this account are forgiven."""
        account = account.lower()
        with self._lock:
            pair = self._by_pair.pop((source, account), None)
            if not pair:
                return
            attempt = pair[-1]
            for failures in (self._by_source.get(source), self._by_account.get(account), self._all):
                if failures is not None and attempt in failures:
                    failures.remove(attempt)

    def _prune(self, failures: deque[float] | None, keep: int, now: float) -> deque[float]:
        """The failures still within the window (the newest `keep` are all a limit needs)."""
        if failures is None:
            return deque(maxlen=keep)
        while failures and now - failures[0] >= self.limits.window_seconds:
            failures.popleft()
        return failures

    def _full_until(self, failures: deque[float], now: float) -> float:
        """When a full record's oldest failure leaves the window (now, if it is not full)."""
        if failures.maxlen is None or len(failures) < failures.maxlen:
            return now
        return failures[0] + self.limits.window_seconds

    def _backoff_until(self, failures: deque[float], now: float) -> float:
        """The end of the wait after the newest failure: doubling with each failure."""
        if not failures:
            return now
        delay = self.limits.backoff_seconds * (1 << min(len(failures) - 1, 30))
        return failures[-1] + min(delay, self.limits.window_seconds)

    def _sweep(self, now: float) -> None:
        """Forget sources and accounts without recent failures, at most once a window."""
        if now - self._swept_at < self.limits.window_seconds:
            return
        self._swept_at = now
        _forget_stale(self._by_pair, now, self.limits.window_seconds)
        _forget_stale(self._by_source, now, self.limits.window_seconds)
        _forget_stale(self._by_account, now, self.limits.window_seconds)


def _forget_stale(table: dict[K, deque[float]], now: float, window: float) -> None:
    for key in [
        key for key, failures in table.items() if not failures or now - failures[-1] >= window
    ]:
        del table[key]


class Refusal(StrEnum):
    WRONG_CREDENTIALS = "wrong_credentials"
    RATE_LIMITED = "rate_limited"
    NOT_A_MEMBER = "not_a_member"


class LoginRefused(Exception):
    """A login that gives no session; `retry_after` is set when the source must wait."""

    def __init__(self, refusal: Refusal, retry_after: int | None = None) -> None:
        super().__init__(refusal.value)
        self.refusal = refusal
        self.retry_after = retry_after


@dataclass(frozen=True)
class Session:
    """A session token, shown once to whoever logged in."""

    token: str
    expires_at: datetime
    user_id: int
    email: str
    organization_id: int
    role: Role


@cache
def _dummy_hash() -> str:
    """An Argon2 hash of nothing anyone knows, with the parameters real hashes have."""
    return hash_password(secrets.token_urlsafe(32))


def password_matches(user: dict[str, Any] | None, password: str) -> bool:
    """Whether `password` is the active `user`'s, at the cost of one Argon2 verification
    whatever the user (unknown, inactive or without a password: a dummy hash is checked)."""
    stored = user["password_hash"] if user is not None and user["is_active"] else None
    matches = verify_password(stored or _dummy_hash(), password)
    return bool(stored) and matches


def log_in(
    db: Database,
    throttle: LoginThrottle,
    *,
    email: str,
    password: str,
    source: str,
    now: datetime,
    organization_id: int | None = None,
    session_name: str = "login session",
) -> Session:
    """A session for the account `email` in `organization_id` (else its first organization),
    or `LoginRefused`. The password is checked outside any transaction, so a slow hash never
    holds the database's write lock."""
    wait = throttle.admit(source, email)
    if wait is not None:
        raise LoginRefused(Refusal.RATE_LIMITED, wait)
    with db.read() as conn:
        user = accounts.find_user_by_email(conn, email)
    if not password_matches(user, password) or user is None:
        raise LoginRefused(Refusal.WRONG_CREDENTIALS)
    throttle.succeeded(source, email)
    with db.write() as conn:
        current = accounts.get_user(conn, user["id"])
        if (
            current is None
            or not current["is_active"]
            or current["password_hash"] != user["password_hash"]
        ):
            raise LoginRefused(Refusal.WRONG_CREDENTIALS)
        organization_id = organization_id or accounts.first_membership(conn, user["id"])
        role = (
            accounts.membership_role(conn, organization_id, user["id"])
            if organization_id is not None
            else None
        )
        if organization_id is None or role is None:
            raise LoginRefused(Refusal.NOT_A_MEMBER)
        expires = now + accounts.SESSION_LIFETIME
        _, token = accounts.create_token(
            conn,
            user_id=user["id"],
            organization_id=organization_id,
            name=session_name,
            kind="session",
            expires_at=expires,
            now=now,
        )
        accounts.note_login(conn, user["id"], at=now)
    return Session(token, expires, user["id"], user["email"], organization_id, role)


#: The throttle's account for re-authentications (their source is the signed-in account).
_REAUTHENTICATION = "reauthenticate"


@contextmanager
def reauthenticating(throttle: LoginThrottle, user_id: int) -> Iterator[None]:
    """Around a change that the account confirms with its current password: a wrong one
    counts as a failed login from the account itself, and after too many the change is
    refused (`AccountRefused(RATE_LIMITED)`) before any password is checked."""
    source = f"account:{user_id}"
    wait = throttle.admit(source, _REAUTHENTICATION)
    if wait is not None:
        raise AccountRefused(
            AccountRefusal.RATE_LIMITED,
            f"too many wrong passwords; try again in {wait} seconds",
            {"retry_after": wait},
        )
    wrong_password = False
    try:
        yield
    except AccountRefused as exc:
        wrong_password = exc.refusal is AccountRefusal.REAUTHENTICATE
        raise
    finally:
        if not wrong_password:
            throttle.succeeded(source, _REAUTHENTICATION)


def switch_organization(
    db: Database, principal: Principal, organization_id: int, *, session_name: str, now: datetime
) -> Session:
    """A session in another organization of the signed-in account, in place of the calling
    session (which ends); `LoginRefused(NOT_A_MEMBER)` unless the account is a member there."""
    with db.write() as conn:
        account = accounts.get_user(conn, principal.user_id)
        role = accounts.membership_role(conn, organization_id, principal.user_id)
        if account is None or not account["is_active"] or role is None:
            raise LoginRefused(Refusal.NOT_A_MEMBER)
        expires = now + accounts.SESSION_LIFETIME
        _, token = accounts.create_token(
            conn,
            user_id=principal.user_id,
            organization_id=organization_id,
            name=session_name,
            kind="session",
            expires_at=expires,
            now=now,
        )
        if principal.token_id is not None:
            accounts.delete_session(conn, principal.user_id, principal.token_id)
    return Session(token, expires, principal.user_id, account["email"], organization_id, role)
