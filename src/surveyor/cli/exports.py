"""Downloads, for `surveyor asset export` (cli/assets.py), `surveyor task data` and
`surveyor task changes` (cli/tasks.py).

Each streams what the console sends into the file named (written beside it and renamed once
whole, so a broken download leaves no half file), with a progress bar on the terminal; the
change report may also go to standard output. The commands live with their groups, so that
loading one group does not load the other.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, BinaryIO, Literal

import typer

from surveyor.cli.command import Api
from surveyor.cli.render import err

OutputFile = Annotated[
    Path,
    typer.Option("--output", "-o", dir_okay=False, writable=True, help="The file to write."),
]
Format = Literal["csv", "jsonl"]


@contextlib.contextmanager
def _into(target: Path) -> Iterator[BinaryIO]:
    """A file written at `target.part` and renamed to `target` only when complete."""
    partial = target.with_name(f".{target.name}.part")
    try:
        with partial.open("wb") as handle:
            yield handle
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)


@contextlib.contextmanager
def _bar(what: str) -> Iterator[Callable[[int, int | None], None]]:
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    progress = Progress(
        TextColumn(what),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=err,
        transient=True,
    )
    job = progress.add_task(what, total=None)
    with progress:
        yield lambda done, total: progress.update(job, completed=done, total=total)


def download(
    path: str,
    target: Path | None,
    *,
    what: str,
    params: dict[str, str | None] | None = None,
    api: Api,
) -> int:
    with api.connect() as client:
        if target is None:
            out = sys.stdout.buffer
            received = client.download(path, out.write, params=params)
            out.flush()
            return received
        with _into(target) as handle, _bar(what) as on_bytes:
            return client.download(path, handle.write, params=params, on_bytes=on_bytes)
