"""The pure rules of notifications: what a rule may say, the retry schedule, the signature."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from surveyor.core.notifications import (
    DEFAULT_SMTP_PORT,
    FIRST_WAIT,
    LONGEST_WAIT,
    Channel,
    RuleInvalid,
    Trigger,
    acknowledged,
    check_options,
    check_target,
    retry_wait,
    signature,
    signature_matches,
)
from surveyor.notifications.senders import body_of


def test_the_waits_double_from_thirty_seconds_up_to_an_hour() -> None:
    waits = [retry_wait(n) for n in range(1, 10)]
    assert waits[:4] == [timedelta(seconds=s) for s in (30, 60, 120, 240)]
    assert waits[-1] == LONGEST_WAIT
    assert waits == sorted(waits)


@given(st.integers(min_value=-5, max_value=10_000))
def test_a_wait_is_never_shorter_than_the_first_nor_longer_than_an_hour(attempts: int) -> None:
    assert FIRST_WAIT <= retry_wait(attempts) <= LONGEST_WAIT


def test_only_a_2xx_answer_acknowledges() -> None:
    assert [acknowledged(code) for code in (200, 204, 299)] == [True] * 3
    assert [acknowledged(code) for code in (None, 199, 301, 401, 500)] == [False] * 5


def test_a_signature_binds_the_body_the_timestamp_and_the_secret() -> None:
    body = body_of(7, {"event": "task_canceled", "summary": "scan 'x' was canceled"})
    header = signature("s3cret", "1893466800", body)
    assert header.startswith("sha256=")
    assert len(header) == len("sha256=") + 64
    assert signature_matches("s3cret", "1893466800", body, header)
    assert not signature_matches("other", "1893466800", body, header)
    assert not signature_matches("s3cret", "1893466801", body, header)
    assert not signature_matches("s3cret", "1893466800", body + b" ", header)


def test_the_posted_body_is_canonical_json_with_its_delivery_id() -> None:
    assert body_of(3, {"b": 1, "a": "é"}) == rb'{"a":"\u00e9","b":1,"delivery_id":3}'


def test_defaults_fill_in_the_options_of_the_trigger_and_channel() -> None:
    assert check_options(Trigger.OUTLIER_SCORE, Channel.WEBHOOK, {}) == {"threshold": 60}
    assert check_options(Trigger.EXPLORER_OFFLINE, Channel.WEBHOOK, {}) == {"minutes": 10}
    assert check_options(Trigger.NEW_ASSETS, Channel.EMAIL, {"smtp_host": "mail.lab"}) == {
        "smtp_host": "mail.lab",
        "smtp_port": DEFAULT_SMTP_PORT,
        "starttls": True,
        "smtp_username": "",
        "sender": "",
    }


@pytest.mark.parametrize(
    ("trigger", "channel", "options", "field"),
    [
        (Trigger.OUTLIER_SCORE, Channel.WEBHOOK, {"threshold": 0}, "threshold"),
        (Trigger.OUTLIER_SCORE, Channel.WEBHOOK, {"threshold": True}, "threshold"),
        (Trigger.EXPLORER_OFFLINE, Channel.WEBHOOK, {"minutes": "5"}, "minutes"),
        (Trigger.TASK_CANCELED, Channel.WEBHOOK, {"scheduled_only": "yes"}, "scheduled_only"),
        (Trigger.TASK_CANCELED, Channel.WEBHOOK, {"threshold": 50}, "threshold"),
        (Trigger.NEW_ASSETS, Channel.EMAIL, {}, "smtp_host"),
        (Trigger.NEW_ASSETS, Channel.EMAIL, {"smtp_host": "a b"}, "smtp_host"),
        (Trigger.NEW_ASSETS, Channel.EMAIL, {"smtp_host": "m", "sender": "x"}, "sender"),
    ],
)
def test_options_a_rule_cannot_use_are_refused_naming_the_option(
    trigger: Trigger, channel: Channel, options: dict[str, object], field: str
) -> None:
    with pytest.raises(RuleInvalid) as refused:
        check_options(trigger, channel, options)
    assert refused.value.field == field


@pytest.mark.parametrize(
    ("channel", "target", "ok"),
    [
        (Channel.WEBHOOK, "https://hooks.example.com/surveyor", True),
        (Channel.WEBHOOK, "http://127.0.0.1:8080/x?y=1", True),
        (Channel.WEBHOOK, "ftp://example.com/", False),
        (Channel.WEBHOOK, "https:///nohost", False),
        (Channel.WEBHOOK, "https://example.com/a b", False),
        (Channel.EMAIL, "ops@example.com", True),
        (Channel.EMAIL, "ops@example.com, more@example.com", False),
        (Channel.EMAIL, "not an address", False),
        (Channel.EMAIL, "", False),
    ],
)
def test_a_target_is_a_url_for_a_webhook_and_one_address_for_an_email(
    channel: Channel, target: str, ok: bool
) -> None:
    if ok:
        assert check_target(channel, f"  {target} ") == target
    else:
        with pytest.raises(RuleInvalid):
            check_target(channel, target)
