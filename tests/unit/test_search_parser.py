"""The search language's syntax (SPEC §11): grammar, precedence, quoting, errors, bounds."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from surveyor.core.search import (
    MAX_DEPTH,
    MAX_QUERY_LENGTH,
    MAX_TERMS,
    Operator,
    SearchError,
    mentions_key,
    parse,
)
from surveyor.core.search.parser import And, Node, Not, Term


def shape(node: Node | None) -> object:
    """The tree as nested tuples of words, so tests can state structure compactly."""
    if node is None:
        return None
    if isinstance(node, Term):
        key = f"{node.key}:" if node.key else ""
        return f"{key}{node.operator or ''}{node.value}"
    if isinstance(node, Not):
        return ("NOT", shape(node.operand))
    name = "AND" if isinstance(node, And) else "OR"
    return (name, *(shape(operand) for operand in node.operands))


def parse_error(text: str) -> SearchError:
    with pytest.raises(SearchError) as caught:
        parse(text)
    return caught.value


@pytest.mark.parametrize("text", ["", "   ", "\t\n"])
def test_a_blank_query_has_no_root(text: str) -> None:
    assert parse(text).root is None


def test_a_bare_word_is_a_term_without_key() -> None:
    assert parse("printer").root == Term(None, None, "printer", 0, 0)


def test_a_key_is_lower_cased_and_its_value_kept_as_written() -> None:
    term = parse("  Status:Active").root
    assert term == Term("status", None, "Active", 2, 9)


@pytest.mark.parametrize(
    ("text", "operator", "value"),
    [
        ("id:=5", Operator.EQ, "5"),
        ("id:>5", Operator.GT, "5"),
        ("id:>=5", Operator.GE, "5"),
        ("id:<5", Operator.LT, "5"),
        ("id:<=5", Operator.LE, "5"),
        ("id:>=-5", Operator.GE, "-5"),
        ("id:==5", Operator.EQ, "=5"),
    ],
)
def test_every_operator_is_read_before_the_value(text: str, operator: Operator, value: str) -> None:
    term = parse(text).root
    assert isinstance(term, Term)
    assert (term.operator, term.value) == (operator, value)
    assert term.operator_position == 3


def test_a_value_may_contain_colons_so_times_need_no_quotes() -> None:
    term = parse("created_at:>2026-11-01T10:00:00Z").root
    assert term == Term("created_at", Operator.GT, "2026-11-01T10:00:00Z", 0, 12)


def test_a_bare_value_may_carry_an_operator() -> None:
    assert parse("=web%").root == Term(None, Operator.EQ, "web%", 0, 1)


def test_a_word_that_does_not_start_like_a_key_keeps_its_colon() -> None:
    assert parse("127.0.0.1:80").root == Term(None, None, "127.0.0.1:80", 0, 0)


def test_quoted_strings_keep_spaces_and_unescape_quotes_and_backslashes() -> None:
    term = parse(r'name:"say \"hi\" \\ C:\temp"').root
    assert isinstance(term, Term)
    assert term.value == 'say "hi" \\ C:\\temp'
    assert term.value_position == 5


def test_a_quoted_keyword_is_a_bare_value() -> None:
    assert shape(parse('"NOT" "AND" x').root) == ("AND", "NOT", "AND", "x")


def test_a_quoted_value_may_follow_an_operator() -> None:
    assert parse('name:="a b"').root == Term("name", Operator.EQ, "a b", 0, 6)


def test_an_empty_quoted_string_is_an_empty_value() -> None:
    assert parse('name:""').root == Term("name", None, "", 0, 5)


def test_keywords_are_case_sensitive_so_lower_case_and_is_a_word() -> None:
    assert shape(parse("cats and dogs").root) == ("AND", "cats", "and", "dogs")


def test_a_keyword_must_stand_alone_to_count() -> None:
    assert shape(parse("ANDROID ORACLE NOTES").root) == ("AND", "ANDROID", "ORACLE", "NOTES")


def test_juxtaposition_is_the_same_as_and() -> None:
    assert shape(parse("a b").root) == shape(parse("a AND b").root) == ("AND", "a", "b")


def test_or_binds_looser_than_and() -> None:
    assert shape(parse("a OR b c").root) == ("OR", "a", ("AND", "b", "c"))
    assert shape(parse("a b OR c").root) == ("OR", ("AND", "a", "b"), "c")
    assert shape(parse("a AND b OR c AND d").root) == (
        "OR",
        ("AND", "a", "b"),
        ("AND", "c", "d"),
    )


def test_not_binds_tightest() -> None:
    assert shape(parse("NOT a b").root) == ("AND", ("NOT", "a"), "b")
    assert shape(parse("NOT a OR b").root) == ("OR", ("NOT", "a"), "b")
    assert shape(parse("NOT NOT a").root) == ("NOT", ("NOT", "a"))


def test_parentheses_group() -> None:
    assert shape(parse("(a OR b) c").root) == ("AND", ("OR", "a", "b"), "c")
    assert shape(parse("NOT (a b)").root) == ("NOT", ("AND", "a", "b"))
    assert shape(parse("((a))").root) == "a"


def test_parentheses_and_quotes_end_a_word() -> None:
    assert shape(parse('(status:new)"x"').root) == ("AND", "status:new", "x")
    assert shape(parse("NOT(a)").root) == ("NOT", "a")


def test_unicode_whitespace_separates_terms() -> None:
    assert shape(parse("a\u3000b\u00a0c").root) == ("AND", "a", "b", "c")


def test_non_ascii_words_are_values_and_non_ascii_keys_are_not_keys() -> None:
    assert shape(parse("café ключ:x").root) == ("AND", "café", "ключ:x")


def test_terms_lists_every_term_left_to_right() -> None:
    query = parse("a OR NOT (b:1 c) d")
    assert [term.value for term in query.terms()] == ["a", "1", "c", "d"]


def test_mentions_key_finds_a_key_anywhere_in_any_case() -> None:
    assert mentions_key(parse("a OR NOT (HIDDEN:t)"), "hidden")
    assert mentions_key(parse("hidden:f"), "HIDDEN")
    assert not mentions_key(parse('hidden "hidden:t" name:hidden'), "hidden")
    assert not mentions_key(parse(""), "hidden")


@pytest.mark.parametrize(
    ("text", "position", "message"),
    [
        ("(status:new", 11, "expected ')' at position 11 to close the '(' at position 0"),
        ("(a OR (b c) d", 13, "expected ')' at position 13"),
        ("a)", 1, "unexpected ')' at position 1; no '(' opens it"),
        ("()", 1, "expected a search term at position 1, found ')'"),
        ("a OR", 4, "expected a search term after 'OR' at position 4"),
        ("a AND  ", 7, "expected a search term after 'AND' at position 7"),
        ("NOT", 3, "expected a search term after 'NOT' at position 3"),
        ("(", 1, "expected a search term at position 1"),
        ("OR a", 0, "'OR' at position 0 needs a search term before it"),
        ("a AND OR b", 6, "'OR' at position 6 needs a search term before it"),
        ("name:", 5, "expected a value after 'name:' at position 5"),
        ("name: web", 5, "expected a value after 'name:' at position 5 (write the value"),
        ("name:(web)", 5, "(quote a value that contains parentheses)"),
        ("id:>= 5", 5, "expected a value after '>=' at position 5"),
        ("=", 1, "expected a value after '=' at position 1"),
        ('name:"web', 5, "unterminated quoted string starting at position 5"),
        ('a "b\\"', 2, "unterminated quoted string starting at position 2"),
        ("ab\x07", 2, "unexpected control character U+0007 at position 2"),
        ("\x00", 0, "unexpected control character U+0000 at position 0"),
        ("a \ud800", 2, "unexpected control character U+D800 at position 2"),
    ],
)
def test_syntax_errors_name_the_position(text: str, position: int, message: str) -> None:
    error = parse_error(text)
    assert error.position == position
    assert message in error.message
    assert str(error) == error.message


def test_a_query_of_the_maximum_length_parses() -> None:
    text = "name:" + "x" * (MAX_QUERY_LENGTH - 5)
    assert len(text) == MAX_QUERY_LENGTH
    term = parse(text).root
    assert isinstance(term, Term)
    assert len(term.value) == MAX_QUERY_LENGTH - 5


def test_a_longer_query_is_refused_before_it_is_read() -> None:
    error = parse_error("x" * (MAX_QUERY_LENGTH + 1))
    assert error.position == MAX_QUERY_LENGTH
    assert "query is too long: 2001 characters, at most 2000" in error.message
    assert error.details == {"max_length": MAX_QUERY_LENGTH}


def test_nesting_up_to_the_limit_parses() -> None:
    text = "(" * MAX_DEPTH + "a" + ")" * MAX_DEPTH
    assert shape(parse(text).root) == "a"


def test_nesting_beyond_the_limit_is_refused_where_it_goes_too_deep() -> None:
    error = parse_error("(" * (MAX_DEPTH + 1) + "a" + ")" * (MAX_DEPTH + 1))
    assert error.position == MAX_DEPTH
    assert "nests too deeply" in error.message
    assert error.details == {"max_depth": MAX_DEPTH}


def test_not_counts_towards_the_nesting_limit() -> None:
    assert parse("NOT " * MAX_DEPTH + "a").root is not None
    error = parse_error("NOT " * (MAX_DEPTH + 1) + "a")
    assert error.position == 4 * MAX_DEPTH


def test_up_to_the_term_limit_parses() -> None:
    query = parse("a " * MAX_TERMS)
    assert len(list(query.terms())) == MAX_TERMS


def test_more_terms_than_the_limit_are_refused_at_the_first_extra_one() -> None:
    error = parse_error("a " * (MAX_TERMS + 1))
    assert error.position == 2 * MAX_TERMS
    assert f"too many search terms at position {2 * MAX_TERMS}" in error.message


def _outcome(text: str) -> Node | SearchError | None:
    try:
        return parse(text).root
    except SearchError as error:
        return error


def _assert_parses_or_explains(text: str) -> None:
    outcome = _outcome(text)
    if isinstance(outcome, SearchError):
        assert 0 <= outcome.position <= len(text)
        assert outcome.message
    else:
        query = parse(text)
        for term in query.terms():
            assert 0 <= term.position <= term.value_position <= len(text)


@given(st.text(max_size=300))
def test_arbitrary_text_either_parses_or_raises_a_search_error(text: str) -> None:
    _assert_parses_or_explains(text)


@given(st.text(alphabet='()" :=<>ANDORTa1\\%_\t-', max_size=60))
def test_text_made_of_the_language_s_symbols_parses_or_raises_a_search_error(text: str) -> None:
    _assert_parses_or_explains(text)


@given(
    st.lists(
        st.sampled_from(["AND", "OR", "NOT", "(", ")", "a", "id:", ">=", '"', "x:y", " "]),
        max_size=40,
    )
)
def test_token_soup_parses_or_raises_a_search_error(tokens: list[str]) -> None:
    _assert_parses_or_explains(" ".join(tokens))
