"""Downloads: `surveyor asset export`, `surveyor task data` and `surveyor task changes`.

Each streams what the console sends into the file named (written beside it and renamed once
whole, so a broken download leaves no half file), with a progress bar on the terminal; the
change report may also go to standard output.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, BinaryIO, Literal

import typer

from surveyor.cli.assets import asset_app
from surveyor.cli.command import Api, api_command
from surveyor.cli.render import err
from surveyor.cli.tasks import TaskId, task_app

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


def _download(
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


@api_command(asset_app, "export", json=False)
def export_assets(
    output: OutputFile,
    search: Annotated[
        str | None, typer.Option("--search", help="Export only what this search finds.")
    ] = None,
    export_format: Annotated[
        Format, typer.Option("--format", help="csv (for spreadsheets) or jsonl.")
    ] = "csv",
    *,
    api: Api,
) -> None:
    """Export the inventory (or what a search finds) as CSV or JSONL."""
    size = _download(
        "/assets/export",
        output,
        what="Exporting assets",
        params={"search": search, "format": export_format},
        api=api,
    )
    err.print(f"Wrote {size:,} bytes of {export_format.upper()} to {output}")


@api_command(task_app, "data", json=False)
def task_data(task_id: TaskId, output: OutputFile, *, api: Api) -> None:
    """Download the data a task collected (gzip JSONL, the task data format)."""
    size = _download(
        f"/tasks/{task_id}/data",
        output,
        what=f"Task {task_id} data",
        api=api,
    )
    err.print(f"Wrote the data of task {task_id} ({size:,} bytes) to {output}")


@api_command(task_app, "changes", json=False)
def task_changes(
    task_id: TaskId,
    report_format: Annotated[
        Format, typer.Option("--format", help="csv (for spreadsheets) or jsonl.")
    ] = "csv",
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", dir_okay=False, help="The file (default: standard output)."),
    ] = None,
    *,
    api: Api,
) -> None:
    """The change report of a task's latest processing: one line per changed asset."""
    size = _download(
        f"/tasks/{task_id}/changes",
        output,
        what=f"Task {task_id} changes",
        params={"format": report_format},
        api=api,
    )
    if output is not None:
        err.print(f"Wrote the change report of task {task_id} ({size:,} bytes) to {output}")
