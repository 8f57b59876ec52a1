"""The LDAP search operation on the wire: paged search requests out, their answers in.

ldap3 opens the connection, speaks TLS and binds; the search itself, which carries 100,000
entries, is read here. ldap3 decodes every answer into generic dictionaries of decoded values,
which costs about 80 µs an entry; this reader finds the messages of a page, and then walks
the BER of each entry once, decoding only the values the connector asks for. Requests are
still encoded by ldap3 (once a page, so their cost does not matter), which also parses the
user's filter.

The transport is anything with `sendall` and `recv`: a socket, an SSL socket, or a test's fake.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ldap3 import DEREF_NEVER, SUBTREE
from ldap3.operation.search import search_operation
from ldap3.protocol.convert import build_controls_list
from ldap3.protocol.rfc2696 import paged_search_control
from ldap3.protocol.rfc4511 import LDAPMessage, MessageID, ProtocolOp
from ldap3.utils.asn1 import encode

PAGED_RESULTS_OID = b"1.2.840.113556.1.4.319"
_RECV_BYTES = 1 << 16
_SEARCH_ENTRY = 0x64
_SEARCH_DONE = 0x65
_SEARCH_REFERENCE = 0x73
_CONTROLS = 0xA0
_REFERRAL = 0xA3
#: Attribute names remembered by a `Slots`, at most.
_KNOWN_NAMES = 256


class Transport(Protocol):
    def sendall(self, data: bytes, /) -> None: ...

    def recv(self, size: int, /) -> bytes: ...


class WireError(Exception):
    """The server sent something that is not LDAP, or hung up mid-answer."""


@dataclass(frozen=True, slots=True)
class Reference:
    """A searchResRef: URLs where the rest of the search continues."""

    urls: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Done:
    """A searchResDone: the result of one page, and the cookie of the next (empty at the end)."""

    result_code: int
    matched_dn: str
    message: str
    referrals: tuple[str, ...]
    cookie: bytes


@dataclass(frozen=True, slots=True)
class Page:
    """The answers to one page's request, as they came: `data` holds the page's messages and
    `entries` where each searchResEntry starts in it, for `values()` to read. The caller asks
    for the next page first, so that the server prepares it while this one is read."""

    data: bytes
    entries: list[int]
    references: list[Reference]
    done: Done


def search_request(
    message_id: int,
    base: str,
    search_filter: str,
    attributes: Sequence[str],
    page_size: int,
    cookie: bytes,
    time_limit: int = 0,
) -> bytes:
    """One page's SearchRequest (whole subtree, aliases never dereferenced) with the simple
    paged results control; raises ldap3's LDAPInvalidFilterError for a malformed filter."""
    request = _search_operation(base, search_filter, attributes, time_limit)
    message = LDAPMessage()
    message["messageID"] = MessageID(message_id)
    message["protocolOp"] = ProtocolOp().setComponentByName("searchRequest", request)
    control = paged_search_control(False, page_size, cookie)
    message["controls"] = build_controls_list([control])
    return bytes(encode(message))


def _search_operation(
    base: str, search_filter: str, attributes: Sequence[str], time_limit: int
) -> Any:
    """ldap3's SearchRequest: the whole subtree, aliases never dereferenced, no size limit."""
    return search_operation(
        base,
        search_filter,
        SUBTREE,
        DEREF_NEVER,
        list(attributes),
        0,
        time_limit,
        False,
        True,
        True,
    )


class PagedSearch:
    """The SearchRequests of one paged search, a page each: ldap3 encodes the search itself
    once (and parses the filter, raising its LDAPInvalidFilterError for a malformed one);
    each page's request is that search in an envelope with its message ID and the paged
    results control carrying the cookie, the very bytes `search_request` makes, without
    pyasn1's half a millisecond a page."""

    def __init__(
        self,
        base: str,
        search_filter: str,
        attributes: Sequence[str],
        page_size: int,
        time_limit: int = 0,
    ) -> None:
        request = _search_operation(base, search_filter, attributes, time_limit)
        self._operation = bytes(encode(ProtocolOp().setComponentByName("searchRequest", request)))
        self._size = _tlv(0x02, _integer(page_size))

    def request(self, message_id: int, cookie: bytes) -> bytes:
        value = _tlv(0x30, self._size + _tlv(0x04, cookie))
        control = _tlv(0x30, _tlv(0x04, PAGED_RESULTS_OID) + _tlv(0x04, value))
        body = _tlv(0x02, _integer(message_id)) + self._operation + _tlv(_CONTROLS, control)
        return _tlv(0x30, body)


def _tlv(tag: int, content: bytes) -> bytes:
    """A BER element with the shortest length."""
    size = len(content)
    if size < 0x80:
        return bytes((tag, size)) + content
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(length))) + length + content


def _integer(value: int) -> bytes:
    """An INTEGER's content: the shortest two's complement."""
    return value.to_bytes(max(1, (value.bit_length() + 8) // 8), "big", signed=True)


def _header(data: bytes | bytearray, pos: int) -> tuple[int, int, int]:
    """(tag, start of content, end of content) of the element at `pos`."""
    tag = data[pos]
    first = data[pos + 1]
    if first < 0x80:
        return tag, pos + 2, pos + 2 + first
    count = first & 0x7F
    start = pos + 2 + count
    return tag, start, start + int.from_bytes(data[pos + 2 : start], "big")


def _text(data: bytes | bytearray, start: int, end: int) -> str:
    return data[start:end].decode("utf-8", "replace")


def _strings(data: bytes | bytearray, start: int, end: int) -> list[str]:
    values = []
    while start < end:
        _, value_start, value_end = _header(data, start)
        values.append(_text(data, value_start, value_end))
        start = value_end
    return values


class Slots:
    """Which attribute goes where in a row of `values()`: attribute names are matched without
    regard to case, as LDAP does, and an attribute with options (`description;lang-de`) is
    another attribute. Remembers the answer for each name as the server spells it."""

    def __init__(self, names: Sequence[str]) -> None:
        self.width = len(names)
        self._wanted = {name.lower(): index for index, name in enumerate(names)}
        self.known: dict[bytes, int] = {}

    def slot(self, name: bytes) -> int:
        """The row index of the attribute called `name` on the wire; -1 for one not asked for."""
        found = self._wanted.get(name.decode("utf-8", "replace").lower(), -1)
        if len(self.known) < _KNOWN_NAMES:  # a server inventing names cannot grow it forever
            self.known[name] = found
        return found


def values(page: Page, slots: Slots) -> list[list[Any]]:
    """One row per searchResEntry of the page: the first value of each attribute `slots`
    asks for (None where the entry has none; of an attribute sent twice, the later), then the
    entry's DN last. Text is read as UTF-8, a byte that is not shown as U+FFFD.

    The hot path: 100,000 entries pass here, so BER headers are read inline (a call per
    element would double the time) and values that are not asked for are not decoded."""
    data = page.data
    known = slots.known
    width = slots.width
    rows: list[list[Any]] = []
    try:
        for op in page.entries:
            # SearchResultEntry ::= [APPLICATION 4] SEQUENCE { objectName LDAPDN,
            #     attributes SEQUENCE OF PartialAttribute }
            first = data[op + 1]
            if first < 0x80:
                pos = op + 2
                end = pos + first
            else:
                pos = op + 2 + (first & 0x7F)
                end = pos + int.from_bytes(data[op + 2 : pos], "big")
            first = data[pos + 1]
            if first < 0x80:
                dn_start = pos + 2
                dn_end = dn_start + first
            else:
                dn_start = pos + 2 + (first & 0x7F)
                dn_end = dn_start + int.from_bytes(data[pos + 2 : dn_start], "big")
            first = data[dn_end + 1]
            pos = dn_end + 2 if first < 0x80 else dn_end + 2 + (first & 0x7F)
            row: list[str | None] = [None] * width
            while pos < end:
                # PartialAttribute ::= SEQUENCE { type OCTET STRING, vals SET OF OCTET STRING }
                first = data[pos + 1]
                if first < 0x80:
                    inner = pos + 2
                    attribute_end = inner + first
                else:
                    inner = pos + 2 + (first & 0x7F)
                    attribute_end = inner + int.from_bytes(data[pos + 2 : inner], "big")
                first = data[inner + 1]
                if first < 0x80:
                    type_start = inner + 2
                    type_end = type_start + first
                else:
                    type_start = inner + 2 + (first & 0x7F)
                    type_end = type_start + int.from_bytes(data[inner + 2 : type_start], "big")
                name = data[type_start:type_end]
                slot = known.get(name)
                if slot is None:
                    slot = slots.slot(name)
                if slot >= 0:
                    first = data[type_end + 1]
                    value = type_end + 2 if first < 0x80 else type_end + 2 + (first & 0x7F)
                    if value < attribute_end:  # an attribute with no value is left out
                        first = data[value + 1]
                        if first < 0x80:
                            value_start = value + 2
                            value_end = value_start + first
                        else:
                            value_start = value + 2 + (first & 0x7F)
                            value_end = value_start + int.from_bytes(
                                data[value + 2 : value_start], "big"
                            )
                        if value_end > attribute_end:
                            raise IndexError
                        row[slot] = data[value_start:value_end].decode("utf-8", "replace")
                if attribute_end > end:
                    raise IndexError
                pos = attribute_end
            row.append(data[dn_start:dn_end].decode("utf-8", "replace"))
            rows.append(row)
    except IndexError:
        raise WireError("the server sent a search entry that is not LDAP") from None
    return rows


def raw_values(page: Page, slots: Slots) -> list[list[bytes | None]]:
    """What `values()` reads, left as bytes: one row per searchResEntry, the first value of
    each attribute `slots` asks for (None where the entry has none), then the DN, each the
    UTF-8 bytes that `values()` would decode with errors replaced.

    The path of the connector's task-data lines: each entry is cut out of the page first, so
    the offsets inside it are small integers (which Python does not allocate), and an
    attribute whose lengths all fit in one byte, as nearly all do, is read with no branch
    per element. An entry with any longer attribute is read by `values()`, whose text is
    encoded back: decoding that again gives the same text."""
    data = page.data
    known = slots.known
    width = slots.width
    rows: list[list[bytes | None]] = []
    try:
        for op in page.entries:
            first = data[op + 1]
            if first < 0x80:
                entry = data[op + 2 : op + 2 + first]
            else:
                start = op + 2 + (first & 0x7F)
                entry = data[start : start + int.from_bytes(data[op + 2 : start], "big")]
            end = len(entry)
            first = entry[1]
            if first < 0x80:
                pos = 2 + first
                dn = entry[2:pos]
            else:
                start = 2 + (first & 0x7F)
                pos = start + int.from_bytes(entry[2:start], "big")
                dn = entry[start:pos]
            first = entry[pos + 1]
            pos += 2 if first < 0x80 else 2 + (first & 0x7F)
            row: list[bytes | None] = [None] * width
            while pos < end:
                # 30 L1 04 L2 type 31 L3 04 L4 value ...: every length below 0x80
                first = entry[pos + 1]
                length = entry[pos + 3]
                if first >= 0x80 or length >= 0x80:
                    break
                attribute_end = pos + 2 + first
                type_end = pos + 4 + length
                name = entry[pos + 4 : type_end]
                slot = known.get(name)
                if slot is None:
                    slot = slots.slot(name)
                if slot >= 0 and type_end + 2 < attribute_end:  # an empty set is left out
                    first = entry[type_end + 1]
                    length = entry[type_end + 3]
                    if first >= 0x80 or length >= 0x80:
                        break
                    pos = type_end + 4 + length
                    if pos > attribute_end:
                        raise IndexError
                    row[slot] = entry[type_end + 4 : pos]
                pos = attribute_end
            else:
                if pos > end:
                    raise IndexError
                row.append(dn)
                rows.append(row)
                continue
            single = Page(data, [op], [], page.done)
            rows.append([None if v is None else v.encode() for v in values(single, slots)[0]])
    except IndexError:
        raise WireError("the server sent a search entry that is not LDAP") from None
    return rows


def _paged_cookie(data: bytes | bytearray, start: int, end: int) -> bytes:
    pos = start
    while pos < end:
        _, control_start, control_end = _header(data, pos)
        _, oid_start, oid_end = _header(data, control_start)
        if bytes(data[oid_start:oid_end]) == PAGED_RESULTS_OID:
            field = oid_end
            while field < control_end:
                tag, value_start, value_end = _header(data, field)
                if tag == 0x04:  # controlValue: SEQUENCE { size INTEGER, cookie OCTET STRING }
                    _, inner, _ = _header(data, value_start)
                    _, size_end = _header(data, inner)[1:]
                    _, cookie_start, cookie_end = _header(data, size_end)
                    return bytes(data[cookie_start:cookie_end])
                field = value_end
        pos = control_end
    return b""


def _done(data: bytes | bytearray, start: int, end: int, after: int, message_end: int) -> Done:
    _, code_start, code_end = _header(data, start)
    _, matched_start, matched_end = _header(data, code_end)
    _, text_start, text_end = _header(data, matched_end)
    referrals: tuple[str, ...] = ()
    if text_end < end:
        tag, referral_start, referral_end = _header(data, text_end)
        if tag == _REFERRAL:
            referrals = tuple(_strings(data, referral_start, referral_end))
    cookie = b""
    if after < message_end:
        tag, controls_start, controls_end = _header(data, after)
        if tag == _CONTROLS:
            cookie = _paged_cookie(data, controls_start, controls_end)
    return Done(
        result_code=int.from_bytes(data[code_start:code_end], "big"),
        matched_dn=_text(data, matched_start, matched_end),
        message=_text(data, text_start, text_end),
        referrals=referrals,
        cookie=cookie,
    )


def read_page(transport: Transport, message_id: int) -> Page:
    """The answers to search request `message_id`, up to and including its Done; answers to
    other messages (an unsolicited notice) are passed over. The page's bytes are kept whole
    (a page of 500 computers is about 130 kB) and its entries are only found here, not read."""
    buffer = bytearray()
    entries: list[int] = []
    references: list[Reference] = []
    ours = bytes(encode(MessageID(message_id)))  # the ID as the server usually writes it
    pos = 0
    while True:
        chunk = transport.recv(_RECV_BYTES)
        if not chunk:
            raise WireError("the server closed the connection in the middle of a search")
        buffer += chunk
        available = len(buffer)
        try:
            while pos + 2 <= available:
                # LDAPMessage ::= SEQUENCE { messageID INTEGER, protocolOp, controls [0] OPTIONAL }
                first = buffer[pos + 1]
                if first < 0x80:
                    content = pos + 2
                    message_end = content + first
                else:
                    content = pos + 2 + (first & 0x7F)
                    if content > available:
                        break
                    message_end = content + int.from_bytes(buffer[pos + 2 : content], "big")
                if message_end > available:
                    break
                op = content + 2 + buffer[content + 1]  # after the message ID, a short INTEGER
                if (
                    buffer[content:op] == ours
                    or int.from_bytes(buffer[content + 2 : op], "big") == message_id
                ):
                    op_tag = buffer[op]
                    if op_tag == _SEARCH_ENTRY:  # read by values(), which checks its bounds
                        entries.append(op)
                        pos = message_end
                        continue
                    op_tag, op_start, op_end = _header(buffer, op)
                    if op_end > message_end:
                        raise IndexError
                    if op_tag == _SEARCH_REFERENCE:
                        urls = tuple(_strings(buffer, op_start, op_end))
                        references.append(Reference(urls=urls))
                    elif op_tag == _SEARCH_DONE:
                        done = _done(buffer, op_start, op_end, op_end, message_end)
                        return Page(bytes(buffer), entries, references, done)
                pos = message_end
        except IndexError:
            raise WireError("the server sent a message that is not LDAP") from None
