"""What the credential, notification rule and saved query services say when a row is not
found or a name is taken: the same words for each, naming its own kind of row."""

from __future__ import annotations

import pytest

from surveyor.service.credentials import CredentialRefused
from surveyor.service.notifications import NotificationRefused
from surveyor.service.queries import QueryRefused
from surveyor.service.refusals import Reason, Refused

SERVICES = [
    pytest.param(CredentialRefused, "credential", id="credentials"),
    pytest.param(NotificationRefused, "notification rule", id="notification rules"),
    pytest.param(QueryRefused, "saved query", id="saved queries"),
]


@pytest.mark.parametrize(("refused", "noun"), SERVICES)
def test_a_missing_row_is_not_found_by_its_id(refused: type[Refused], noun: str) -> None:
    with pytest.raises(refused) as caught:
        refused.require_found(None, 42)

    assert caught.value.reason is Reason.NOT_FOUND
    assert caught.value.code == "not_found"
    assert caught.value.message == f"{noun} 42 does not exist"
    assert caught.value.field is None


@pytest.mark.parametrize(("refused", "noun"), SERVICES)
def test_a_row_that_was_found_is_given_back(refused: type[Refused], noun: str) -> None:
    row = {"id": 42, "noun": noun}

    assert refused.require_found(row, 42) is row


@pytest.mark.parametrize(("refused", "noun"), SERVICES)
def test_a_taken_name_is_a_conflict_on_the_name_field(refused: type[Refused], noun: str) -> None:
    taken = refused.name_taken("Office")

    assert isinstance(taken, refused)
    assert taken.reason is Reason.CONFLICT
    assert taken.code == "conflict"
    assert taken.message == f"a {noun} named 'Office' exists"
    assert taken.field == "name"
