"""The key that encrypts credentials' secret fields at rest, and sealing with it (AES-GCM).

The key is 32 random bytes. It comes from `SURVEYOR_SECRET_KEY` (base64), else from the file
`SURVEYOR_SECRET_KEY_FILE` names (base64 text), else from `secret.key` in the data directory,
created on first start readable only by its owner (0600). Consoles that share a database
must share the key: give them all the same variable or file.

A sealed secret reads `v1.<key id>.<base64 of nonce and ciphertext>`. The key id (`k-` and
the first 12 hex digits of the key's SHA-256) says which key sealed it, so a console holding
another key says so in words instead of failing to decrypt. The associated data binds a
ciphertext to one field of one credential: copied onto another row or field, it does not
open.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_BYTES = 32
NONCE_BYTES = 12
KEY_FILE = "secret.key"
KEY_ENV = "SURVEYOR_SECRET_KEY"
KEY_FILE_ENV = "SURVEYOR_SECRET_KEY_FILE"
_VERSION = "v1"


class SecretKeyError(Exception):
    """The key cannot be had (a malformed variable, an unreadable file): says which and why."""


class WrongSecretKey(Exception):
    """A secret was sealed with another key than this console's."""

    def __init__(self, sealed_with: str, holding: str) -> None:
        super().__init__(
            f"the secret was encrypted with key {sealed_with}; this console has key {holding}: "
            f"set {KEY_ENV} (or {KEY_FILE_ENV}) to the key the other consoles use, or run "
            "`surveyor secrets rotate` where that key is"
        )
        self.sealed_with = sealed_with
        self.holding = holding


class SecretDamaged(Exception):
    """A sealed secret does not open with the key that sealed it: altered, or moved."""


def key_id_of(key: bytes) -> str:
    """The public name of a key: not the key, and the same on every console holding it."""
    return "k-" + hashlib.sha256(key).hexdigest()[:12]


def new_key() -> bytes:
    return secrets.token_bytes(KEY_BYTES)


def encode_key(key: bytes) -> str:
    return base64.b64encode(key).decode("ascii")


def decode_key(text: str, *, where: str) -> bytes:
    """The key written in base64 at `where` (a variable or a file), or SecretKeyError."""
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SecretKeyError(f"{where} is not base64 text") from exc
    if len(key) != KEY_BYTES:
        raise SecretKeyError(
            f"{where} holds {len(key)} bytes; a key is {KEY_BYTES} bytes "
            "(`surveyor secrets new-key` makes one)"
        )
    return key


def associated_data(credential_id: int, field_name: str) -> bytes:
    """What a sealed secret is bound to: its credential and field."""
    return f"surveyor credential {credential_id} field {field_name}".encode()


@dataclass(frozen=True)
class SecretBox:
    """Seals and opens secrets with one key. Its repr names the key id, never the key."""

    key: bytes = field(repr=False)

    @property
    def key_id(self) -> str:
        return key_id_of(self.key)

    def seal(self, plaintext: str, *, aad: bytes) -> str:
        nonce = secrets.token_bytes(NONCE_BYTES)
        ciphertext = AESGCM(self.key).encrypt(nonce, plaintext.encode("utf-8"), aad)
        body = base64.b64encode(nonce + ciphertext).decode("ascii")
        return f"{_VERSION}.{self.key_id}.{body}"

    def open(self, sealed: str, *, aad: bytes) -> str:
        """The plaintext; WrongSecretKey when another key sealed it, SecretDamaged when it
        does not open."""
        version, sealed_with, body = sealed_parts(sealed)
        if version != _VERSION:
            raise SecretDamaged(f"unknown secret format {version!r}")
        if sealed_with != self.key_id:
            raise WrongSecretKey(sealed_with, self.key_id)
        raw = base64.b64decode(body)
        try:
            plaintext = AESGCM(self.key).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], aad)
        except InvalidTag as exc:
            raise SecretDamaged("the secret does not open: it was altered or moved") from exc
        return plaintext.decode("utf-8")


def sealed_parts(sealed: str) -> tuple[str, str, str]:
    """(format version, key id, body) of a sealed secret."""
    parts = sealed.split(".", 2)
    if len(parts) != 3:
        raise SecretDamaged("a stored secret is not in the sealed format")
    return parts[0], parts[1], parts[2]


def sealed_key_id(sealed: str) -> str:
    return sealed_parts(sealed)[1]


def key_source(data_dir: Path, environ: Mapping[str, str] | None = None) -> Path | None:
    """The file the key is read from, or None when `SURVEYOR_SECRET_KEY` holds it."""
    env = os.environ if environ is None else environ
    if env.get(KEY_ENV):
        return None
    if env.get(KEY_FILE_ENV):
        return Path(env[KEY_FILE_ENV])
    return data_dir / KEY_FILE


def read_key_file(path: Path) -> bytes:
    try:
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise SecretKeyError(f"the key file {path} cannot be read") from exc
    return decode_key(text, where=str(path))


def load_secret_box(data_dir: Path, environ: Mapping[str, str] | None = None) -> SecretBox:
    """This console's key: from the variable, the key file, or the data directory's file
    (created with mode 0600 when none of them exists yet)."""
    env = os.environ if environ is None else environ
    path = key_source(data_dir, env)
    if path is None:
        return SecretBox(decode_key(env[KEY_ENV], where=KEY_ENV))
    if not env.get(KEY_FILE_ENV):
        if not path.exists():
            write_key_file(path, new_key())
        elif path.stat().st_mode & 0o077:
            path.chmod(0o600)  # the data directory's key is its owner's alone, as at creation
    return SecretBox(read_key_file(path))


def write_key_file(path: Path, key: bytes, *, replace: bool = False) -> None:
    """Write a key readable only by its owner; never over an existing key unless `replace`
    (which writes beside it and renames, so the file always holds a whole key)."""
    text = encode_key(key) + "\n"
    if not replace:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return  # another process created it first; its key is the one to use
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(text)
        return
    temporary = path.with_name(path.name + ".new")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(text)
    os.replace(temporary, path)
