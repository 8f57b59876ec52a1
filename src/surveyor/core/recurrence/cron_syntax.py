"""Five-field cron expressions: checked with messages that name the field, normalised for storage.

Surveyor takes the classic syntax only: numbers, month and weekday names, `*`, ranges, lists and
steps. Extensions some cron daemons offer (seconds, years, L, W, #, ?, H) are refused rather than
half-understood.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


class CronSyntaxError(ValueError):
    """A cron expression the scheduler cannot run; the message says what to change."""


@dataclass(frozen=True, slots=True)
class _Field:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()
    names_start: int = 0


_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")

FIELDS = (
    _Field("minute", 0, 59),
    _Field("hour", 0, 23),
    _Field("day of month", 1, 31),
    _Field("month", 1, 12, _MONTHS, names_start=1),
    _Field("day of week", 0, 7, _WEEKDAYS),
)

MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}

_ITEM = re.compile(r"(?P<range>\*|[a-z0-9]+(?:-[a-z0-9]+)?)(?:/(?P<step>[0-9]+))?", re.IGNORECASE)


def normalize_cron(text: str) -> str:
    """The canonical form of a cron expression: five lower-case fields, single spaces."""
    expression = " ".join(text.split()).lower()
    if expression.startswith("@"):
        if expression not in MACROS:
            known = ", ".join(MACROS)
            raise CronSyntaxError(f"{text.strip()!r} is not a cron shortcut; use one of {known}")
        return MACROS[expression]
    fields = " ".join(text.split()).split(" ") if expression else []
    if len(fields) != len(FIELDS):
        raise _invalid(
            text,
            f"it needs 5 fields (minute hour day-of-month month day-of-week), not {len(fields)}",
        )
    for field_text, spec in zip(fields, FIELDS, strict=True):
        reason = _field_problem(field_text, spec)
        if reason is not None:
            raise _invalid(text, reason)
    return expression


def _invalid(text: str, reason: str) -> CronSyntaxError:
    return CronSyntaxError(f"{' '.join(text.split())!r} is not a valid cron expression: {reason}")


def _field_problem(text: str, spec: _Field) -> str | None:
    for item in text.split(","):
        match = _ITEM.fullmatch(item)
        if match is None:
            return _unsupported(item, spec)
        bounds = match.group("range")
        step = match.group("step")
        if step is not None and int(step) < 1:
            return f"the step in the {spec.name} field must be at least 1"
        if step is not None and bounds != "*" and "-" not in bounds:
            example = f"{bounds}-{spec.high}/{step}"
            return f"a step needs * or a range in the {spec.name} field, e.g. {example}"
        if bounds == "*":
            continue
        ends = []
        for end in bounds.split("-"):
            if not end.isdigit() and end.lower() not in spec.names:
                if spec.names:
                    return f"{end!r} is not a {spec.name} name ({spec.names[0]}-{spec.names[-1]})"
                return _unsupported(end, spec)
            value = _value(end, spec)
            if value is None:
                return _range_reason(spec)
            ends.append(value)
        if len(ends) == 2 and ends[0] > ends[1]:
            return f"the {spec.name} range {bounds} runs backwards"
    return None


def _unsupported(text: str, spec: _Field) -> str:
    return (
        f"{text!r} in the {spec.name} field is not supported; "
        "use numbers, names, *, ranges (1-5), lists (1,3) and steps (*/15)"
    )


def _value(text: str, spec: _Field) -> int | None:
    if text.isdigit():
        value = int(text)
        return value if spec.low <= value <= spec.high else None
    if text.lower() in spec.names:
        return spec.names.index(text.lower()) + spec.names_start
    return None


def _range_reason(spec: _Field) -> str:
    reason = f"{spec.name} must be {spec.low}-{spec.high}"
    if spec.names:
        reason += f" or a name ({spec.names[0]}-{spec.names[-1]})"
    return reason
