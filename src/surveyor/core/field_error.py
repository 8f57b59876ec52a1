"""`FieldError`: a value refused because of one input, named. The rules of task params, scan
params, tasks, credentials, notification rules, retention settings and the audit trail's
filter each raise their own subclass of it, so that callers catch what they expect while the
API and the pages read `field` and `message` the same way from all of them."""

from __future__ import annotations


class FieldError(ValueError):
    """`field` names the input at fault, `message` says why in words a user can act on, and
    `token` is the offending part of the value when one is to blame."""

    def __init__(self, field: str, message: str, token: str | None = None) -> None:
        super().__init__(message)
        self.field = field
        self.message = message
        self.token = token
