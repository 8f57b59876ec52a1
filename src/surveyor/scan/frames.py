"""Messages between the engine and its worker processes: pickles, each after its length.

Both ends are this package, over the pipes of a process it started, so pickle is safe here and
keeps the host batches and reports cheap to pass.
"""

from __future__ import annotations

import pickle
import struct
from typing import IO, Any

_LENGTH = struct.Struct("!I")


def write_frame(stream: IO[bytes], message: Any) -> None:
    """Send one message and flush it."""
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_LENGTH.pack(len(data)) + data)
    stream.flush()


def read_frame(stream: IO[bytes]) -> Any:
    """The next message; None at the end of the stream (or if it ends mid-message)."""
    header = _read_exactly(stream, _LENGTH.size)
    if header is None:
        return None
    body = _read_exactly(stream, _LENGTH.unpack(header)[0])
    return None if body is None else pickle.loads(body)  # noqa: S301 - our own child's pipe


def _read_exactly(stream: IO[bytes], size: int) -> bytes | None:
    data = b""
    while len(data) < size:
        chunk = stream.read(size - len(data))
        if not chunk:
            return None
        data += chunk
    return data
