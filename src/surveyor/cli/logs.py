"""How every process logs: `--log-format text|json` (or SURVEYOR_LOG_FORMAT), at
SURVEYOR_LOG_LEVEL, with the request id of the request being handled on each line."""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime
from enum import StrEnum
from typing import IO, Annotated, Any

import typer


class LogFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


LogFormatOption = Annotated[
    LogFormat | None,
    typer.Option(
        "--log-format",
        envvar="SURVEYOR_LOG_FORMAT",
        case_sensitive=False,
        help="Log lines as text or as one JSON object each.",
    ),
]

#: Record attributes a JSON line carries when a log call gave them (`extra=`).
_EXTRAS = ("request_id", "method", "path", "route", "status", "duration_ms")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id and extras."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in _EXTRAS:
            value = getattr(record, key, None)
            if value not in (None, ""):
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


class TextFormatter(logging.Formatter):
    """`time level logger [request id]: message`."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s%(rid)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        rid = getattr(record, "request_id", "")
        record.rid = f" [{rid}]" if rid else ""
        return super().format(record)


def configure_logging(
    fmt: LogFormat | None, *, level: str | int | None = None, stream: IO[str] | None = None
) -> logging.Handler:
    """Send every logger's lines to stderr (or `stream`) in the chosen format, replacing
    any handler the root logger had. The request id filter sits on the handler, so records
    of every logger carry it."""
    from surveyor.console.observe import RequestIdFilter

    chosen = fmt or LogFormat(os.environ.get("SURVEYOR_LOG_FORMAT", "text").lower())
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if chosen is LogFormat.JSON else TextFormatter())
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level or os.environ.get("SURVEYOR_LOG_LEVEL", "info").upper())
    for chatty in ("httpx2", "httpcore2", "alembic.runtime.plugins"):
        logging.getLogger(chatty).setLevel(logging.WARNING)
    return handler
