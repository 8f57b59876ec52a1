"""The channels' bytes: a signed JSON POST for a webhook, a message over SMTP for an e-mail.

A sender makes one attempt and says what came of it; retrying is the delivery service's
(`notifications/delivery.py`). The webhook's HTTP transport and the SMTP connection's TLS
context are injectable, so tests need neither the network beyond loopback nor a trusted
certificate.
"""

from __future__ import annotations

import json
import smtplib
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any, Protocol

import httpx2

from surveyor import __version__
from surveyor.core.notifications import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    NotificationRule,
    acknowledged,
    signature,
)

#: Seconds a receiver has to connect and answer.
SEND_TIMEOUT = 10.0
#: The longest part of an answer kept in the delivery log.
MAX_ERROR_TEXT = 300
DEFAULT_SENDER = "surveyor@localhost"


@dataclass(frozen=True)
class SendOutcome:
    """One attempt: whether the receiver acknowledged it, its status (HTTP status or SMTP
    reply code; None when none came) and what went wrong, in words."""

    delivered: bool
    status_code: int | None
    error: str = ""


@dataclass(frozen=True)
class Outgoing:
    """What one attempt sends: a delivery of `rule` (its id and payload), with the rule's
    secret opened ("" when it has none) and the time of sending in Unix seconds."""

    rule: NotificationRule
    delivery_id: int
    payload: Mapping[str, Any]
    secret: str
    timestamp: int


class Sender(Protocol):
    """A channel's sender: one attempt at a time, and `close` when the service stops."""

    def send(self, outgoing: Outgoing) -> SendOutcome: ...

    def close(self) -> None: ...


def body_of(delivery_id: int, payload: Mapping[str, Any]) -> bytes:
    """The bytes a webhook posts (and signs): the payload with its delivery id, as JSON."""
    document = {"delivery_id": delivery_id, **payload}
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode("utf-8")


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_ERROR_TEXT else text[: MAX_ERROR_TEXT - 1] + "…"


class WebhookSender:
    """Posts a delivery's JSON to the rule's URL, signed with the rule's secret."""

    def __init__(self, transport: httpx2.BaseTransport | None = None) -> None:
        self._client = httpx2.Client(
            transport=transport, timeout=SEND_TIMEOUT, follow_redirects=False
        )

    def close(self) -> None:
        self._client.close()

    def send(self, outgoing: Outgoing) -> SendOutcome:
        rule, delivery_id, payload = outgoing.rule, outgoing.delivery_id, outgoing.payload
        body = body_of(delivery_id, payload)
        stamp = str(outgoing.timestamp)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": f"Surveyor/{__version__}",
            TIMESTAMP_HEADER: stamp,
            DELIVERY_HEADER: str(delivery_id),
            EVENT_HEADER: rule.trigger.value,
        }
        if outgoing.secret:
            headers[SIGNATURE_HEADER] = signature(outgoing.secret, stamp, body)
        try:
            answer = self._client.post(rule.target, content=body, headers=headers)
        except httpx2.HTTPError as exc:
            return SendOutcome(False, None, _short(f"{type(exc).__name__}: {exc}"))
        if acknowledged(answer.status_code):
            return SendOutcome(True, answer.status_code)
        return SendOutcome(
            False, answer.status_code, _short(f"HTTP {answer.status_code}: {answer.text}")
        )


TlsContext = Callable[[], ssl.SSLContext]


def subject_of(payload: Mapping[str, Any]) -> str:
    return f"[Surveyor] {payload.get('summary', 'notification')}"[:200]


def text_of(payload: Mapping[str, Any]) -> str:
    """An e-mail's text: the summary in words, then the payload as a webhook would post it."""
    details = json.dumps(payload, indent=2, sort_keys=True, default=str)
    return f"{payload.get('summary', '')}\n\n{details}\n"


class EmailSender:
    """Sends a delivery as an e-mail through the rule's SMTP server, upgrading the
    connection with STARTTLS unless the rule says not to."""

    def __init__(self, tls_context: TlsContext = ssl.create_default_context) -> None:
        self._tls_context = tls_context

    def close(self) -> None:
        """Nothing is held between attempts: each opens its own connection."""

    def send(self, outgoing: Outgoing) -> SendOutcome:
        rule, delivery_id, payload = outgoing.rule, outgoing.delivery_id, outgoing.payload
        options = rule.options
        message = EmailMessage()
        message["From"] = options.get("sender") or DEFAULT_SENDER
        message["To"] = rule.target
        message["Subject"] = subject_of(payload)
        message["X-Surveyor-Delivery"] = str(delivery_id)
        message["X-Surveyor-Event"] = rule.trigger.value
        message.set_content(text_of(payload))
        try:
            with smtplib.SMTP(
                options["smtp_host"], int(options["smtp_port"]), timeout=SEND_TIMEOUT
            ) as smtp:
                smtp.ehlo()
                if options.get("starttls", True):
                    smtp.starttls(context=self._tls_context())
                    smtp.ehlo()
                if options.get("smtp_username"):
                    smtp.login(options["smtp_username"], outgoing.secret)
                refused = smtp.send_message(message)
        except smtplib.SMTPResponseException as exc:
            error = exc.smtp_error
            reply = error.decode("utf-8", "replace") if isinstance(error, bytes) else str(error)
            return SendOutcome(False, exc.smtp_code, _short(f"SMTP {exc.smtp_code}: {reply}"))
        except (smtplib.SMTPException, OSError) as exc:
            return SendOutcome(False, None, _short(f"{type(exc).__name__}: {exc}"))
        if refused:
            return SendOutcome(False, None, _short(f"the server refused {', '.join(refused)}"))
        return SendOutcome(True, 250)
