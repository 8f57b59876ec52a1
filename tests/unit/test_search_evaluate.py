"""What search queries mean (SPEC §11), checked with the plain-Python reference evaluator."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from surveyor.core.search import (
    Catalogue,
    FieldKind,
    SearchError,
    SearchField,
    evaluate,
    parse,
    validate,
)
from surveyor.core.search.evaluate import ascii_lower, like_matches

NOW = datetime(2026, 11, 15, 12, 0, tzinfo=UTC)

CATALOGUE: Catalogue[None] = Catalogue(
    fields={
        "id": SearchField(FieldKind.NUMBER, None),
        "count": SearchField(FieldKind.NUMBER, None),
        "name": SearchField(FieldKind.TEXT, None),
        "description": SearchField(FieldKind.TEXT, None),
        "status": SearchField(FieldKind.TEXT, None),
        "error": SearchField(FieldKind.TEXT, None),
        "created_at": SearchField(FieldKind.TIME, None),
        "finished_at": SearchField(FieldKind.TIME, None),
        "hidden": SearchField(FieldKind.BOOL, None),
    }
)


def record(**values: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": 1,
        "count": None,
        "name": "Web servers",
        "description": "",
        "status": "processed",
        "error": None,
        "created_at": NOW,
        "finished_at": None,
        "hidden": False,
    }
    return base | values


def hits(text: str, **values: Any) -> bool:
    return evaluate(parse(text), record(**values), CATALOGUE, NOW)


def search_error(text: str) -> SearchError:
    with pytest.raises(SearchError) as caught:
        validate(parse(text), CATALOGUE, NOW)
    return caught.value


@pytest.mark.parametrize("text", ["", "  "])
def test_a_blank_query_matches_everything(text: str) -> None:
    assert hits(text)


class TestText:
    def test_a_key_value_is_a_case_insensitive_substring(self) -> None:
        assert hits("name:SERV")
        assert hits("NAME:web")
        assert not hits("name:mail")

    def test_a_substring_takes_percent_and_underscore_literally(self) -> None:
        assert hits("name:50%", name="load 50% done")
        assert not hits("name:5%d", name="load 50% done")
        assert not hits("name:we_", name="Web servers")

    def test_an_exact_match_is_whole_value_and_case_insensitive(self) -> None:
        assert hits('name:="web servers"')
        assert hits('name:="WEB SERVERS"')
        assert not hits("name:=web")

    def test_an_exact_match_takes_percent_as_any_run_and_underscore_as_one_character(
        self,
    ) -> None:
        assert hits("name:=web%")
        assert hits("name:=%servers")
        assert hits("name:=w_b%")
        assert not hits("name:=w_%b")
        assert hits("name:=web_servers")
        assert not hits("name:=web__servers")

    def test_an_exact_match_takes_a_backslash_literally(self) -> None:
        assert hits(r'name:="C:\\temp%"', name="C:\\temp\\x")

    def test_case_folding_is_ascii_only_like_sqlite(self) -> None:
        assert hits("name:CAFÉ", name="CAFÉ")
        assert hits("name:cafÉ", name="CAFÉ")
        assert not hits("name:café", name="CAFÉ")

    def test_a_bare_value_searches_name_or_description(self) -> None:
        assert hits("serv")
        assert hits("dmz", description="Servers in the DMZ")
        assert not hits("mail", description="Servers in the DMZ")

    def test_a_bare_exact_value_matches_a_whole_name_or_description(self) -> None:
        assert hits("=web%")
        assert hits("=%dmz", description="the DMZ")
        assert not hits("=dmz", description="the DMZ")

    def test_a_missing_text_never_matches_but_its_negation_does(self) -> None:
        assert not hits('error:""', error=None)
        assert hits('NOT error:""', error=None)
        assert hits('error:""', error="timeout")
        assert hits("NOT error:refused", error="timeout")

    def test_comparisons_do_not_apply_to_text(self) -> None:
        error = search_error("name:>b")
        assert error.position == 5
        assert error.message == "'>' does not apply to key 'name', which is text (at position 5)"

    def test_a_comparison_on_a_bare_value_asks_for_a_key(self) -> None:
        error = search_error("web <=5")
        assert error.position == 4
        assert "needs a key, for example id:<=5" in error.message


class TestNumbers:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("id:7", True),
            ("id:=7", True),
            ("id:8", False),
            ("id:>6", True),
            ("id:>7", False),
            ("id:>=7", True),
            ("id:>=8", False),
            ("id:<8", True),
            ("id:<7", False),
            ("id:<=7", True),
            ("id:<=6", False),
            ("id:>-1", True),
        ],
    )
    def test_every_operator_compares(self, text: str, expected: bool) -> None:
        assert hits(text, id=7) is expected

    def test_a_missing_number_never_matches_any_comparison(self) -> None:
        for text in ("count:0", "count:>-100", "count:<100"):
            assert not hits(text, count=None)
        assert hits("NOT count:>0", count=None)

    @pytest.mark.parametrize("word", ["abc", "1.5", "1e3", "٣", "+1", "0x10"])
    def test_a_word_that_is_not_a_whole_number_is_refused(self, word: str) -> None:
        error = search_error(f"id:>={word}")
        assert error.position == 5
        assert error.message == f"'{word}' is not a number (at position 5)"

    def test_numbers_are_limited_to_64_bits(self) -> None:
        assert hits(f"id:<{2**63 - 1}")
        error = search_error(f"id:{2**63}")
        assert error.position == 3
        assert "too large a number" in error.message


class TestAges:
    def test_less_than_an_age_means_within_that_long_ago(self) -> None:
        assert hits("created_at:<1week", created_at=NOW - timedelta(days=6))
        assert not hits("created_at:<1week", created_at=NOW - timedelta(days=8))

    def test_more_than_an_age_means_longer_ago(self) -> None:
        assert hits("created_at:>30days", created_at=NOW - timedelta(days=31))
        assert not hits("created_at:>30days", created_at=NOW - timedelta(days=29))

    def test_the_boundary_belongs_to_or_equal_operators_only(self) -> None:
        boundary = NOW - timedelta(hours=2)
        assert not hits("created_at:<2h", created_at=boundary)
        assert hits("created_at:<=2h", created_at=boundary)
        assert not hits("created_at:>2h", created_at=boundary)
        assert hits("created_at:>=2h", created_at=boundary)

    @pytest.mark.parametrize("operator", ["", "="])
    def test_an_age_without_comparison_means_within_that_long_ago(self, operator: str) -> None:
        assert hits(f"created_at:{operator}30m", created_at=NOW - timedelta(minutes=29))
        assert not hits(f"created_at:{operator}30m", created_at=NOW - timedelta(minutes=31))

    def test_times_in_the_future_are_within_any_age(self) -> None:
        assert hits("created_at:<1h", created_at=NOW + timedelta(days=1))

    @pytest.mark.parametrize(
        ("word", "age"),
        [
            ("45s", timedelta(seconds=45)),
            ("45sec", timedelta(seconds=45)),
            ("45seconds", timedelta(seconds=45)),
            ("30m", timedelta(minutes=30)),
            ("30min", timedelta(minutes=30)),
            ("30minutes", timedelta(minutes=30)),
            ("2h", timedelta(hours=2)),
            ("2hr", timedelta(hours=2)),
            ("2hours", timedelta(hours=2)),
            ("3d", timedelta(days=3)),
            ("1day", timedelta(days=1)),
            ("3days", timedelta(days=3)),
            ("1w", timedelta(weeks=1)),
            ("1week", timedelta(weeks=1)),
            ("2weeks", timedelta(weeks=2)),
            ("2mo", timedelta(days=60)),
            ("1month", timedelta(days=30)),
            ("1y", timedelta(days=365)),
            ("2years", timedelta(days=730)),
            ("3DAYS", timedelta(days=3)),
            ('"3 days"', timedelta(days=3)),
        ],
    )
    def test_every_age_unit_has_its_length(self, word: str, age: timedelta) -> None:
        just_inside = NOW - age + timedelta(microseconds=1)
        assert hits(f"created_at:<{word}", created_at=just_inside)
        assert not hits(f"created_at:<{word}", created_at=NOW - age)

    def test_an_unknown_unit_is_refused(self) -> None:
        error = search_error("created_at:<3fortnights")
        assert error.position == 12
        assert "unknown time unit 'fortnights'" in error.message

    def test_an_age_too_long_to_represent_is_refused(self) -> None:
        error = search_error("created_at:>999999999999y")
        assert error.position == 12
        assert "too long" in error.message


class TestDates:
    DAY_START = datetime(2026, 11, 1, tzinfo=UTC)

    @pytest.mark.parametrize("operator", ["", "="])
    def test_a_date_means_the_whole_utc_day(self, operator: str) -> None:
        text = f"created_at:{operator}2026-11-01"
        assert hits(text, created_at=self.DAY_START)
        assert hits(text, created_at=self.DAY_START + timedelta(hours=23, minutes=59))
        assert not hits(text, created_at=self.DAY_START - timedelta(microseconds=1))
        assert not hits(text, created_at=self.DAY_START + timedelta(days=1))

    @pytest.mark.parametrize(
        ("operator", "last_day_before", "day_itself", "first_day_after"),
        [
            (">", False, False, True),
            (">=", False, True, True),
            ("<", True, False, False),
            ("<=", True, True, False),
        ],
    )
    def test_date_comparisons_treat_the_day_as_a_unit(
        self, operator: str, last_day_before: bool, day_itself: bool, first_day_after: bool
    ) -> None:
        text = f"created_at:{operator}2026-11-01"
        assert hits(text, created_at=self.DAY_START - timedelta(seconds=1)) is last_day_before
        assert hits(text, created_at=self.DAY_START + timedelta(hours=12)) is day_itself
        assert hits(text, created_at=self.DAY_START + timedelta(days=1)) is first_day_after

    def test_a_date_time_means_its_second(self) -> None:
        at = datetime(2026, 11, 1, 10, 0, 0, tzinfo=UTC)
        assert hits("created_at:2026-11-01T10:00:00Z", created_at=at + timedelta(milliseconds=999))
        assert not hits("created_at:2026-11-01T10:00:00Z", created_at=at + timedelta(seconds=1))
        assert hits("created_at:>2026-11-01T10:00:00Z", created_at=at + timedelta(seconds=1))
        assert not hits("created_at:>2026-11-01T10:00:00Z", created_at=at)

    def test_a_date_time_without_seconds_means_its_minute(self) -> None:
        at = datetime(2026, 11, 1, 10, 5, 59, tzinfo=UTC)
        assert hits("created_at:2026-11-01T10:05", created_at=at)
        assert not hits("created_at:2026-11-01T10:04", created_at=at)

    def test_a_date_time_with_a_fraction_means_that_instant(self) -> None:
        at = datetime(2026, 11, 1, 10, 0, 0, 250000, tzinfo=UTC)
        assert hits("created_at:2026-11-01T10:00:00.25Z", created_at=at)
        assert not hits("created_at:2026-11-01T10:00:00.25Z", created_at=at.replace(microsecond=1))

    def test_a_date_time_without_offset_is_utc_and_offsets_are_honoured(self) -> None:
        at = datetime(2026, 11, 1, 10, 0, 0, tzinfo=UTC)
        assert hits("created_at:2026-11-01T10:00:00", created_at=at)
        assert hits("created_at:2026-11-01t12:00:00+02:00", created_at=at)
        assert hits('created_at:"2026-11-01 05:30:00-04:30"', created_at=at)

    @pytest.mark.parametrize(
        "word",
        ["2026-02-30", "2026-13-01", "2026-11-01T24:00:00Z", "2026-11-01T10:00:60Z",
         "2026-11-01T10:00:00+24:00", "2026-11-01T10:00:00+01:60"],
    )  # fmt: skip
    def test_an_impossible_date_is_refused(self, word: str) -> None:
        error = search_error(f"created_at:{word}")
        assert error.position == 11
        assert error.message == f"'{word}' is not a valid date (at position 11)"

    def test_a_date_beyond_the_calendar_after_conversion_is_refused(self) -> None:
        error = search_error("created_at:0001-01-01T00:00:00+01:00")
        assert "out of range" in error.message

    def test_the_last_representable_day_still_works(self) -> None:
        assert hits("created_at:<=9999-12-31", created_at=NOW)
        assert not hits("created_at:>9999-12-31", created_at=NOW)

    @pytest.mark.parametrize("word", ["yesterday", "5", "2026-1-1", "11/01/2026"])
    def test_a_word_that_is_no_time_is_refused_with_examples(self, word: str) -> None:
        error = search_error(f"created_at:>{word}")
        assert error.position == 12
        assert "is not a time; use a date like 2026-11-01" in error.message

    def test_a_missing_time_never_matches_any_comparison(self) -> None:
        for text in ("finished_at:<1y", "finished_at:>1s", "finished_at:2026-11-01"):
            assert not hits(text, finished_at=None)
        assert hits("NOT finished_at:<1y", finished_at=None)


class TestBooleans:
    @pytest.mark.parametrize(
        ("word", "value"),
        [("t", True), ("true", True), ("TRUE", True), ("f", False), ("false", False), ("F", False)],
    )
    def test_true_and_false_in_short_or_long_form_any_case(self, word: str, value: bool) -> None:
        assert hits(f"hidden:{word}", hidden=value)
        assert hits(f"hidden:={word}", hidden=value)
        assert not hits(f"hidden:{word}", hidden=not value)

    @pytest.mark.parametrize("word", ["yes", "1", "maybe"])
    def test_other_words_are_not_booleans(self, word: str) -> None:
        error = search_error(f"hidden:{word}")
        assert error.position == 7
        assert error.message == f"'{word}' is not a boolean; use true or false (at position 7)"

    def test_booleans_cannot_be_ordered(self) -> None:
        error = search_error("hidden:>f")
        assert error.position == 7
        assert "does not apply to key 'hidden', which is a boolean" in error.message


class TestCombinations:
    def test_and_or_and_not_combine_terms(self) -> None:
        assert hits("web status:processed")
        assert not hits("web status:new")
        assert hits("mail OR status:processed")
        assert hits("NOT status:new")
        assert not hits("NOT (web OR mail)")
        assert hits("(mail OR web) AND NOT id:>5")

    def test_or_binds_looser_than_and(self) -> None:
        assert hits("status:new web OR id:1")
        assert not hits("status:new (web OR id:1)")


class TestValidation:
    def test_an_unknown_key_lists_the_valid_keys_sorted(self) -> None:
        error = search_error("web stauts:new")
        assert error.position == 4
        valid = sorted(CATALOGUE.fields)
        assert error.details["valid_keys"] == valid
        assert error.details["suggestion"] == "status"
        assert error.message.startswith(
            "unknown key 'stauts' at position 4 (did you mean 'status'?); valid keys: "
        )
        assert error.message.endswith(", ".join(valid))

    def test_an_unknown_key_without_a_close_match_offers_no_suggestion(self) -> None:
        error = search_error("zzz:1")
        assert "suggestion" not in error.details
        assert error.message.startswith("unknown key 'zzz' at position 0; valid keys: count, ")

    def test_evaluate_raises_the_same_errors_as_validate(self) -> None:
        with pytest.raises(SearchError, match="not a number"):
            evaluate(parse("id:x"), record(), CATALOGUE, NOW)

    def test_now_must_be_timezone_aware(self) -> None:
        with pytest.raises(ValueError, match="aware"):
            validate(parse("created_at:<1h"), CATALOGUE, NOW.replace(tzinfo=None))

    def test_a_catalogue_refuses_upper_case_keys_and_non_text_bare_keys(self) -> None:
        with pytest.raises(ValueError, match="lower-case"):
            Catalogue(fields={"Name": SearchField(FieldKind.TEXT, None)}, bare_keys=())
        with pytest.raises(ValueError, match="bare-value key 'id'"):
            Catalogue(fields={"id": SearchField(FieldKind.NUMBER, None)}, bare_keys=("id",))


class TestLikeMatching:
    def test_ascii_lower_leaves_other_letters_alone(self) -> None:
        assert ascii_lower("ÀBC Ω") == "Àbc Ω"

    @given(
        st.text(alphabet="ab%_", max_size=8),
        st.text(alphabet="ab", max_size=10),
    )
    def test_like_agrees_with_an_equivalent_regular_expression(
        self, pattern: str, text: str
    ) -> None:
        regex = "".join({"%": ".*", "_": "."}.get(char, re.escape(char)) for char in pattern)
        assert like_matches(text, pattern) is bool(re.fullmatch(regex, text, re.DOTALL))

    def test_like_stays_fast_on_patterns_that_make_regexes_backtrack(self) -> None:
        assert not like_matches("a" * 1000, "%a" * 30 + "%b")
