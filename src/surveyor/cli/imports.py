"""`surveyor import FILE [--site S] [--format F]`: upload a file as an import task.

The file goes as it is (Surveyor JSONL, nmap XML, masscan output or CSV, gzip or plain);
the console tells its format unless `--format` names it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TransferSpeedColumn,
)
from rich.text import Text

from surveyor.cli.client import CliError
from surveyor.cli.command import Api, api_options
from surveyor.cli.render import err, out, print_json, status_text
from surveyor.core.tasks import TERMINAL_STATUSES

CHUNK_BYTES = 1 << 20
POLL_SECONDS = 0.5
TERMINAL = frozenset(status.value for status in TERMINAL_STATUSES)
UPLOAD_TIMEOUT = 600.0
GZIP_MAGIC = b"\x1f\x8b"


def _chunks(path: Path, progress: Progress | None) -> Iterator[bytes]:
    bar = progress.add_task("Upload", total=path.stat().st_size) if progress else None
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK_BYTES):
            if progress is not None and bar is not None:
                progress.advance(bar, len(chunk))
            yield chunk


@api_options
def import_file(
    file: Annotated[
        Path,
        typer.Argument(
            exists=True,
            dir_okay=False,
            readable=True,
            help="Surveyor task data (what `surveyor scan` writes), nmap XML (-oX), masscan "
            "output (-oJ, -oX, -oL) or CSV with a header row; gzip-compressed or plain.",
        ),
    ],
    site: Annotated[
        str | None,
        typer.Option("--site", help="Site id or name to import into (default: the first site)."),
    ] = None,
    file_format: Annotated[
        str | None,
        typer.Option(
            "--format",
            help="jsonl, nmap, masscan or csv (default: told from the file's first bytes).",
        ),
    ] = None,
    name: Annotated[str | None, typer.Option("--name", help="A name for the import task.")] = None,
    wait: Annotated[
        bool,
        typer.Option("--wait", help="Wait until it is processed and show what changed."),
    ] = False,
    *,
    api: Api,
) -> None:
    """Import a file into a site's inventory (an import task, processed like a scan)."""
    with file.open("rb") as probe:
        compressed = probe.read(2) == GZIP_MAGIC
    content_type = "application/gzip" if compressed else "application/octet-stream"
    params = {"name": name or f"Import of {file.name}"}
    if site is not None:
        params["site"] = site
    if file_format is not None:
        params["format"] = file_format
    progress = (
        None
        if api.as_json
        else Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            console=err,
            transient=True,
        )
    )
    with api.connect() as client:
        try:
            if progress is not None:
                progress.start()
            task = client.request(
                "POST",
                "/imports",
                params=params,
                content=_chunks(file, progress),
                headers={"Content-Type": content_type},
                timeout=UPLOAD_TIMEOUT,
            )
        except CliError as error:
            line = error.details.get("line")
            bad_file = error.code in ("invalid_task_data", "invalid_import_file")
            if bad_file and isinstance(line, int):
                error.hint = f"fix line {line} of {file} (or the tool that wrote it) and retry"
            raise
        finally:
            if progress is not None:
                progress.stop()
    if api.as_json and not wait:
        print_json(task)
        return
    if not api.as_json:
        line = Text(f"Imported {file.name} as task {task['id']} (")
        line.append_text(status_text(task["status"]))
        line.append(f"): {task.get('stats', {}).get('hosts', 0)} host records")
        out.print(line, soft_wrap=True)
    if wait:
        _wait(task["id"], api)


def _wait(task_id: int, api: Api) -> None:
    """Follow the import until it ends, with a processing bar; then what it changed."""
    progress = Progress(
        TextColumn("Processing"), BarColumn(), TaskProgressColumn(), console=err, transient=True
    )
    bar = progress.add_task("process", total=1.0)
    with api.connect() as client, progress:
        task = client.get(f"/tasks/{task_id}")
        while task["status"] not in TERMINAL:
            progress.update(bar, completed=task["progress"]["process"])
            time.sleep(POLL_SECONDS)
            task = client.get(f"/tasks/{task_id}")
    if api.as_json:
        print_json(task)
    else:
        line = Text(f"Task {task_id} ended ")
        line.append_text(status_text(task["status"]))
        if task.get("error"):
            line.append(f": {task['error']}", style="red")
        out.print(line, soft_wrap=True)
        summary = task.get("change_summary")
        if summary:
            keys = ("new", "changed", "offline", "online", "unchanged", "ignored", "total")
            out.print("Changes: " + ", ".join(f"{summary.get(k, 0)} {k}" for k in keys))
    if task["status"] != "processed":
        raise typer.Exit(1)
