"""Rendering pages: the Jinja2 environment (autoescaped), display filters, security headers.

Text from users and the network may hold characters that hide or disguise what it says
(a right-to-left override, zero-width characters, controls; see `core.visible_text`).
Every `{{ … }}` output shows them as plain escapes (`\u202e`), attributes included; the
`visible` filter, for text content, shows them as escapes in a style of their own. Form
controls that send their value back use `verbatim`, so the value a user typed survives.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup, escape

from surveyor import __version__
from surveyor.core import visible_text
from surveyor.core.tasks import TaskStatus

PACKAGE_DIR = Path(__file__).resolve().parent.parent
TEMPLATES_DIR = PACKAGE_DIR / "templates"
STATIC_DIR = PACKAGE_DIR / "static"

#: Pages load only our own scripts, styles and images, and can't be framed.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "object-src 'none'",
    ]
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def format_time(value: datetime | None) -> str:
    """A compact UTC time for tables; the browser shows it in local time where it can."""
    if value is None:
        return ""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def iso_time(value: datetime | None) -> str:
    if value is None:
        return ""
    return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def format_bytes(value: int | None) -> str:
    size = float(value or 0)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"


def visible(value: object) -> Markup:
    """Text for an element's content: escaped, each hidden character shown as its escape in
    a `hidden-char` span whose tooltip names it."""
    if isinstance(value, Markup):
        return value
    text = "" if value is None else str(value)
    parts = []
    for part, hidden in visible_text.segments(text):
        if hidden:
            parts.append(
                Markup('<span class="hidden-char" title="{}">{}</span>').format(
                    visible_text.describe(part), visible_text.escape_of(part)
                )
            )
        else:
            parts.append(escape(part))
    return Markup("").join(parts)


def verbatim(value: object) -> Markup:
    """A form control's value exactly as typed (escaped, hidden characters kept)."""
    return escape("" if value is None else value)


def reveal_hidden(value: object) -> object:
    """Jinja's `finalize`: any text printed shows its hidden characters as escapes."""
    if isinstance(value, str) and not isinstance(value, Markup):
        return visible_text.reveal(value)
    return value


def percent(value: float | None) -> int:
    return round(max(0.0, min(1.0, float(value or 0.0))) * 100)


@cache
def asset_version(name: str) -> str:
    """A short content hash, so browsers fetch a static file again when it changes."""
    return hashlib.sha256((STATIC_DIR / name).read_bytes()).hexdigest()[:10]


def static_url(name: str) -> str:
    return f"/static/{name}?v={asset_version(name)}"


@cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        finalize=reveal_hidden,
    )
    env.filters["time"] = format_time
    env.filters["iso"] = iso_time
    env.filters["bytes"] = format_bytes
    env.filters["percent"] = percent
    env.filters["visible"] = visible
    env.filters["verbatim"] = verbatim
    env.globals["static_url"] = static_url
    env.globals["status_label"] = lambda status: TaskStatus(status).label
    env.globals["version"] = __version__
    return env


def render_fragment(template: str, context: Mapping[str, Any]) -> str:
    return environment().get_template(template).render(**context)


def render(
    request: Request,
    template: str,
    context: Mapping[str, Any] | None = None,
    *,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    """A page with the signed-in user, CSRF token and security headers; `Server-Timing`
    tells how long the server took (from the request's start)."""
    state = request.state
    full: dict[str, Any] = {
        "principal": getattr(state, "principal", None),
        "csrf_token": getattr(state, "csrf_token", ""),
        "path": request.url.path,
        **(context or {}),
    }
    body = render_fragment(template, full)
    all_headers = dict(PAGE_HEADERS)
    started = getattr(state, "started", None)
    if started is not None:
        all_headers["Server-Timing"] = f"app;dur={(time.perf_counter() - started) * 1000:.1f}"
    all_headers.update(headers or {})
    return HTMLResponse(body, status_code=status, headers=all_headers)
