"""`surveyor task …`: create, list, inspect, watch and control tasks through the API."""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from surveyor.cli.client import ApiClient, CliError, given
from surveyor.cli.command import Api, api_command, command_group, option_group
from surveyor.cli.exports import Format, OutputFile, download
from surveyor.cli.listing import AllPages, add_delete, print_item
from surveyor.cli.render import (
    counts_line,
    created_summary,
    dim,
    err,
    events_table,
    out,
    parse_time,
    pointing_at_search,
    print_json,
    print_page_hint,
    relative_time,
    shown,
    status_text,
    tab_label,
    task_panel,
    task_table,
    wait_reason_text,
)
from surveyor.core.clock import SYSTEM_CLOCK
from surveyor.core.tasks import ALL_VIEW, TERMINAL_STATUSES, Tab, TaskStatus

if TYPE_CHECKING:
    from rich.console import Group, RenderableType
    from rich.progress import Progress
    from rich.text import Text

# `rich.live`, `rich.progress` and `surveyor.core.recurrence` (with croniter and dateutil) are
# imported by the commands that use them, so that the others start sooner.

task_app = command_group("Create, list, watch and control tasks.")

VIEWS = [*(tab.value for tab in Tab), ALL_VIEW]
EXIT_INTERRUPTED = 130

TaskId = Annotated[int, typer.Argument(min=1, help="The task's id.")]
Limit = Annotated[int, typer.Option("--limit", min=1, max=1000, help="Tasks per page.")]


def _check_view(value: str) -> str:
    if value not in VIEWS:
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(VIEWS)}")
    return value


#: `--every` takes the simple frequencies of `core.recurrence.Frequency`; RRULE and cron have
#: their own options (tests/unit/test_cli_lazy.py checks the two agree).
EVERY = ["once", "hourly", "daily", "weekly", "monthly"]


def _check_every(value: str | None) -> str | None:
    if value is not None and value not in EVERY:
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(EVERY)}")
    return value


def parse_when(text: str) -> datetime:
    """An RFC 3339 time, or a local `YYYY-MM-DD HH:MM`, as an aware UTC time."""
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise typer.BadParameter(
            f"{text!r} is not a time; use RFC 3339 (2030-01-31T22:00:00Z) "
            "or local 'YYYY-MM-DD HH:MM'"
        ) from exc
    if parsed.tzinfo is None:
        parsed = parsed.astimezone()
    return parsed.astimezone(UTC)


#: The ways a WHEN option takes a time (`parse_when`), as its help says them.
WHEN_FORMATS = "RFC 3339, or local 'YYYY-MM-DD HH:MM'"


def when_option(flag: str, help: str, *, panel: str | None = None) -> Any:
    """An option that takes a time read by `parse_when`, shown as WHEN (its `help` says
    `WHEN_FORMATS`), in the help panel `panel`."""
    return typer.Option(flag, parser=parse_when, metavar="WHEN", help=help, rich_help_panel=panel)


def local_timezone_name() -> str | None:
    """This machine's IANA time zone name, when it can be known."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    candidates = [os.environ.get("TZ", "").lstrip(":")]
    with contextlib.suppress(OSError):
        link = os.readlink("/etc/localtime")
        candidates.append(link.split("zoneinfo/", 1)[1] if "zoneinfo/" in link else "")
    with contextlib.suppress(OSError):
        candidates.append(Path("/etc/timezone").read_text().strip())
    for name in candidates:
        if not name:
            continue
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            continue
        return name
    return None


def _flags_given(*options: tuple[str, object]) -> list[str]:
    """The flags, of (flag, value) pairs, whose option was given (a value that is not empty)."""
    return [flag for flag, value in options if value]


def recurrence_body(schedule: Schedule, start: datetime | None) -> dict[str, Any] | None:
    """The API's `recur` object from the recurring options, or None for a one-off task."""
    from surveyor.core.recurrence import Frequency

    kinds = _flags_given(
        ("--every", schedule.every), ("--rrule", schedule.rrule), ("--cron", schedule.cron)
    )
    if len(kinds) > 1:
        raise typer.BadParameter(
            f"{' and '.join(kinds)} both say when to run; choose one", param_hint=kinds[0]
        )
    details = _flags_given(
        ("--time", schedule.at_time),
        ("--weekdays", schedule.weekdays),
        ("--day-of-month", schedule.day_of_month),
        ("--interval", schedule.interval),
        ("--tz", schedule.tz),
    )
    if not kinds:
        if details:
            raise typer.BadParameter(
                "only for a recurring task; add --every, --rrule or --cron",
                param_hint=", ".join(details),
            )
        return None
    weekdays = schedule.weekdays
    body: dict[str, Any] = {
        "frequency": schedule.every
        or (Frequency.RRULE if schedule.rrule else Frequency.CRON).value,
        "timezone": schedule.tz or local_timezone_name() or "UTC",
    }
    optional = {
        "rule": schedule.rrule,
        "cron": schedule.cron,
        "time": schedule.at_time,
        "day_of_month": schedule.day_of_month,
        "interval": schedule.interval,
        "start": start.isoformat() if start else None,
        "weekdays": [day for day in re.split(r"[\s,]+", weekdays) if day] if weekdays else None,
    }
    body.update({key: value for key, value in optional.items() if value is not None})
    return body


def site_names(client: ApiClient) -> dict[int, str]:
    """Every site's name by id, to show names instead of numbers."""
    names: dict[int, str] = {}
    after: int | None = None
    while True:
        page = client.get("/sites", limit=1000, after=after)
        names.update({site["id"]: site["name"] for site in page})
        if len(page) < 1000:
            return names
        after = page[-1]["id"]


def name_of(client: ApiClient, path: str, object_id: int | None) -> str | None:
    """The name of the object at `path/object_id` (an explorer, a hosted zone), or None when
    there is none or it no longer exists."""
    if object_id is None:
        return None
    try:
        found = client.get(f"{path}/{object_id}")
    except CliError as error:
        if error.status == 404:
            return None
        raise
    return str(found["name"])


def resolve_site(client: ApiClient, site: str) -> int:
    """A site given by id or by (case-insensitive) name."""
    if site.isdigit():
        return int(site)
    names = site_names(client)
    matches = [site_id for site_id, name in names.items() if name.lower() == site.lower()]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise CliError(
            f"several sites are named {site!r}; use the id ({', '.join(map(str, matches))})"
        )
    known = ", ".join(f"{name} ({site_id})" for site_id, name in sorted(names.items()))
    raise CliError(f"there is no site named {site!r}", hint=f"sites: {known or 'none'}")


Every = Annotated[
    str | None,
    typer.Option(
        "--every",
        callback=_check_every,
        metavar="|".join(EVERY),
        help="Recur at this frequency.",
        rich_help_panel="Recurrence",
    ),
]
AtTime = Annotated[
    str | None,
    typer.Option(
        "--time", metavar="HH:MM", help="Time of day of each run.", rich_help_panel="Recurrence"
    ),
]
Weekdays = Annotated[
    str | None,
    typer.Option(
        "--weekdays", help="Days of a weekly run, e.g. mo,we,fr.", rich_help_panel="Recurrence"
    ),
]
DayOfMonth = Annotated[
    int | None,
    typer.Option(
        "--day-of-month", min=1, max=31, help="Day of a monthly run.", rich_help_panel="Recurrence"
    ),
]
Interval = Annotated[
    int | None,
    typer.Option(
        "--interval", min=1, help="Every N hours/days/weeks/months.", rich_help_panel="Recurrence"
    ),
]
Rrule = Annotated[
    str | None,
    typer.Option("--rrule", help="An RFC 5545 RRULE instead.", rich_help_panel="Recurrence"),
]
Cron = Annotated[
    str | None,
    typer.Option("--cron", help="A 5-field cron expression instead.", rich_help_panel="Recurrence"),
]
Tz = Annotated[
    str | None,
    typer.Option(
        "--tz",
        help="IANA time zone of the schedule (default: this machine's).",
        rich_help_panel="Recurrence",
    ),
]


@dataclass(frozen=True)
class Schedule:
    """The recurrence options `task create` and `task preview` take (each field's annotation
    is its option, offered by `option_group`), as given: None where not given."""

    every: Every = None
    at_time: AtTime = None
    weekdays: Weekdays = None
    day_of_month: DayOfMonth = None
    interval: Interval = None
    rrule: Rrule = None
    cron: Cron = None
    tz: Tz = None


#: A command's parameter `schedule: Schedule`, offered as the recurrence options.
schedule_options = option_group("schedule", Schedule)
#: The option of each part of a schedule, to name it when the console refuses that part.
SCHEDULE_FLAGS = {
    "frequency": "--every",
    "time": "--time",
    "weekdays": "--weekdays",
    "day_of_month": "--day-of-month",
    "interval": "--interval",
    "rule": "--rrule",
    "cron": "--cron",
    "timezone": "--tz",
    "start": "--at",
}


def _post_schedule(client: ApiClient, path: str, body: Mapping[str, Any]) -> Any:
    """POST a body with a schedule; when the console refuses part of the schedule, the error
    names the option at fault."""
    try:
        return client.post(path, body)
    except CliError as error:
        field = str(error.details.get("field") or "")
        flag = SCHEDULE_FLAGS.get(field.removeprefix("recur."))
        if flag and field.startswith("recur") and not error.message.startswith(flag):
            error.message = f"{flag}: {error.message}"
        raise error from None


#: How many upcoming runs `create`, `show` and `preview` list.
NEXT_RUNS = 5


def template_next_runs(task: Mapping[str, Any], count: int = NEXT_RUNS) -> list[datetime]:
    """A recurring template's next runs from its stored schedule, starting at its next run
    (none when paused, ended or removed)."""
    from surveyor.core.recurrence import Recurrence, RecurrenceError, next_occurrences

    recur_next = task.get("recur_next")
    if not task.get("recur") or not recur_next or task.get("removed_at"):
        return []
    try:
        schedule = Recurrence.from_stored(
            task["recur_frequency"], task["recur_rule"], task.get("timezone") or "UTC"
        )
    except (RecurrenceError, KeyError, TypeError):
        return []
    first = parse_time(recur_next)
    return [first, *next_occurrences(schedule, first, count - 1)]


def next_runs_text(moments: Sequence[datetime], zone: str, now: datetime | None = None) -> Text:
    """The runs to come, one a line, in the schedule's time zone and relative to now."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from rich.text import Text

    now = now or SYSTEM_CLOCK.now()
    try:
        where: tzinfo = ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        where, zone = UTC, "UTC"
    heading = "Next run" if len(moments) == 1 else f"Next {len(moments)} runs"
    text = Text(f"{heading} ({zone}):", style="bold")
    for moment in moments:
        local = moment.astimezone(where)
        text.append(f"\n  {local:%a %Y-%m-%d %H:%M %Z}", style="")
        text.append(f"  {relative_time(moment, now)}", style="dim")
    return text


@api_command(task_app, "create")
@schedule_options
def create(
    name: Annotated[str, typer.Argument(help="A name for the task.")],
    site: Annotated[
        str | None,
        typer.Option("--site", help="Site id or name (default: the organization's first site)."),
    ] = None,
    targets: Annotated[
        str | None,
        typer.Option(
            "--targets", help="Addresses, CIDRs, ranges or hostnames (default: the site's scope)."
        ),
    ] = None,
    excludes: Annotated[str | None, typer.Option("--excludes", help="What not to scan.")] = None,
    ports: Annotated[
        str | None,
        typer.Option("--ports", help="TCP ports, e.g. 22,80,8000-8100 or a preset such as top100."),
    ] = None,
    rate: Annotated[int | None, typer.Option("--rate", min=1, help="Probes per second.")] = None,
    explorer: Annotated[
        int | None, typer.Option("--explorer", min=1, help="Explorer id to run it.")
    ] = None,
    zone: Annotated[
        int | None, typer.Option("--zone", min=1, help="Hosted zone id to run it.")
    ] = None,
    at: Annotated[
        datetime | None,
        when_option(
            "--at", f"Start at this time ({WHEN_FORMATS}); for a recurring task, the first run."
        ),
    ] = None,
    description: Annotated[str, typer.Option("--description", help="What it is for.")] = "",
    *,
    schedule: Schedule,
    api: Api,
) -> None:
    """Create a scan that starts now, at --at, or recurs (--every, --rrule, --cron)."""
    recur = recurrence_body(schedule, at)
    params = given(targets=targets, excludes=excludes, tcp_ports=ports, rate=rate)
    body: dict[str, Any] = {"name": name, "description": description, "params": params}
    if recur is not None:
        body["recur"] = recur
    elif at is not None:
        body["start_time"] = at.isoformat()
    body.update(given(explorer_id=explorer, hosted_zone_id=zone))
    with api.connect() as client:
        if site is not None:
            body["site_id"] = resolve_site(client, site)
        task = _post_schedule(client, "/tasks", body)
        if api.as_json:
            print_json(task)
            return
        out.print(created_summary(task, site_names(client)), soft_wrap=True)
    upcoming = template_next_runs(task)
    if upcoming:
        out.print(next_runs_text(upcoming, task.get("timezone") or "UTC"))


@api_command(task_app, "preview")
@schedule_options
def preview(
    *,
    schedule: Schedule,
    at: Annotated[
        datetime | None, when_option("--at", f"The first run ({WHEN_FORMATS}).", panel="Recurrence")
    ] = None,
    api: Api,
) -> None:
    """Show the next five runs of a schedule, as `task create` would store it."""
    if not (schedule.every or schedule.rrule or schedule.cron):
        raise typer.BadParameter(
            "say when it runs: add --every, --rrule or --cron", param_hint="--every"
        )
    recur = recurrence_body(schedule, at)
    assert recur is not None
    with api.connect() as client:
        found = _post_schedule(client, "/tasks/preview", recur)
    if api.as_json:
        print_json(found)
        return
    from rich.text import Text

    moments = [parse_time(moment) for moment in found["occurrences"]]
    described = found["description"]
    out.print(Text(described[:1].upper() + described[1:]))
    if moments:
        out.print(next_runs_text(moments, recur["timezone"]))
    else:
        out.print(Text("It has no runs to come.", style="dim"))


@api_command(task_app, "list")
def list_tasks(
    tab: Annotated[
        str,
        typer.Option(
            "--tab",
            callback=_check_view,
            metavar="|".join(VIEWS),
            help="Which tab to show; 'all' is the whole history.",
        ),
    ] = ALL_VIEW,
    search: Annotated[
        str | None, typer.Option("--search", help="A search query, e.g. 'status:new name:nightly'.")
    ] = None,
    limit: Limit = 50,
    all_pages: AllPages = False,
    *,
    api: Api,
) -> None:
    """Show the tasks of a tab, with the count of every tab."""
    with api.connect() as client:
        with pointing_at_search(search):
            counts = None if api.as_json else client.get("/tasks/counts", search=search)["counts"]
            items, more = client.page(
                "/tasks", limit=limit, every_page=all_pages, tab=tab, search=search
            )
        if api.as_json:
            print_json(items)
            return
        sites = site_names(client)
    out.print(counts_line(counts or {}, tab))
    if not items:
        where = "" if tab == ALL_VIEW else f" in the {tab_label(tab).lower()} tab"
        found = f"No task{where} matches the search." if search else f"No tasks{where}."
        out.print(dim(found))
        return
    out.print(task_table(items, sites, next_run=tab == Tab.RECURRING))
    if more:
        print_page_hint(len(items))


@api_command(task_app, "show")
def show(task_id: TaskId, *, api: Api) -> None:
    """Show everything about one task."""
    print_item(api, f"/tasks/{task_id}", _task_in_full)


def _task_in_full(client: ApiClient, task: Mapping[str, Any]) -> RenderableType:
    """What `task show` prints: the task's panel, then a recurring template's next runs."""
    panel = task_panel(
        task,
        site_names(client),
        explorer=name_of(client, "/explorers", task.get("explorer_id")),
        zone=name_of(client, "/hosted-zones", task.get("hosted_zone_id")),
    )
    upcoming = template_next_runs(task)
    if not upcoming:
        return panel
    from rich.console import Group

    return Group(panel, next_runs_text(upcoming, task.get("timezone") or "UTC"))


@api_command(task_app, "events")
def events(task_id: TaskId, *, api: Api) -> None:
    """Show a task's timeline: every transition, edit and skip."""
    with api.connect() as client:
        items, _ = client.page(f"/tasks/{task_id}/events", limit=1000, every_page=True)
    if api.as_json:
        print_json(items)
        return
    out.print(events_table(items))


@api_command(task_app, "runs")
def runs(task_id: TaskId, limit: Limit = 50, all_pages: AllPages = False, *, api: Api) -> None:
    """Show the runs of a recurring task, newest first."""
    with api.connect() as client:
        items, more = client.page(
            f"/tasks/{task_id}/runs", limit=min(limit, 500), every_page=all_pages
        )
        if api.as_json:
            print_json(items)
            return
        sites = site_names(client) if items else {}
    if not items:
        out.print(dim(f"Task {task_id} has no runs."))
        return
    out.print(task_table(items, sites))
    if more:
        print_page_hint(len(items), "newest")


def _act(task_id: int, action: str, body: dict[str, Any] | None, api: Api) -> None:
    task = api.ask("POST", f"/tasks/{task_id}/{action}", body)
    if api.as_json:
        print_json(task)
        return
    from rich.text import Text

    line = Text(f"Task {task['id']} ")
    if task["id"] != task_id:
        line = Text(f"Started run {task['id']} of task {task_id}: ")
    line.append_text(status_text(task["status"]))
    if task.get("hidden"):
        line.append(" (hidden)", style="dim")
    reason = wait_reason_text(task.get("wait_reason"))
    if reason:
        line.append(f", {reason}", style="dim")
    out.print(line, soft_wrap=True)


def _add_action(action: str, *, help: str) -> None:
    """`task ACTION ID`: ask the API for the action and say the task's status after it."""

    @api_command(task_app, action, help=help)
    def act(task_id: TaskId, *, api: Api) -> None:
        _act(task_id, action, None, api)


_add_action("stop", help="Stop a task; one that has not launched yet stops at once.")
_add_action("pause", help="Pause a recurring task (it keeps its schedule).")
_add_action("resume", help="Resume a paused recurring task from now.")
_add_action("run-now", help="Run a recurring or scheduled task now instead of at its next time.")


@api_command(task_app, "hide")
def hide(
    task_id: TaskId,
    unhide: Annotated[bool, typer.Option("--unhide", help="Show the task again.")] = False,
    *,
    api: Api,
) -> None:
    """Hide a task from the tabs (search with hidden:true to find it)."""
    _act(task_id, "hide", {"hidden": not unhide}, api)


add_delete(
    task_app,
    "remove",
    "/tasks",
    argument="task_id",
    argument_help="The task's id.",
    help="Remove a task from every view; a recurring task's past runs stay.",
    said="Removed task {id}.",
)


def _watch_view(task: dict[str, Any], progress: Progress) -> Group:
    from rich.console import Group
    from rich.text import Text

    line = Text(f"Task {task['id']} ")
    line.append_text(shown(task["name"], style="bold"))
    line.append(": ")
    line.append_text(status_text(task["status"]))
    reason = wait_reason_text(task.get("wait_reason"))
    if reason and task["status"] == TaskStatus.NEW:
        line.append(f" ({reason})", style="dim")
    return Group(line, progress)


@api_command(task_app, "watch", json=False)
def watch(
    task_id: TaskId,
    poll: Annotated[float, typer.Option("--poll", min=0.1, help="Seconds between polls.")] = 1.0,
    *,
    api: Api,
) -> None:
    """Follow a task until it ends; exit 0 when it was processed, 1 otherwise."""
    from rich.live import Live
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn
    from rich.text import Text

    progress = Progress(
        TextColumn("{task.description:<8}"), BarColumn(), TaskProgressColumn(), console=err
    )
    collect = progress.add_task("Collect", total=1.0)
    process = progress.add_task("Process", total=1.0)
    with api.connect() as client:
        task = client.get(f"/tasks/{task_id}")
        if task["recur"]:
            raise CliError(
                f"task {task_id} is a recurring task and never ends",
                hint=f"watch one of its runs (see `surveyor task runs {task_id}`)",
            )
        try:
            with Live(_watch_view(task, progress), console=err, refresh_per_second=8) as live:
                while True:
                    progress.update(collect, completed=task["progress"]["collect"])
                    progress.update(process, completed=task["progress"]["process"])
                    live.update(_watch_view(task, progress), refresh=True)
                    if task["status"] in TERMINAL_STATUSES:
                        break
                    time.sleep(poll)
                    task = client.get(f"/tasks/{task_id}")
        except KeyboardInterrupt:
            err.print(f"Stopped watching; task {task_id} goes on.")
            raise typer.Exit(EXIT_INTERRUPTED) from None
    final = Text(f"Task {task_id} ended ")
    final.append_text(status_text(task["status"]))
    if task.get("error"):
        final.append_text(shown(f": {task['error']}", style="red"))
    out.print(final, soft_wrap=True)
    if task["status"] != TaskStatus.PROCESSED:
        raise typer.Exit(1)


@api_command(task_app, "data", json=False)
def task_data(task_id: TaskId, output: OutputFile, *, api: Api) -> None:
    """Download the data a task collected (gzip JSONL, the task data format)."""
    size = download(
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
    size = download(
        f"/tasks/{task_id}/changes",
        output,
        what=f"Task {task_id} changes",
        params={"format": report_format},
        api=api,
    )
    if output is not None:
        err.print(f"Wrote the change report of task {task_id} ({size:,} bytes) to {output}")
