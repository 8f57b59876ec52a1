"""Reading XML anyone may send: streaming, defused, bounded.

The file is fed to expat block by block; a reader's handlers see each element start (and,
where it asks, end) and keep only what they need, so nothing of the document stays in
memory. The parser's handlers refuse what makes XML dangerous, as `defusedxml` does: any
entity declaration (the "billion laughs" expands a few declared entities to gigabytes),
any external DTD and any external entity (which would read another file or URL); nothing is
expanded, fetched or resolved. A token (a tag with its attributes, a comment) that does not
end within the record limit is refused, so memory stays bounded for any input.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Final, Protocol
from xml.parsers import expat

from surveyor.core.jsonl_limits import RECORD_SETTING, JsonlLimits, LimitExceeded
from surveyor.formats.records import FormatError

_DECLARED_ENCODING: Final = re.compile(rb"""^\s*<\?xml[^>]*encoding\s*=\s*["']([\w.:-]+)["']""")
_UTF8: Final = frozenset({"utf-8", "utf8"})
_NO_ELEMENTS: Final = expat.errors.codes[expat.errors.XML_ERROR_NO_ELEMENTS]


class Reader(Protocol):
    """What reads a kind of XML file: it sets its handlers on the parser (`attach`), puts
    the records it completes in `pending`, tidies its buffers after each block, and is told
    when the file ends, completely or before its root element does (an interrupted scan)."""

    pending: list[dict[str, Any]]

    def attach(self, parser: expat.XMLParserType) -> None: ...

    def after_block(self) -> None: ...

    def finish(self, *, complete: bool, line: int) -> None: ...


class XmlRefused(FormatError):
    """XML refused for what it declares (entities, an external DTD)."""


def _refuse_entity(name: str, *_rest: object) -> None:
    raise XmlRefused(
        f"the file declares the entity {name!r}; XML entities are refused (they can expand "
        "without bound or read other files)"
    )


def _refuse_external(*_rest: object) -> int:
    raise XmlRefused("the file refers to an external entity; it is refused")


def _check_doctype(name: str, system_id: str | None, public_id: str | None, _: object) -> None:
    if system_id or public_id:
        raise XmlRefused(
            f"the file's DOCTYPE {name!r} names an external DTD "
            f"({system_id or public_id}); it is refused"
        )


def defused_parser() -> expat.XMLParserType:
    """An expat parser that refuses entity declarations and external references."""
    parser = expat.ParserCreate()
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.EntityDeclHandler = _refuse_entity
    parser.UnparsedEntityDeclHandler = _refuse_entity
    parser.ExternalEntityRefHandler = _refuse_external
    parser.StartDoctypeDeclHandler = _check_doctype
    parser.buffer_text = True
    return parser


def _decoder(head: bytes) -> Callable[[bytes, bool], str] | None:
    """A decoder to text that replaces bytes that are not UTF-8, for files that are (or say
    nothing and so must be) UTF-8; None for files that declare another encoding, which
    expat reads itself."""
    declared = _DECLARED_ENCODING.match(head)
    if declared is not None and declared.group(1).decode("ascii").lower() not in _UTF8:
        return None
    return codecs.getincrementaldecoder("utf-8")("replace").decode


def parse(blocks: Iterable[bytes], reader: Reader, limits: JsonlLimits) -> Iterator[dict[str, Any]]:
    """Feed the file to `reader`; yield the records it completes, as it completes them."""
    parser = defused_parser()
    reader.attach(parser)
    pending = reader.pending
    decode: Callable[[bytes, bool], str] | None = None
    first = True
    fed = 0
    try:
        for block in blocks:
            if first:
                first = False
                if block.startswith(codecs.BOM_UTF8):
                    block = block[len(codecs.BOM_UTF8) :]
                decode = _decoder(block[:200])
            if decode is not None:
                parser.Parse(decode(block, False), False)
            else:
                parser.Parse(block, False)
            fed += len(block)
            if pending:
                yield from pending
                pending.clear()
            reader.after_block()
            if fed - parser.CurrentByteIndex > limits.max_record_bytes:
                raise LimitExceeded(
                    f"no XML token ends within {limits.max_record_bytes} bytes of byte "
                    f"{parser.CurrentByteIndex}",
                    setting=RECORD_SETTING,
                    maximum=limits.max_record_bytes,
                )
        if first:
            raise FormatError("the file is empty")
        try:
            parser.Parse(decode(b"", True) if decode is not None else b"", True)
        except expat.ExpatError as exc:
            if exc.code != _NO_ELEMENTS or fed == 0:
                raise
            # The file ends before its root element does: an interrupted scan.
            reader.finish(complete=False, line=exc.lineno)
        else:
            reader.finish(complete=True, line=parser.CurrentLineNumber)
        yield from pending
        pending.clear()
    except expat.ExpatError as exc:
        problem = expat.errors.messages[exc.code]
        raise FormatError(
            f"the XML is broken: {problem}",
            line=exc.lineno,
            column=exc.offset + 1,
            offset=parser.ErrorByteIndex,
        ) from None
