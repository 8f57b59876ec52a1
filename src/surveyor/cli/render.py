"""How the CLI shows things: Rich tables and panels, statuses with their labels, times, errors.

Results go to stdout, errors and progress to stderr, so `--json` output can be piped.
Text from users and the network goes through `shown`: characters that would hide or
disguise it (a right-to-left override, zero-width characters, terminal controls; see
`core.visible_text`) appear as escapes (`\u202e`) in a style of their own, and Rich markup
in it is never interpreted. `--json` output writes them as JSON escapes (the same value).
"""

from __future__ import annotations

import contextlib
import functools
import json
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, ParamSpec, TypeVar, cast

import typer

from surveyor.cli.client import CliError
from surveyor.core import visible_text
from surveyor.core.clock import SYSTEM_CLOCK
from surveyor.core.tasks import (
    ALL_VIEW,
    TAB_SPECS,
    WAIT_REASON_TEXT,
    Tab,
    TaskStatus,
    WaitReason,
)

if TYPE_CHECKING:
    from rich.console import Console
    from rich.panel import Panel
    from rich.table import Table
    from rich.text import Text


class _Console:
    """A Rich console made when first used, so that a command that prints only JSON (or
    nothing) does without Rich."""

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._console: Console | None = None

    def _made(self) -> Console:
        if self._console is None:
            from rich.console import Console

            self._console = Console(**self._options)
        return self._console

    def __getattr__(self, name: str) -> Any:
        return getattr(self._made(), name)

    # What Rich does with a console (`with console:` in a Live display) besides attributes.
    def __enter__(self) -> Console:
        return self._made().__enter__()

    def __exit__(self, *exc: object) -> None:
        self._made().__exit__(*exc)

    def renew(self) -> None:
        """Make the console anew at its next use, from the environment as it is then."""
        self._console = None


out = cast("Console", _Console())
err = cast("Console", _Console(stderr=True))


def renew_consoles() -> None:
    """`out` and `err` made anew at their next use: for running commands one after another in
    one process (the tests), each with its own environment (COLUMNS, NO_COLOR, …)."""
    for console in (out, err):
        cast(_Console, console).renew()


STATUS_STYLES: dict[TaskStatus, str] = {
    TaskStatus.NEW: "cyan",
    TaskStatus.ACTIVE: "bold blue",
    TaskStatus.SCANNED: "blue",
    TaskStatus.CONNECTING: "bold blue",
    TaskStatus.CONNECTED: "blue",
    TaskStatus.PROCESSING_QUEUED: "magenta",
    TaskStatus.PROCESSING: "bold magenta",
    TaskStatus.PROCESSED: "green",
    TaskStatus.STOPPING: "yellow",
    TaskStatus.STOPPED: "yellow",
    TaskStatus.CANCELED: "red",
    TaskStatus.PAUSED: "dim",
}
JsonOption = Annotated[bool, typer.Option("--json", help="Print the API's JSON instead.")]
ALL_LABEL = "All"
MISSING = "—"


#: How a hidden character's escape looks in a terminal, unlike anything typed.
HIDDEN_STYLE = "reverse red"


def print_json(data: Any) -> None:
    """Machine-readable output exactly as the API gave it (hidden characters as escapes)."""
    dumped = json.dumps(data, indent=2, ensure_ascii=False)
    sys.stdout.write(visible_text.json_escape_hidden(dumped) + "\n")
    sys.stdout.flush()


def print_answer(item: Any, as_json: bool, text: str) -> None:
    """What a command that changed something says: the API's JSON with `--json`, else one
    line (`text`, shown safely)."""
    if as_json:
        print_json(item)
    else:
        out.print(shown(text))


def folded_table(*titles: str, right: Iterable[str] = ("ID",)) -> Table:
    """A list's table: a column a title, folded when too long, those in `right` justified
    right."""
    from rich.table import Table

    table = Table(show_edge=False, header_style="bold")
    right = set(right)
    for title in titles:
        table.add_column(title, justify="right" if title in right else "left", overflow="fold")
    return table


def shown(value: object, style: str = "") -> Text:
    """Text from a user or the network, safe for the terminal: hidden characters appear as
    their escapes in `HIDDEN_STYLE`, and markup in it is never interpreted."""
    from rich.text import Text

    text = Text(style=style)
    for part, hidden in visible_text.segments("" if value is None else str(value)):
        if hidden:
            text.append(visible_text.escape_of(part), style=HIDDEN_STYLE)
        else:
            text.append(part)
    return text


def plain(value: object) -> str:
    """Text from a user or the network inside a plain string (a title, a sentence): hidden
    characters as escapes, unstyled."""
    return visible_text.reveal("" if value is None else str(value))


def status_text(status: str) -> Text:
    """A status as its label, coloured by what it means."""
    from rich.text import Text

    try:
        known = TaskStatus(status)
    except ValueError:
        return Text(status)
    return Text(known.label, style=STATUS_STYLES[known])


def wait_reason_text(reason: str | None) -> str | None:
    if not reason:
        return None
    try:
        return WAIT_REASON_TEXT[WaitReason(reason)]
    except ValueError:
        return reason.replace("_", " ")


def parse_time(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


_UNITS = (("year", 365 * 86400), ("day", 86400), ("hour", 3600), ("minute", 60))


def relative_time(when: datetime, now: datetime) -> str:
    """`5 minutes ago` or `in 2 hours`, rounded to the largest unit that fits."""
    seconds = (when - now).total_seconds()
    magnitude = abs(seconds)
    if magnitude < 10:
        return "just now"
    count, unit = round(magnitude), "second"
    for name, size in _UNITS:
        if magnitude >= size:
            count, unit = round(magnitude / size), name
            break
    phrase = f"{count} {unit}{'' if count == 1 else 's'}"
    return f"in {phrase}" if seconds > 0 else f"{phrase} ago"


def local_time(when: datetime) -> str:
    return when.astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")


def format_time(value: str | None, now: datetime | None = None) -> str:
    """An API time as local relative and absolute time: `5 minutes ago (2024-05-01 14:03 CEST)`."""
    if not value:
        return MISSING
    when = parse_time(value)
    return f"{relative_time(when, now or SYSTEM_CLOCK.now())} ({local_time(when)})"


def percent(fraction: float | None) -> str:
    return f"{round((fraction or 0.0) * 100)}%"


def overall_progress(task: Mapping[str, Any]) -> float:
    """Collection and processing weigh equally, as the two rings of the web UI do."""
    progress = task.get("progress") or {}
    return (float(progress.get("collect") or 0) + float(progress.get("process") or 0)) / 2


def tab_label(view: str) -> str:
    return ALL_LABEL if view == ALL_VIEW else TAB_SPECS[Tab(view)].label


def counts_line(counts: Mapping[str, int], current: str | None = None) -> Text:
    """`Active 0 · Processing 1 · …`, the current tab emphasized."""
    from rich.text import Text

    line = Text()
    for view in [*(tab.value for tab in Tab), ALL_VIEW]:
        if view not in counts:
            continue
        if line:
            line.append("  ·  ", style="dim")
        style = "bold underline" if view == current else ""
        line.append(f"{tab_label(view)} {counts[view]}", style=style)
    return line


def site_name(site_id: int | None, sites: Mapping[int, str]) -> str:
    if site_id is None:
        return MISSING
    return sites.get(site_id, f"site {site_id}")


def task_table(
    items: Iterable[Mapping[str, Any]],
    sites: Mapping[int, str],
    *,
    title: str | None = None,
    next_run: bool = False,
    now: datetime | None = None,
) -> Table:
    """One row per task: what it is, where it stands, who made it when."""
    from rich.table import Table
    from rich.text import Text

    now = now or SYSTEM_CLOCK.now()
    table = Table(title=title, title_justify="left", show_edge=False, header_style="bold")
    table.add_column("ID", justify="right", no_wrap=True)
    table.add_column("Name", overflow="fold")
    table.add_column("Type", no_wrap=True)
    table.add_column("Status", no_wrap=True)
    table.add_column("Site", overflow="fold")
    table.add_column("Progress", justify="right", no_wrap=True)
    if next_run:
        table.add_column("Next run")
    table.add_column("Created")
    table.add_column("Created by", overflow="fold")
    for task in items:
        row: list[Text | str] = [
            Text(str(task["id"])),
            shown(task["name"]),
            Text(task["type"]),
            status_text(task["status"]),
            shown(site_name(task.get("site_id"), sites)),
            Text(percent(overall_progress(task))),
        ]
        if next_run:
            row.append(Text(format_time(task.get("recur_next"), now)))
        row.append(Text(format_time(task.get("created_at"), now)))
        row.append(shown(task.get("created_by") or MISSING))
        table.add_row(*row)
    return table


def _recurrence(task: Mapping[str, Any]) -> str | None:
    if not task.get("recur"):
        return None
    parts = [task.get("recur_frequency") or "custom"]
    if task.get("recur_rule"):
        parts.append(task["recur_rule"])
    parts.append(f"in {task.get('timezone') or 'UTC'}")
    return " ".join(parts)


def _params(params: Mapping[str, Any]) -> str | None:
    lines = []
    for key, value in params.items():
        if value in (None, "", [], {}):
            continue
        if isinstance(value, list):
            value = ", ".join(map(str, value))
        elif isinstance(value, bool):
            value = "yes" if value else "no"
        lines.append(f"{key}: {value}")
    return "\n".join(lines) or None


def _change_summary(summary: Mapping[str, Any] | None) -> str | None:
    if not summary:
        return None
    keys = ("new", "changed", "offline", "online", "unchanged", "ignored", "total")
    return ", ".join(f"{summary.get(key, 0)} {key}" for key in keys)


def _outcome(task: Mapping[str, Any]) -> str | None:
    """What processing made of the task, for kinds that say it in words."""
    from surveyor.core.kinds import find_kind

    kind = find_kind(str(task["type"]))
    if kind is None or kind.outcome is None:
        return None
    return kind.outcome(task) or None


def _size(value: int | None) -> str | None:
    if not value:
        return None
    amount = float(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if amount < 1024 or unit == "GiB":
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    return None


def named(name: str | None, object_id: int | None) -> str | None:
    """An object by its name with its id, or by its id alone when its name is unknown."""
    if object_id is None:
        return None
    return f"{name} (id {object_id})" if name else str(object_id)


def task_panel(
    task: Mapping[str, Any],
    sites: Mapping[int, str],
    now: datetime | None = None,
    *,
    explorer: str | None = None,
    zone: str | None = None,
) -> Panel:
    """Every field of a task that has a value, in words; `explorer` and `zone` are the names
    of its explorer and hosted zone."""
    from rich.panel import Panel
    from rich.table import Table
    from rich.text import Text

    from surveyor.core.kinds import label_of

    now = now or SYSTEM_CLOCK.now()
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")

    def when(key: str) -> str | None:
        return format_time(task[key], now) if task.get(key) else None

    progress = task.get("progress") or {}
    created = format_time(task.get("created_at"), now)
    collection = label_of(str(task["type"]))
    rows: list[tuple[str, Text | str | None]] = [
        ("Status", status_text(task["status"])),
        ("Waiting", wait_reason_text(task.get("wait_reason"))),
        ("Error", shown(task["error"], style="red") if task.get("error") else None),
        ("Type", task["type"]),
        ("Description", shown(task["description"]) if task.get("description") else None),
        (
            "Site",
            shown(f"{site_name(task.get('site_id'), sites)} (id {task.get('site_id')})")
            if task.get("site_id")
            else None,
        ),
        ("Explorer", named(explorer, task.get("explorer_id"))),
        ("Hosted zone", named(zone, task.get("hosted_zone_id"))),
        ("Created", shown(f"{created} by {task.get('created_by') or MISSING}")),
        ("Updated", when("updated_at")),
        ("Start time", when("start_time")),
        ("Recurrence", _recurrence(task)),
        ("Next run", when("recur_next")),
        ("Last run", when("recur_last")),
        (
            "Last run task",
            str(task["recur_last_task_id"]) if task.get("recur_last_task_id") else None,
        ),
        ("Run of", f"recurring task {task['parent_id']}" if task.get("parent_id") else None),
        ("Grace period", f"{task['grace_period']} s" if task.get("grace_period") else None),
        (
            "Progress",
            f"collect {percent(progress.get('collect'))}, "
            f"process {percent(progress.get('process'))}",
        ),
        (f"{collection} started", when("data_acquisition_started_at")),
        (f"{collection} ended", when("data_acquisition_ended_at")),
        ("Processing started", when("data_processing_started_at")),
        ("Processing ended", when("data_processing_ended_at")),
        ("Finished", when("finished_at")),
        ("Result", _outcome(task)),
        ("Changes", _change_summary(task.get("change_summary"))),
        ("Data", _size(task.get("size_data"))),
        ("Results", _size(task.get("size_results"))),
        ("Hidden", "yes" if task.get("hidden") else None),
        ("Params", _params(task.get("params") or {})),
        ("Stats", _params(task.get("stats") or {})),
    ]
    for label, value in rows:
        if value is not None:
            grid.add_row(label, value if isinstance(value, Text) else shown(value))
    title = Text(f"Task {task['id']}: ")
    title.append_text(shown(task["name"], style="bold"))
    return Panel(grid, title=title, title_align="left", border_style="blue", expand=False)


def created_summary(task: Mapping[str, Any], sites: Mapping[int, str]) -> Text:
    """What `task create` says about the task it made."""
    from rich.text import Text

    line = Text(f"Created task {task['id']} ")
    line.append_text(shown(task["name"], style="bold"))
    line.append(" (")
    line.append_text(status_text(task["status"]))
    line.append(") in site ")
    line.append_text(shown(site_name(task.get("site_id"), sites)))
    if task.get("recur") and task.get("recur_next"):
        line.append(f"; next run {format_time(task['recur_next'])}")
    elif task.get("wait_reason") == WaitReason.NOT_DUE and task.get("start_time"):
        line.append(f"; starts {format_time(task['start_time'])}")
    return line


def events_table(items: Iterable[Mapping[str, Any]], now: datetime | None = None) -> Table:
    from rich.table import Table
    from rich.text import Text

    now = now or SYSTEM_CLOCK.now()
    table = Table(show_edge=False, header_style="bold")
    table.add_column("When")
    table.add_column("Event", no_wrap=True)
    table.add_column("Status")
    table.add_column("By", overflow="fold")
    table.add_column("Message", overflow="fold")
    for event in items:
        change = Text()
        if event.get("from_status") or event.get("to_status"):
            change.append_text(
                status_text(event["from_status"]) if event.get("from_status") else Text(MISSING)
            )
            change.append(" → ")
            change.append_text(
                status_text(event["to_status"]) if event.get("to_status") else Text(MISSING)
            )
        table.add_row(
            Text(format_time(event["at"], now)),
            Text(event["kind"]),
            change,
            shown(event.get("actor") or MISSING),
            shown(event.get("message") or ""),
        )
    return table


def tokens_table(items: Iterable[Mapping[str, Any]], now: datetime | None = None) -> Table:
    from rich.table import Table
    from rich.text import Text

    now = now or SYSTEM_CLOCK.now()
    table = Table(show_edge=False, header_style="bold")
    table.add_column("ID", justify="right", no_wrap=True)
    table.add_column("Name", overflow="fold")
    table.add_column("Created")
    table.add_column("Last used")
    table.add_column("Expires")
    for token in items:
        table.add_row(
            Text(str(token["id"])),
            shown(token["name"]),
            Text(format_time(token.get("created_at"), now)),
            Text(
                format_time(token.get("last_used_at"), now)
                if token.get("last_used_at")
                else "never"
            ),
            Text(format_time(token.get("expires_at"), now) if token.get("expires_at") else "never"),
        )
    return table


def new_token_panel(created: Mapping[str, Any]) -> Panel:
    from rich.console import Group
    from rich.panel import Panel
    from rich.text import Text

    body = Group(
        Text(created["token"], style="bold"),
        Text(""),
        Text(
            "Store it now: it will not be shown again. Use it with --token or SURVEYOR_TOKEN.",
            style="yellow",
        ),
    )
    title = Text(f"API token {created['id']}: ")
    title.append_text(shown(created["name"]))
    return Panel(body, title=title, title_align="left", border_style="green", expand=False)


def search_pointer(query: str, position: int) -> list[str]:
    """The query with a caret under the character the API complained about."""
    column = max(0, min(position, len(query)))
    return [f"  {query}", "  " + " " * column + "^"]


def point_at_search(error: CliError, search: str | None) -> CliError:
    """The error, with a caret under the search's fault when the API refused the search."""
    position = error.details.get("position")
    if search and error.code == "invalid_search" and isinstance(position, int):
        error.notes.extend(search_pointer(search, position))
    return error


@contextlib.contextmanager
def pointing_at_search(search: str | None) -> Iterator[None]:
    """Requests inside narrowed by `search`: a refusal of the search gets a caret under its
    fault (see `point_at_search`)."""
    try:
        yield
    except CliError as error:
        raise point_at_search(error, search) from None


def print_page_hint(count: int, which: str = "first") -> None:
    """Say that only one page (the `which` `count` items) was shown."""
    out.print(dim(f"Showing the {which} {count}; --all-pages shows the rest."))


def dim(text: str) -> Text:
    """A remark beside the results: a plain sentence, dimmed."""
    from rich.text import Text

    return Text(text, style="dim")


def report_error(error: CliError) -> None:
    err.print(shown(f"Error: {error.message}", style="bold red"), soft_wrap=True)
    for note in error.notes:
        err.print(shown(note, style="red"), soft_wrap=True, highlight=False)
    if error.hint:
        err.print(shown(f"Hint: {error.hint}", style="yellow"), soft_wrap=True)


P = ParamSpec("P")
R = TypeVar("R")


def reports_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Show a `CliError` as a message and exit with its code, never as a traceback."""

    @functools.wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except CliError as error:
            report_error(error)
            raise typer.Exit(error.exit_code) from None

    return run
