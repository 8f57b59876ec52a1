"""Characters that change how text looks without showing themselves, made visible.

Names, descriptions, banners and titles come from users and from the network. A
right-to-left override (U+202E) can make `gpj.exe` read as `exe.jpg`, a zero-width space
makes two names that look the same differ, and a terminal obeys escape sequences. Wherever
such text is shown (the web console, the CLI), these characters are shown as escapes
(`\\u202e`) instead, in a style of their own so that they cannot pass for typed text.

Hidden here: control characters (Unicode category Cc: C0, DEL and C1) except tab and line
feed, and a carriage return that does not end a line (`\\r\\n` is a line break); format
characters (Cf: zero-width and joiner characters, bidirectional embeddings, overrides and
isolates, the byte order mark, soft hyphens, tags); the line and paragraph separators (Zl,
Zp); and lone surrogates (Cs).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator

HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})
#: Characters that might be hidden: everything but printable ASCII, tab and line breaks. The
#: few found in ordinary text are then judged by their Unicode category.
_CANDIDATES = re.compile(r"\r(?!\n)|[^\t\n\r\x20-\x7e]")


def is_hidden(character: str) -> bool:
    """Whether a single character is shown as an escape (see the module's rules)."""
    if character in "\t\n":
        return False
    return unicodedata.category(character) in HIDDEN_CATEGORIES


def escape_of(character: str) -> str:
    """`\\u202e` for a character of the Basic Multilingual Plane, `\\U000e0001` beyond."""
    code = ord(character)
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def describe(character: str) -> str:
    """`U+202E RIGHT-TO-LEFT OVERRIDE`, for a tooltip."""
    name = unicodedata.name(character, "")
    return f"U+{ord(character):04X} {name}".rstrip()


def segments(text: str) -> Iterator[tuple[str, bool]]:
    """The text in runs: `(plain text, False)` and `(one hidden character, True)`."""
    start = 0
    for match in _CANDIDATES.finditer(text):
        character = match.group()
        if character != "\r" and not is_hidden(character):
            continue
        if match.start() > start:
            yield text[start : match.start()], False
        yield character, True
        start = match.end()
    if start < len(text):
        yield text[start:], False


def has_hidden(text: str) -> bool:
    return any(hidden for _, hidden in segments(text))


def reveal(text: str) -> str:
    """The text with every hidden character replaced by its escape."""
    if not _CANDIDATES.search(text):
        return text
    return "".join(escape_of(part) if hidden else part for part, hidden in segments(text))


def json_escape_hidden(dumped: str) -> str:
    """JSON text with its hidden characters written as `\\uXXXX` escapes (a surrogate pair
    beyond the Basic Multilingual Plane): the same JSON value, safe to show in a terminal.
    Hidden characters only ever occur inside JSON strings, where such escapes are valid."""
    if not _CANDIDATES.search(dumped):
        return dumped
    out = []
    for part, hidden in segments(dumped):
        if not hidden:
            out.append(part)
            continue
        code = ord(part)
        if code <= 0xFFFF:
            out.append(f"\\u{code:04x}")
        else:
            code -= 0x10000
            out.append(f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}")
    return "".join(out)
