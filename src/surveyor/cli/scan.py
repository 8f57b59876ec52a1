"""`surveyor scan TARGETS -o FILE`: a one-shot local scan, no console (SPEC §7, §12).

It scans exactly what it is given, with the engine the explorers run, and writes the same task
data (gzip JSONL), which `surveyor import` accepts. Ctrl-C stops the scan and still writes what
was found, with a summary that says it stopped; a second Ctrl-C aborts.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from surveyor.cli.client import CliError
from surveyor.cli.render import err, out, print_json, reports_errors, shown
from surveyor.core.scan_params import (
    DEFAULT_SCOPE_CAP,
    DEFAULT_TCP_PORTS,
    Probe,
    ScanParams,
    ScanParamsError,
    validate_scan_params,
)

EXIT_INTERRUPTED = 130
#: Hosts listed after the scan; the task data file holds them all.
SHOWN_HOSTS = 100
NO_PROBES = "none"


def scan_params(
    targets: list[str],
    *,
    ports: str,
    excludes: list[str],
    rate: str | None,
    max_host_rate: str | None,
    max_sockets: str | None,
    probes: str,
    ping: bool,
    scope_cap: int,
) -> ScanParams:
    """The command line as scan params, validated as a task's would be."""
    given: dict[str, object] = {
        "targets": " ".join(targets),
        "excludes": " ".join(excludes),
        "tcp_ports": ports,
        "rate": rate,
        "max_host_rate": max_host_rate,
        "max_sockets": max_sockets,
        "probes": "" if probes.strip().lower() == NO_PROBES else probes,
        "host_ping": ping,
    }
    try:
        return validate_scan_params(
            given, default_targets="", default_excludes="", scope_cap=scope_cap
        )
    except ScanParamsError as error:
        option = "TARGETS" if error.field == "targets" else _OPTION_OF.get(error.field, "")
        raise CliError(f"{option}: {error.message}" if option else error.message) from None


_OPTION_OF = {
    "excludes": "--exclude",
    "tcp_ports": "--ports",
    "rate": "--rate",
    "max_host_rate": "--max-host-rate",
    "max_sockets": "--max-sockets",
    "probes": "--probes",
}


@reports_errors
def scan(
    targets: Annotated[
        list[str],
        typer.Argument(
            help="What to scan: addresses, networks (CIDR), ranges (127.0.0.1-20) or hostnames.",
            show_default=False,
        ),
    ],
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="Write the task data here (gzip JSONL).", dir_okay=False
        ),
    ] = None,
    ports: Annotated[
        str,
        typer.Option(
            "--ports", "-p", help="TCP ports: lists, ranges and presets (top100, default, all)."
        ),
    ] = DEFAULT_TCP_PORTS,
    exclude: Annotated[
        list[str] | None,
        typer.Option("--exclude", "-x", help="Addresses, networks or names never to touch."),
    ] = None,
    rate: Annotated[
        str | None,
        typer.Option("--rate", metavar="N", help="Probes per second, all hosts together."),
    ] = None,
    max_host_rate: Annotated[
        str | None,
        typer.Option("--max-host-rate", metavar="N", help="Probes per second to any one host."),
    ] = None,
    max_sockets: Annotated[
        str | None,
        typer.Option("--max-sockets", metavar="N", help="Connections in flight at most."),
    ] = None,
    probes: Annotated[
        str,
        typer.Option("--probes", help="Service probes on open ports, or 'none'."),
    ] = ",".join(Probe),
    ping: Annotated[
        bool,
        typer.Option(
            "--ping/--no-ping",
            help="Find live hosts first (TCP, and ICMP when privileged); --no-ping scans "
            "every address's ports.",
        ),
    ] = True,
    scope_cap: Annotated[
        int, typer.Option("--scope-cap", min=1, help="Refuse scopes larger than this.")
    ] = DEFAULT_SCOPE_CAP,
    dns_servers: Annotated[
        str | None,
        typer.Option(
            "--dns-servers",
            metavar="SERVERS",
            help="Name servers for reverse DNS, comma-separated (ADDRESS or ADDRESS:PORT); "
            "default: the system's.",
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the summary record as JSON on stdout.")
    ] = False,
) -> None:
    """Scan targets from this machine and write task data, without a console."""
    params = scan_params(
        targets,
        ports=ports,
        excludes=exclude or [],
        rate=rate,
        max_host_rate=max_host_rate,
        max_sockets=max_sockets,
        probes=probes,
        ping=ping,
        scope_cap=scope_cap,
    )
    servers = _dns_servers(dns_servers)
    if output is not None:
        _check_writable(output)
    from surveyor.scan import ScanError, write_task_data

    results = _Results()
    stop = threading.Event()
    try:
        with _progress_bar(params, quiet=as_json) as on_progress, _stop_on_interrupt(stop):
            records = results.watch(_scan(params, on_progress, stop, servers))
            if output is None:
                for _ in records:
                    pass
            else:
                write_task_data(records, output)
    except (ScanError, OSError) as error:
        raise CliError(f"the scan failed: {error}") from None
    if as_json:
        print_json(results.summary)
    else:
        results.show(output)
    if results.summary.get("stopped"):
        raise typer.Exit(EXIT_INTERRUPTED)


def _check_writable(output: Path) -> None:
    """Refuse an output the scan could not write, before scanning rather than after."""
    folder = output.parent
    if not folder.is_dir() or not os.access(folder, os.W_OK):
        raise CliError(f"--output: cannot write in {folder}")


def _dns_servers(given: str | None) -> tuple[tuple[str, int], ...]:
    """--dns-servers as (address, port) pairs; a clear error for a malformed one."""
    if given is None:
        return ()
    from surveyor.scan.probes.reverse_dns import parse_dns_server

    entries = [entry for entry in given.replace(" ", ",").split(",") if entry.strip()]
    if not entries:
        raise CliError("--dns-servers: give at least one name server address")
    try:
        return tuple(parse_dns_server(entry) for entry in entries)
    except ValueError as error:
        raise CliError(f"--dns-servers: {error}") from None


def _scan(
    params: ScanParams,
    on_progress: Callable[[Any], None],
    stop: threading.Event,
    dns_servers: tuple[tuple[str, int], ...] = (),
) -> Iterator[dict[str, Any]]:
    from surveyor.scan import run_scan
    from surveyor.scan.settings import ScanSettings

    settings = ScanSettings(dns_servers=dns_servers)
    return run_scan(params, on_progress=on_progress, stop=stop, settings=settings)


@contextmanager
def _stop_on_interrupt(stop: threading.Event) -> Iterator[None]:
    """The first Ctrl-C asks the scan to stop (its data is kept); the second aborts."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupted(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        err.print("Stopping… (Ctrl-C again to abort without writing)", style="yellow")

    previous = signal.signal(signal.SIGINT, interrupted)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@contextmanager
def _progress_bar(params: ScanParams, *, quiet: bool) -> Iterator[Callable[[Any], None]]:
    """A progress bar of hosts done out of hosts in scope, on stderr."""
    if quiet:
        yield lambda progress: None
        return
    bar = Progress(
        TextColumn("[bold]Scanning"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("hosts"),
        TaskProgressColumn(),
        TextColumn("{task.fields[up]} up, {task.fields[open]} open ports"),
        TimeElapsedColumn(),
        console=err,
    )
    task = bar.add_task("scan", total=params.scope_size, up=0, open=0)

    def on_progress(progress: Any) -> None:
        bar.update(
            task,
            completed=progress.hosts_done,
            total=progress.hosts_total,
            up=progress.hosts_up,
            open=progress.open_ports,
        )

    with bar:
        yield on_progress


class _Results:
    """What the scan found, kept for the closing table while the records go to the file."""

    def __init__(self) -> None:
        self.with_services: list[dict[str, Any]] = []
        self.summary: dict[str, Any] = {}

    def watch(self, records: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for record in records:
            if record["type"] == "host" and record["services"]:
                if len(self.with_services) < SHOWN_HOSTS:
                    self.with_services.append(record)
            elif record["type"] == "summary":
                self.summary = record
            yield record

    def show(self, output: Path | None) -> None:
        summary = self.summary
        if self.with_services:
            out.print(_hosts_table(self.with_services))
        more = summary.get("hosts_up", 0) - len(self.with_services)
        line = Text(
            f"{'Stopped after' if summary.get('stopped') else 'Scanned'} "
            f"{summary.get('hosts_total', 0):,} hosts in {summary.get('duration', 0):.1f} s: "
            f"{summary.get('hosts_up', 0):,} up, {summary.get('open_ports', 0):,} open ports, "
            f"{summary.get('probes_sent', 0):,} probes."
        )
        if len(self.with_services) == SHOWN_HOSTS and more > 0:
            line.append(f" The first {SHOWN_HOSTS} hosts with open ports are listed.")
        if output is not None:
            line.append(f" Task data in {output}.")
        err.print(line)


def _hosts_table(hosts: list[dict[str, Any]]) -> Table:
    table = Table(show_edge=False, header_style="bold")
    table.add_column("Host", overflow="fold")
    table.add_column("Port", justify="right")
    table.add_column("Service")
    table.add_column("What it says", overflow="fold")
    for host in hosts:
        label = host["addresses"][0]
        if host["hostnames"]:
            label += f" ({host['hostnames'][0]})"
        for index, service in enumerate(host["services"]):
            table.add_row(
                shown(label if index == 0 else ""),
                str(service["port"]),
                shown(service.get("service") or ""),
                shown(_what_it_says(service)),
            )
    return table


def _what_it_says(service: dict[str, Any]) -> str:
    parts: list[str] = []
    http, tls = service.get("http"), service.get("tls")
    if http:
        parts.append(f"HTTP {http['status']}")
        if http.get("title"):
            parts.append(f"“{http['title']}”")
    if service.get("product"):
        parts.append(str(service["product"]))
    elif service.get("banner") and not http:
        parts.append(str(service["banner"]).splitlines()[0])
    if tls and tls.get("subject"):
        parts.append(f"cert {tls['subject']}")
    return " · ".join(parts)
