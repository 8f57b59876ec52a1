"""The search language of SPEC §11: its syntax tree and a recursive-descent parser.

    query := or ;  or := and ("OR" and)* ;  and := unary (["AND"] unary)*
    unary := "NOT" unary | "(" query ")" | term ;  term := key ":" value | value
    value := [ "=" | ">" | ">=" | "<" | "<=" ] (word | "quoted string")

Lexical rules: keywords are upper-case and end at a delimiter (`and`, `ANDROID` are words).
A word runs until whitespace, `(`, `)` or `"`; a value word may contain `:` so times and
ports need no quotes. A key is ASCII letters, digits and `_`, matched case-insensitively,
and its value follows the colon without a space. Quoted strings take `\\"` and `\\\\`;
any other backslash is kept as written.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum

from surveyor.core.search.errors import SearchError

MAX_QUERY_LENGTH = 2000
MAX_DEPTH = 32
MAX_TERMS = 200


class Operator(StrEnum):
    EQ = "="
    GT = ">"
    GE = ">="
    LT = "<"
    LE = "<="


@dataclass(frozen=True)
class Term:
    """`key:value` or, with `key` None, a bare value. Keys are lower-cased."""

    key: str | None
    operator: Operator | None
    value: str
    position: int
    value_position: int

    @property
    def operator_position(self) -> int:
        return self.value_position - len(self.operator or "")


@dataclass(frozen=True)
class Not:
    operand: Node
    position: int


@dataclass(frozen=True)
class And:
    operands: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    operands: tuple[Node, ...]


Node = Term | Not | And | Or


@dataclass(frozen=True)
class Query:
    """A parsed query; `root` is None when the text is blank, which matches everything."""

    text: str
    root: Node | None

    def terms(self) -> Iterator[Term]:
        """Every term of the query, left to right."""
        stack: list[Node] = [self.root] if self.root is not None else []
        while stack:
            node = stack.pop()
            if isinstance(node, Term):
                yield node
            elif isinstance(node, Not):
                stack.append(node.operand)
            else:
                stack.extend(reversed(node.operands))


def parse(text: str) -> Query:
    """Parse query text into a `Query`; raises `SearchError` naming the offending position."""
    _check_characters(text)
    return Query(text=text, root=_Parser(text).parse())


def mentions_key(query: Query, key: str) -> bool:
    """Whether any term of the query uses `key` (case-insensitive)."""
    wanted = key.lower()
    return any(term.key == wanted for term in query.terms())


_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*:")
_KEYWORDS = ("AND", "OR", "NOT")
_OPERATORS = sorted(Operator, key=len, reverse=True)


def _check_characters(text: str) -> None:
    if len(text) > MAX_QUERY_LENGTH:
        raise SearchError(
            f"query is too long: {len(text)} characters, at most {MAX_QUERY_LENGTH}",
            MAX_QUERY_LENGTH,
            {"max_length": MAX_QUERY_LENGTH},
        )
    for index, char in enumerate(text):
        # Databases refuse NUL and unpaired surrogates; other control characters are typos.
        if not char.isspace() and unicodedata.category(char) in ("Cc", "Cs"):
            raise SearchError(
                f"unexpected control character U+{ord(char):04X} at position {index}", index
            )


def _is_delimiter(char: str) -> bool:
    return char.isspace() or char in '()"'


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.depth = 0
        self.term_count = 0

    def parse(self) -> Node | None:
        self._skip_space()
        if self._at_end():
            return None
        root = self._or()
        if not self._at_end():
            raise SearchError(f"unexpected ')' at position {self.pos}; no '(' opens it", self.pos)
        return root

    def _or(self) -> Node:
        operands = [self._and()]
        while self._keyword() == "OR":
            self._consume_keyword("OR")
            operands.append(self._and())
        return operands[0] if len(operands) == 1 else Or(tuple(operands))

    def _and(self) -> Node:
        operands = [self._unary()]
        while True:
            self._skip_space()
            if self._at_end() or self._peek() == ")" or self._keyword() == "OR":
                break
            if self._keyword() == "AND":
                self._consume_keyword("AND")
            operands.append(self._unary())
        return operands[0] if len(operands) == 1 else And(tuple(operands))

    def _unary(self) -> Node:
        self._skip_space()
        start = self.pos
        keyword = self._keyword()
        if keyword == "NOT":
            self._enter(start)
            self._consume_keyword("NOT")
            operand = self._unary()
            self.depth -= 1
            return Not(operand, start)
        if keyword is not None:
            raise SearchError(
                f"'{keyword}' at position {start} needs a search term before it"
                " (quote it to search for the word)",
                start,
            )
        if self._at_end():
            raise SearchError(self._expected_term_message(), start)
        if self._peek() == ")":
            raise SearchError(f"expected a search term at position {start}, found ')'", start)
        if self._peek() == "(":
            self._enter(start)
            self.pos += 1
            inner = self._or()
            self._skip_space()
            if self._peek() != ")":
                raise SearchError(
                    f"expected ')' at position {self.pos} to close the '(' at position {start}",
                    self.pos,
                )
            self.pos += 1
            self.depth -= 1
            return inner
        return self._term()

    def _term(self) -> Term:
        start = self.pos
        self.term_count += 1
        if self.term_count > MAX_TERMS:
            raise SearchError(
                f"too many search terms at position {start}: at most {MAX_TERMS}",
                start,
                {"max_terms": MAX_TERMS},
            )
        key_match = _KEY.match(self.text, start)
        if key_match is None:
            operator, value, value_position = self._value(after=None)
            return Term(None, operator, value, start, value_position)
        self.pos = key_match.end()
        key = key_match.group()[:-1]
        operator, value, value_position = self._value(after=f"'{key}:'")
        return Term(key.lower(), operator, value, start, value_position)

    def _value(self, after: str | None) -> tuple[Operator | None, str, int]:
        operator = next((op for op in _OPERATORS if self.text.startswith(op, self.pos)), None)
        if operator is not None:
            self.pos += len(operator)
            after = f"'{operator}'"
        start = self.pos
        if self._peek() == '"':
            return operator, self._quoted(), start
        while not self._at_end() and not _is_delimiter(self.text[self.pos]):
            self.pos += 1
        if self.pos == start:
            if self._at_end():
                hint = ""
            elif self.text[start].isspace():
                hint = " (write the value right after it, or quote a value with spaces)"
            else:
                hint = " (quote a value that contains parentheses)"
            raise SearchError(f"expected a value after {after} at position {start}{hint}", start)
        return operator, self.text[start : self.pos], start

    def _quoted(self) -> str:
        start = self.pos
        self.pos += 1
        chars: list[str] = []
        while not self._at_end():
            char = self.text[self.pos]
            if char == '"':
                self.pos += 1
                return "".join(chars)
            if char == "\\" and self.text[self.pos + 1 : self.pos + 2] in ('"', "\\"):
                self.pos += 1
                char = self.text[self.pos]
            chars.append(char)
            self.pos += 1
        raise SearchError(f"unterminated quoted string starting at position {start}", start)

    def _enter(self, position: int) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise SearchError(
                f"query nests too deeply at position {position}:"
                f" at most {MAX_DEPTH} levels of parentheses and NOT",
                position,
                {"max_depth": MAX_DEPTH},
            )

    def _expected_term_message(self) -> str:
        before = self.text[: self.pos].rstrip()
        for keyword in _KEYWORDS:
            keyword_start = len(before) - len(keyword)
            if before.endswith(keyword) and (
                keyword_start == 0 or _is_delimiter(before[keyword_start - 1])
            ):
                return f"expected a search term after '{keyword}' at position {self.pos}"
        return f"expected a search term at position {self.pos}"

    def _keyword(self) -> str | None:
        self._skip_space()
        for keyword in _KEYWORDS:
            end = self.pos + len(keyword)
            if self.text.startswith(keyword, self.pos) and (
                end == len(self.text) or _is_delimiter(self.text[end])
            ):
                return keyword
        return None

    def _consume_keyword(self, keyword: str) -> None:
        self.pos += len(keyword)

    def _skip_space(self) -> None:
        while not self._at_end() and self.text[self.pos].isspace():
            self.pos += 1

    def _peek(self) -> str:
        return self.text[self.pos : self.pos + 1]

    def _at_end(self) -> bool:
        return self.pos >= len(self.text)
