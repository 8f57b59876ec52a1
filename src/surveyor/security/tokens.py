"""Bearer secrets (API tokens, explorer secrets): shown once, stored only as a hash.

A token reads `svr_<lookup>_<secret>`. The lookup half finds the row; the secret half is
compared by SHA-256 digest in constant time. The secrets carry 256 bits of randomness, so a
fast hash is enough (a slow password hash would only slow every request down).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

PREFIX = "svr"


@dataclass(frozen=True)
class IssuedToken:
    lookup: str
    secret_hash: str
    plaintext: str


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def issue_token(prefix: str = PREFIX) -> IssuedToken:
    lookup = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    return IssuedToken(lookup, digest(secret), f"{prefix}_{lookup}_{secret}")


def split_secret(plaintext: str, prefix: str) -> tuple[str, str] | None:
    """(lookup, secret) of a `<prefix>_<lookup>_<secret>` credential, or None."""
    if not plaintext or len(plaintext) > 512:
        return None
    parts = plaintext.split("_", 2)
    if len(parts) != 3 or parts[0] != prefix or len(parts[1]) != 16 or not parts[2]:
        return None
    return parts[1], parts[2]


def split_token(plaintext: str) -> tuple[str, str] | None:
    """(lookup, secret) of a token.

    Tokens we issue split at their underscores; a token chosen by an operator for automation
    (`SURVEYOR_BOOTSTRAP_TOKEN`) may have any shape, and is looked up by its own digest.
    """
    if not plaintext or len(plaintext) > 512:
        return None
    return split_secret(plaintext, PREFIX) or ("x" + digest(plaintext)[:15], plaintext)


def token_from_plaintext(plaintext: str) -> IssuedToken:
    """Store a token chosen outside Surveyor (it must still be long and random)."""
    parts = split_token(plaintext)
    if parts is None:
        raise ValueError("a token must be 1 to 512 characters long")
    lookup, secret = parts
    return IssuedToken(lookup, digest(secret), plaintext)


def secret_matches(secret: str, secret_hash: str) -> bool:
    return hmac.compare_digest(digest(secret), secret_hash)
