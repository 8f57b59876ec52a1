"""Which format a file is, from its first bytes (once decompressed, when it is gzip)."""

from __future__ import annotations

import codecs
import re
from typing import Final

from surveyor.formats.records import Format, FormatError

#: How much of a file detection looks at.
HEAD_BYTES: Final = 8192
_MASSCAN_ROOT: Final = re.compile(rb"""<nmaprun\b[^>]*\bscanner\s*=\s*["']masscan["']""")
_MASSCAN_JSON: Final = re.compile(rb"""^\s*\{\s*"ip"\s*:""")
_ADDRESS_FIELD: Final = re.compile(rb"""^\s*\{[^\n]*"ip"\s*:[^\n]*"ports"\s*:""")


def detect(head: bytes) -> Format:
    """The format of a file that starts with `head`; FormatError when it is none of them."""
    head = head[:HEAD_BYTES]
    if head.startswith(codecs.BOM_UTF8):
        head = head[len(codecs.BOM_UTF8) :]
    start = head.lstrip()
    if not start:
        raise FormatError("the file is empty")
    if start.startswith(b"<"):
        if _MASSCAN_ROOT.search(start) or b"<!-- masscan" in start[:400]:
            return Format.MASSCAN
        if b"<nmaprun" in start or b"<!DOCTYPE nmaprun" in start:
            return Format.NMAP
        if start.startswith((b"<?xml", b"<!DOCTYPE", b"<!--")):
            # An XML file that names no scanner in its first bytes; the nmap reader says
            # what is wrong with it.
            return Format.NMAP
        raise FormatError("the file starts with '<' but is not XML", offset=0)
    if start.startswith(b"#masscan") or re.match(
        rb"(open|closed|banner) (tcp|udp|sctp|icmp) ", start
    ):
        return Format.MASSCAN
    if start.startswith(b"["):
        return Format.MASSCAN
    if start.startswith(b"{"):
        if _MASSCAN_JSON.match(start) or _ADDRESS_FIELD.match(start):
            return Format.MASSCAN
        return Format.JSONL
    first_line = start.split(b"\n", 1)[0]
    if any(sep in first_line for sep in (b",", b";", b"\t")) or first_line.strip().isalpha():
        return Format.CSV
    raise FormatError(
        "the format cannot be told from the first bytes: expected Surveyor JSONL, nmap XML, "
        "masscan (-oJ, -oX, -oL) or CSV with a header row; name it with format=",
        line=1,
    )
