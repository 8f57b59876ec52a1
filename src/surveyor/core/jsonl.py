"""One task data record as a JSON line (SPEC §7): the encoding every writer of task data
shares, the scan's, the imports', the connectors' (which may also build the same bytes
themselves: `connectors/ldap.py`)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)
#: The same encoding without `JSONEncoder.encode`'s set-up on every call (a third of the time
#: of a small record): the C encoder it would make, made once. Records hold no cycles.
_ENCODE_ONCE = (
    json.encoder.c_make_encoder(  # type: ignore[attr-defined]
        None, _ENCODER.default, json.encoder.encode_basestring, None, ":", ",", False, False, False
    )
    if getattr(json.encoder, "c_make_encoder", None) is not None
    else None
)


def encode_record(record: Mapping[str, Any]) -> bytes:
    """One record as a JSON line: compact, UTF-8 (not \\u escapes), no NaN."""
    if _ENCODE_ONCE is None or type(record) is not dict:
        return _ENCODER.encode(record).encode() + b"\n"
    return ("".join(_ENCODE_ONCE(record, 0)) + "\n").encode()
