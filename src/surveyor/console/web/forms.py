"""Reading submitted forms: their fields as text, and one message for each field at fault."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from fastapi import Request
from pydantic import ValidationError


async def form_fields(request: Request, names: Iterable[str]) -> dict[str, str]:
    """The named fields of a submitted form, trimmed ("" when missing)."""
    form = await request.form()
    values = {}
    for name in names:
        value = form.get(name)
        values[name] = value.strip() if isinstance(value, str) else ""
    return values


def sentence(message: str) -> str:
    """A message from the rules (`the name is taken`) as a page shows it (`The name is taken.`)."""
    return f"{message[:1].upper()}{message[1:]}."


def field_errors(
    exc: ValidationError, messages: Mapping[str, str], *, default_field: str
) -> dict[str, str]:
    """A message per field at fault, in the page's own words where it has them; a problem
    with no field (text no database can store) is put on `default_field`."""
    errors: dict[str, str] = {}
    for problem in exc.errors():
        location = problem.get("loc") or ()
        said = str(problem.get("msg", "is not valid")).removeprefix("Value error, ")
        if location:
            field = str(location[0])
            errors.setdefault(field, messages.get(field, said))
        else:
            errors.setdefault(default_field, sentence(said))
    return errors
