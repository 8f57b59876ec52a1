"""The console's shared state and settings, handed to route handlers as a dependency."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from fastapi import Request

from surveyor.store.engine import Database

if TYPE_CHECKING:
    from surveyor.console.auth import LoginRateLimiter

MAX_BODY_BYTES = 1 << 20


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise SystemExit(f"{name} must be a whole number, got {raw!r}") from exc


@dataclass(frozen=True)
class ConsoleSettings:
    data_dir: Path
    database_url: str
    online_window_seconds: int = 60
    max_body_bytes: int = MAX_BODY_BYTES

    @classmethod
    def from_environment(cls, data_dir: Path, database_url: str) -> ConsoleSettings:
        return cls(
            data_dir=data_dir,
            database_url=database_url,
            online_window_seconds=_env_int("SURVEYOR_ONLINE_WINDOW", 60),
            max_body_bytes=_env_int("SURVEYOR_MAX_BODY_BYTES", MAX_BODY_BYTES),
        )


@dataclass
class ConsoleState:
    settings: ConsoleSettings
    db: Database
    login_limiter: LoginRateLimiter
    ready: bool = False
    extras: dict[str, object] = field(default_factory=dict)


def console_state(request: Request) -> ConsoleState:
    state: ConsoleState = request.app.state.console
    return state
