"""A cluster on one machine, as on several: a throwaway PostgreSQL, two `surveyor console`
on their own ports, two `surveyor worker` and three `surveyor explorer` (two sites and a
hosted zone), each process with its own data directory. The cluster starts once for the
module.

- One-off scans of loopback listeners run, are processed and land in the inventory; one
  console is killed (-9) while they scan, the explorers move to the other console, and it
  shows every task finished, once.
- Recurring scans (every minute, cron) fire through the scheduler of the console that leads;
  that console is killed (-9) while a run scans, the other console's scheduler takes the lead
  and fires the next runs. Every occurrence is one run or a recorded skip, never two runs,
  and every run is processed; the tabs and their counts agree on the surviving console.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from surveyor.security.secretbox import encode_key, new_key
from tests.acceptance.conftest import SURVEYOR, clean_environment
from tests.support.databases import fresh_database
from tests.support.explorer_processes import (
    ExplorerProcess,
    ServerProcess,
    banner_listener,
    enrollment_token,
    wait_until,
)

#: The loopback address each placement's listener answers on.
LISTENERS = {"north": "127.0.2.1", "south": "127.0.3.1", "zone": "127.0.4.1"}
#: Slow enough (16 addresses at 8 probes/s) to be killed half-way through.
RATE = 8
DEADLINE = 90
#: Every minute: the finest schedule there is (rules run on whole minutes).
EVERY_MINUTE = {"frequency": "cron", "cron": "* * * * *"}
#: Long enough for a run to be fired on a minute, and for the next minute's after a failover.
RECURRING_DEADLINE = 300
#: What a console's scheduler logs when it takes the lead (scheduler/leader.py).
LEADS = "this console's scheduler leads"
TABS = ("active", "processing", "scheduled", "failed", "completed", "recurring")
#: An occurrence as template events name it (scheduler/firing.format_moment).
MOMENT = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC")
MINUTE = timedelta(minutes=1)


def log_since(path: Path, offset: int) -> str:
    with path.open("rb") as log:
        log.seek(offset)
        return log.read().decode(errors="replace")


class ClusterConsole(ServerProcess):
    """A console that remembers where its log stood when it last started."""

    started_at = 0

    def start(self) -> None:
        self.started_at = self.log.stat().st_size if self.log.exists() else 0
        super().start()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def led_since_start(self) -> bool:
        return LEADS in log_since(self.log, self.started_at)

    def kill(self) -> None:
        """`kill -9`: no goodbye to explorers, workers or the database."""
        assert self.process is not None
        self.process.kill()
        self.process.wait()


class WorkerProcess:
    """`surveyor worker` with its own data directory."""

    def __init__(self, data_dir: Path, env: dict[str, str]) -> None:
        self.log = data_dir.parent / f"{data_dir.name}.log"
        with self.log.open("ab") as output:
            self.process = subprocess.Popen(
                [SURVEYOR, "worker"],
                env=clean_environment() | env | {"SURVEYOR_DATA": str(data_dir)},
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
            )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class ClusterExplorer(ExplorerProcess):
    """An explorer given every console's URL, in its own order."""

    def __init__(self, consoles: list[ClusterConsole], state_dir: Path, name: str) -> None:
        super().__init__(consoles[0], state_dir, name)
        self.consoles = consoles

    def start(self, token: str | None = None) -> None:
        command = [SURVEYOR, "explorer"]
        for console in self.consoles:
            command += ["--console", console.url]
        command += ["--state-dir", str(self.state_dir), "--name", self.name]
        if token:
            command += ["--token", token]
        with self.log.open("ab") as output:
            self.process = subprocess.Popen(
                command,
                env=clean_environment(),
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        found = wait_until(self._online, seconds=60, what=f"explorer {self.name} online")
        self.explorer_id = int(found["id"])

    def _online(self) -> dict[str, Any] | None:
        # Ask a console that is up: the first one may have been killed by an earlier test.
        self.console = next(console for console in self.consoles if console.running)
        return super()._online()

    def log_size(self) -> int:
        return self.log.stat().st_size


@dataclass
class Cluster:
    a: ClusterConsole
    b: ClusterConsole
    #: The ids of each placement's site and of the hosted zone.
    ids: dict[str, int]
    #: By placement: north, south, zone.
    explorers: dict[str, ClusterExplorer]
    workers: list[WorkerProcess]

    def bring_up(self) -> None:
        """Start again a console an earlier test killed, as an operator would, on its own
        port and data directory."""
        for console in (self.a, self.b):
            if not console.running:
                console.start()


@pytest.fixture(scope="module")
def cluster_env(postgres_url: str) -> dict[str, str]:
    return {
        "SURVEYOR_DATABASE_URL": fresh_database(postgres_url, prefix="cluster"),
        "SURVEYOR_SECRET_KEY": encode_key(new_key()),
        # Processing is the workers' alone, so they must find data another console received.
        "SURVEYOR_WORKERS": "0",
        # Info, to see which console's scheduler leads; without a line per request.
        "SURVEYOR_LOG_LEVEL": "info",
        "SURVEYOR_ACCESS_LOG": "0",
    }


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory: pytest.TempPathFactory, cluster_env: dict[str, str]
) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("cluster")
    consoles: list[ClusterConsole] = []
    explorers: dict[str, ClusterExplorer] = {}
    workers: list[WorkerProcess] = []
    try:
        for name in ("console-a", "console-b"):
            (root / name).mkdir()
            server = ClusterConsole("console", root / name, env=cluster_env)
            consoles.append(server)
            server.start()  # one after the other: the first creates the schema (and leads)
        a, b = consoles
        ids = place(a)
        for placed, order in (("north", [a, b]), ("south", [b, a]), ("zone", [a, b])):
            name = f"explorer-{placed}"
            explorer = ClusterExplorer(order, root / name, name)
            explorers[placed] = explorer
            explorer.start(enrollment_token(a))
            body = {"site_id": ids[placed]} if placed != "zone" else {"hosted_zone_id": ids["zone"]}
            answer = a.api.patch(f"/api/v1/explorers/{explorer.explorer_id}", json=body)
            assert answer.status_code == 200, answer.text
        for name in ("worker-1", "worker-2"):
            (root / name).mkdir()
            workers.append(WorkerProcess(root / name, cluster_env))
        yield Cluster(a, b, ids, explorers, workers)
    finally:
        for explorer in explorers.values():
            explorer.stop()
        for worker in workers:
            worker.stop()
        for server in consoles:
            server.close()


def place(console: ServerProcess) -> dict[str, int]:
    """Two sites and a hosted zone; the ids of each placement's site and zone."""
    ids: dict[str, int] = {}
    for name in ("north", "south"):
        answer = console.api.post(
            "/api/v1/sites", json={"name": name, "scope": f"{LISTENERS[name][:-1]}0/28"}
        )
        assert answer.status_code == 201, answer.text
        ids[name] = int(answer.json()["id"])
    answer = console.api.post("/api/v1/hosted-zones", json={"name": "pool", "max_concurrent": 1})
    assert answer.status_code == 201, answer.text
    ids["zone"] = int(answer.json()["id"])
    return ids


def scan_body(cluster: Cluster, placed: str, port: int) -> dict[str, Any]:
    """A scan of the placement's listener's /28; a site's scan names its explorer, since the
    zone's explorer has no site and could take a site's scan and leave the zone's waiting."""
    address = LISTENERS[placed]
    body: dict[str, Any] = {
        "name": f"scan {placed}",
        "site_id": cluster.ids["north" if placed == "zone" else placed],
        "params": {
            "targets": f"{address[:-1]}0/28",
            "tcp_ports": str(port),
            "rate": RATE,
            "probes": ["banner"],
        },
    }
    if placed == "zone":
        body["hosted_zone_id"] = cluster.ids["zone"]
    else:
        body["explorer_id"] = cluster.explorers[placed].explorer_id
    return body


def test_a_cluster_carries_on_when_a_console_is_killed_mid_scan(cluster: Cluster) -> None:
    cluster.bring_up()
    b = cluster.b
    moved_before = {name: e.log_size() for name, e in cluster.explorers.items()}
    with banner_listener(*LISTENERS.values()) as port:
        tasks = run_scans_and_kill(cluster, port)
        finished = {
            task_id: b.wait_for_status(
                task_id, {"processed", "canceled", "stopped"}, seconds=DEADLINE
            )
            for task_id in tasks
        }
    assert_every_task_finished_once(b, finished)
    moved = [
        placed
        for placed, e in cluster.explorers.items()
        if f"stopped answering; moving to {b.url}" in log_since(e.log, moved_before[placed])
    ]
    assert {"north", "zone"} <= set(moved), moved
    assert_inventory_has_each_listener(b, cluster.ids)
    for worker in cluster.workers:
        assert worker.process.poll() is None, worker.log.read_text()


def run_scans_and_kill(cluster: Cluster, port: int) -> dict[int, str]:
    """One-off scans of each placement's listener, created through both consoles; console A
    killed once every scan is running. The task ids and where each scanned."""
    a, b = cluster.a, cluster.b
    tasks: dict[int, str] = {}
    for placed, through in (("north", a), ("south", b), ("zone", a)):
        tasks[through.create_scan(**scan_body(cluster, placed, port))["id"]] = placed
    wait_until(
        lambda: all(b.task(task_id)["status"] == "active" for task_id in tasks),
        seconds=DEADLINE,
        what="every scan running",
    )
    a.kill()  # mid-scan
    return tasks


def assert_every_task_finished_once(b: ServerProcess, finished: dict[int, dict[str, Any]]) -> None:
    for task_id, task in finished.items():
        assert task["status"] == "processed", (task_id, task["status"], task["error"])
        assert task["progress"]["collect"] == 1.0
        # Every loopback address answers (a refusal is an answer); the listener's has a service.
        assert task["change_summary"]["new"] == 16, task["change_summary"]
        assert_launched_and_processed_once(b, task_id)
    counts = b.api.get("/api/v1/tasks/counts").json()["counts"]
    assert counts["completed"] >= len(finished)
    assert counts["active"] == 0
    assert counts["processing"] == 0 or all(
        t["type"] != "scan"
        for t in b.api.get("/api/v1/tasks", params={"tab": "processing"}).json()["items"]
    )


def assert_launched_and_processed_once(console: ServerProcess, task_id: int) -> None:
    moves = [event["to_status"] for event in console.events(task_id) if event.get("to_status")]
    assert moves.count("active") == 1, f"task {task_id} was launched again: {moves}"
    assert moves.count("processed") == 1, f"task {task_id} was processed twice: {moves}"
    runs = console.api.get(f"/api/v1/tasks/{task_id}/processing-runs").json()
    runs = runs["items"] if isinstance(runs, dict) else runs
    assert len(runs) == 1, f"task {task_id} has {len(runs)} processing runs"


def assert_inventory_has_each_listener(b: ServerProcess, ids: dict[str, int]) -> None:
    for placed, address in LISTENERS.items():
        found = b.api.get("/api/v1/assets", params={"search": f"address:={address}"}).json()
        [asset] = found["items"]
        assert asset["ports"], asset
        assert asset["site_id"] == ids["north" if placed == "zone" else placed]


def test_recurring_scans_fire_once_each_when_the_leading_console_is_killed(
    cluster: Cluster,
) -> None:
    """Templates on explorer north and on the hosted zone, every minute. The console whose
    scheduler leads is killed while a run of north scans; the other takes the lead."""
    cluster.bring_up()
    leader, survivor = wait_until(
        lambda: leading_console(cluster), seconds=DEADLINE, what="one console leading"
    )
    placements = ("north", "zone")
    with banner_listener(*(LISTENERS[placed] for placed in placements)) as port:
        templates: dict[str, dict[str, Any]] = {}
        for placed, through in zip(placements, (leader, survivor), strict=True):
            body = scan_body(cluster, placed, port) | {"recur": EVERY_MINUTE}
            body["name"] = f"every minute {placed}"
            templates[placed] = through.create_scan(**body)
        wait_until(
            lambda: scanning_run(survivor, templates["north"]["id"]),
            seconds=RECURRING_DEADLINE,
            what="a run of the north template scanning",
        )
        # Fired before the kill, so by the leader's scheduler: the other has not led.
        assert not survivor.led_since_start(), "both consoles lead"
        explorers_before = {name: e.log_size() for name, e in cluster.explorers.items()}
        survivor_before = survivor.log.stat().st_size
        leader.kill()  # mid-run
        killed_at = datetime.now(UTC)
        # The survivor's scheduler fires the occurrences after the kill: wait for one run of
        # each template that was due after it, processed.
        for placed, template in templates.items():
            template_id: int = template["id"]
            wait_until(
                partial(processed_run_after, survivor, template_id, killed_at),
                seconds=RECURRING_DEADLINE,
                what=f"a run of the {placed} template fired after the kill, processed",
            )
        for template in templates.values():
            answer = survivor.api.post(f"/api/v1/tasks/{template['id']}/pause")
            assert answer.status_code == 200, answer.text
        # A run fired just before the pause may still be scanning.
        for template in templates.values():
            for run in run_list(survivor, template["id"]):
                survivor.wait_for_status(
                    run["id"], {"processed", "canceled", "stopped"}, seconds=DEADLINE
                )
    assert LEADS in log_since(survivor.log, survivor_before), "the survivor never took the lead"
    for placed, template in templates.items():
        runs = run_list(survivor, template["id"])
        # Its occurrence came after the kill, so the survivor's scheduler fired it.
        assert any(instant(run["start_time"]) > killed_at for run in runs), placed
        for run in runs:
            assert run["status"] == "processed", (run["id"], run["status"], run["error"])
            assert run["progress"]["collect"] == 1.0
            assert run["change_summary"]["total"] == 16, run["change_summary"]
            assert_launched_and_processed_once(survivor, run["id"])
        assert_each_occurrence_once(survivor, template, runs)
        [asset] = survivor.api.get(
            "/api/v1/assets", params={"search": f"address:={LISTENERS[placed]}"}
        ).json()["items"]
        assert f"tcp/{port} ssh" in asset["ports"], asset
    for placed in placements:
        said = log_since(cluster.explorers[placed].log, explorers_before[placed])
        assert f"stopped answering; moving to {survivor.url}" in said, (placed, said)
    assert_every_explorer_online(survivor, cluster)
    wait_until(
        lambda: tab_counts_agree(survivor), seconds=DEADLINE, what="tab counts matching tabs"
    )
    counts = survivor.api.get("/api/v1/tasks/counts").json()["counts"]
    assert counts["active"] == 0, counts
    recurring = {task["id"] for task in tab(survivor, "recurring")}
    assert {template["id"] for template in templates.values()} <= recurring
    completed = {task["id"] for task in tab(survivor, "completed")}
    for template in templates.values():
        assert {run["id"] for run in run_list(survivor, template["id"])} <= completed
    for worker in cluster.workers:
        assert worker.process.poll() is None, worker.log.read_text()


def leading_console(cluster: Cluster) -> tuple[ClusterConsole, ClusterConsole] | None:
    """(the console whose scheduler leads, the other), once exactly one has taken the lead
    since it last started."""
    leading = [console for console in (cluster.a, cluster.b) if console.led_since_start()]
    if len(leading) != 1:
        return None
    [leader] = leading
    return leader, cluster.b if leader is cluster.a else cluster.a


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def run_list(console: ServerProcess, template_id: int) -> list[dict[str, Any]]:
    """A template's runs, newest first."""
    answer = console.api.get(f"/api/v1/tasks/{template_id}/runs", params={"limit": 500})
    assert answer.status_code == 200, answer.text
    items: list[dict[str, Any]] = answer.json()["items"]
    return items


def scanning_run(console: ServerProcess, template_id: int) -> dict[str, Any] | None:
    """The template's newest run, if it is scanning."""
    runs = run_list(console, template_id)
    return runs[0] if runs and runs[0]["status"] == "active" else None


def processed_run_after(console: ServerProcess, template_id: int, moment: datetime) -> bool:
    """Whether a run for an occurrence after `moment` is processed; fails on a run that
    could not finish."""
    runs = run_list(console, template_id)
    for run in runs:
        assert run["status"] not in ("canceled", "stopped"), run
    return any(instant(run["start_time"]) > moment and run["status"] == "processed" for run in runs)


def assert_each_occurrence_once(
    console: ServerProcess, template: dict[str, Any], runs: list[dict[str, Any]]
) -> None:
    """Every minute from the template's first occurrence to its last fired or skipped one
    is either one run (spawned once) or recorded as skipped or coalesced, never both."""
    template_id = template["id"]
    starts = [instant(run["start_time"]) for run in runs]
    assert len(set(starts)) == len(starts), f"template {template_id}: two runs of a minute"
    events = console.events(template_id)
    spawned = [
        int(match.group(1))
        for event in events
        if event["kind"] == "spawned"
        and (match := re.match(r"run (\d+) spawned", event["message"]))
    ]
    assert sorted(spawned) == sorted(run["id"] for run in runs), (spawned, events)
    not_run: list[datetime] = []
    for event in events:
        if event["kind"] not in ("skipped", "coalesced"):
            continue
        message = event["message"]
        assert " more" not in message, message  # a few minutes list every occurrence
        listed = message.split(" were coalesced")[0] if event["kind"] == "coalesced" else message
        listed = listed.split(": ")[0]
        not_run += [
            datetime.strptime(found, "%Y-%m-%d %H:%M UTC").replace(tzinfo=UTC)
            for found in MOMENT.findall(listed)
        ]
    assert len(set(not_run)) == len(not_run), not_run
    assert not set(not_run) & set(starts), (not_run, starts)
    covered = sorted({*starts, *not_run})
    first = instant(template["recur_next"])
    assert covered[0] == first, (covered, first)
    every_minute = [first + n * MINUTE for n in range(len(covered))]
    assert covered == every_minute, f"template {template_id}: an occurrence went unrecorded"


def assert_every_explorer_online(console: ServerProcess, cluster: Cluster) -> None:
    wanted = {explorer.name for explorer in cluster.explorers.values()}
    wait_until(
        lambda: (
            wanted
            <= {e["name"] for e in console.api.get("/api/v1/explorers").json() if e["online"]}
        ),
        seconds=DEADLINE,
        what="every explorer online",
    )


def tab(console: ServerProcess, name: str) -> list[dict[str, Any]]:
    """Every task of a tab, page by page."""
    found: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"tab": name, "limit": 500}
        if cursor:
            params["cursor"] = cursor
        page = console.api.get("/api/v1/tasks", params=params).json()
        found += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            return found


def tab_counts_agree(console: ServerProcess) -> bool:
    """Whether the counts on the tabs are what the tabs list (both move while system tasks
    run, so the caller asks again)."""
    counts = console.api.get("/api/v1/tasks/counts").json()["counts"]
    return all(counts[name] == len(tab(console, name)) for name in TABS)
