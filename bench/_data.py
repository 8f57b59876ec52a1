"""A realistic task history for one large organization (and a small second one).

The rows are what the product would have written over about eighteen months of use: mostly
processed scans, many of them runs of a few hundred recurring templates, some canceled or
stopped, a few hundred active and in processing, a few thousand scheduled, about 2% hidden.
`tab` and `tab_sort` come from the store's own `placement()`, scan params from the core's
validator, so listing them exercises exactly what production data would.

Everything is drawn from one seeded generator: the same seed, count and `now` give the same rows.
"""

from __future__ import annotations

import itertools
import json
import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any, TypeVar

from surveyor.core.scan_params import validate_scan_params
from surveyor.core.task import TASK_COLUMNS
from surveyor.core.tasks import TaskStatus, TaskType, WaitReason
from surveyor.store.tasks import placement

#: Bump whenever the rows change, so cached databases are rebuilt.
GENERATOR_VERSION = 3

HISTORY = timedelta(days=540)
HIDDEN_SHARE = 0.02
SECOND_ORG_SHARE = 0.02
SECOND_ORG_MINIMUM = 200

S = TaskStatus
DAY = 86_400.0
HOUR = 3_600.0


# --- the organizations the tasks belong to -------------------------------------------------


@dataclass(frozen=True)
class SiteLayout:
    name: str
    weight: float
    explorers: int
    zone: str | None = None
    exists: bool = False  # created by the bootstrap, not by the loader
    explorer_names: tuple[str, ...] = ()  # default: numbered across the organization


@dataclass(frozen=True)
class OrganizationLayout:
    name: str
    sites: tuple[SiteLayout, ...]
    users: tuple[tuple[str, float], ...]
    exists: bool = False


def _users(*emails_and_weights: tuple[str, float]) -> tuple[tuple[str, float], ...]:
    return emails_and_weights


MAIN_ORG = OrganizationLayout(
    name="Default",
    exists=True,
    sites=(
        SiteLayout("Primary", 0.3, 1, exists=True),
        *(
            SiteLayout(f"dc-{k}", 4.0, 4, "pool-dc-east" if k <= 3 else "pool-dc-west")
            for k in range(1, 7)
        ),
        *(
            SiteLayout(f"branch-{k:02d}", 1.0, 2 if k <= 4 else 1, "pool-branches")
            for k in range(1, 11)
        ),
        SiteLayout("dmz", 2.0, 4, "pool-dmz"),
        SiteLayout("lab", 1.0, 3),
        SiteLayout("ot-plant", 1.5, 4),
    ),
    users=_users(
        ("alice@example.com", 18),
        ("bob@example.com", 14),
        ("carol@example.com", 12),
        ("dave@example.com", 10),
        ("erin@example.com", 9),
        ("frank@example.com", 8),
        ("grace@example.com", 7),
        ("heidi@example.com", 6),
        ("ivan@example.com", 5),
        ("judy@example.com", 4),
    ),
)

#: A small tenant whose names collide with the main one's (`dc-3`, `exp-07`), so that a search
#: resolving names to ids only stays correct if every query is scoped to the organization.
OTHER_ORG = OrganizationLayout(
    name="Branch office",
    sites=(
        SiteLayout("hq", 3.0, 1, explorer_names=("exp-51",)),
        SiteLayout("dc-3", 1.0, 1, explorer_names=("exp-07",)),
    ),
    users=_users(("oscar@branch.example", 3), ("peggy@branch.example", 1)),
)


@dataclass(frozen=True)
class Site:
    id: int
    name: str
    scope: str
    excludes: str
    weight: float


@dataclass(frozen=True)
class Explorer:
    id: int
    name: str
    site_id: int
    zone_id: int | None


@dataclass(frozen=True)
class User:
    id: int
    email: str
    weight: float


@dataclass(frozen=True)
class Organization:
    """An organization as created in the database: the ids the tasks refer to."""

    id: int
    sites: tuple[Site, ...]
    explorers: tuple[Explorer, ...]
    zone_names: dict[int, str]
    users: tuple[User, ...]

    def explorers_of(self, site_id: int) -> tuple[Explorer, ...]:
        return self._by_site.get(site_id, ())

    @cached_property
    def _by_site(self) -> dict[int, tuple[Explorer, ...]]:
        found: dict[int, list[Explorer]] = {}
        for explorer in self.explorers:
            found.setdefault(explorer.site_id, []).append(explorer)
        return {site_id: tuple(members) for site_id, members in found.items()}


def split_counts(total: int) -> tuple[int, int]:
    """How many tasks the main and the second organization get."""
    other = max(SECOND_ORG_MINIMUM, round(total * SECOND_ORG_SHARE))
    return total - other, other


# --- the plan: what each task is and when it was created ------------------------------------

TEMPLATE, RUN, SCAN, CONNECTOR = "template", "run", "scan", "connector"
IMPORT, SYSTEM = "import", "system"
TERMINAL, ACTIVE, PROCESSING, SCHEDULED, WAITING, REMOVED = (
    "terminal",
    "active",
    "processing",
    "scheduled",
    "waiting",
    "removed",
)
LIVE_TEMPLATE, PAUSED_TEMPLATE = "live", "paused"

FREQUENCIES: dict[str, tuple[float, float, str]] = {
    # frequency: (share of templates, period in seconds, RRULE)
    "hourly": (0.06, HOUR, "FREQ=HOURLY;INTERVAL=1;BYMINUTE=15"),
    "daily": (0.49, DAY, "FREQ=DAILY;INTERVAL=1;BYHOUR=2;BYMINUTE=0"),
    "weekly": (0.35, 7 * DAY, "FREQ=WEEKLY;INTERVAL=1;BYDAY=SA;BYHOUR=22;BYMINUTE=0"),
    "monthly": (0.10, 30 * DAY, "FREQ=MONTHLY;INTERVAL=1;BYMONTHDAY=1;BYHOUR=3;BYMINUTE=0"),
}
TEMPLATE_NAMES: dict[str, tuple[str, ...]] = {
    "hourly": ("hourly perimeter check {site}", "hourly dhcp range check {site}"),
    "daily": ("daily discovery {site}", "nightly full scan {site}"),
    "weekly": ("weekly sweep {site}", "weekly port audit {site}"),
    "monthly": ("monthly deep scan {site}", "monthly compliance scan {site}"),
}
SCAN_NAMES = (
    "ad-hoc scan {subnet}",
    "verify patch rollout {site}",
    "scan new rack r{n} {site}",
    "check printer vlan {site}",
    "incident INC{n} sweep {site}",
    "rescan {site} after CHG{n}",
    "discover {site} servers",
    "quick scan {ip}",
    "audit open RDP {site}",
    "find rogue devices {site}",
)
CONNECTOR_NAMES = (
    "sync vsphere vc-0{k}",
    "sync aws eu-west-{k}",
    "sync azure subscription {k}",
    "sync dhcp leases {site}",
    "sync crowdstrike",
    "sync intune",
)
IMPORT_NAMES = (
    "import cmdb",
    "import cmdb export 2024-{k:02d}",
    "import nmap results {site}",
    "import asset csv {site}",
    "import legacy inventory",
)
REPORT_NAMES = ("organization overview report", "site comparison report", "external assets report")
QUERY_NAMES = (
    "unmanaged windows hosts",
    "expired certificates",
    "telnet still open",
    "new devices this week",
)
TIMEZONES = ("UTC", "Europe/Berlin", "America/New_York", "Asia/Singapore")
PORT_CHOICES = (
    ("top100", 0.7),
    ("22,80,443,3389,8080-8090", 0.15),
    ("1-1024", 0.1),
    ("default", 0.05),
)


class _Plan:
    """One task before it has a row: its kind, lifecycle state, creation time and runner."""

    __slots__ = (
        "created",
        "creator",
        "ended",
        "explorer",
        "frequency",
        "id",
        "kind",
        "last_run",
        "name",
        "org",
        "site",
        "state",
        "template",
        "type",
        "zone_id",
    )

    def __init__(self, org: Organization, kind: str, state: str, created: float) -> None:
        self.org = org
        self.kind = kind
        self.state = state
        self.created = created
        self.ended = created  # templates: when the last occurrence could have run
        self.template: _Plan | None = None
        self.id = 0
        self.last_run: _Plan | None = None
        self.frequency = ""
        self.name = ""
        self.type = TaskType.SCAN
        self.site: Site | None = None
        self.creator: User | None = None
        self.explorer: Explorer | None = None
        self.zone_id: int | None = None


_Item = TypeVar("_Item")


def _weighted(rng: random.Random, items: Sequence[_Item], weights: Sequence[float]) -> _Item:
    return rng.choices(items, weights=weights)[0]


class _Planner:
    def __init__(self, rng: random.Random, now: float) -> None:
        self.rng = rng
        self.now = now
        self.start = now - HISTORY.total_seconds()

    def site(self, org: Organization) -> Site:
        return _weighted(self.rng, org.sites, [site.weight for site in org.sites])

    def user(self, org: Organization) -> User:
        return _weighted(self.rng, org.users, [user.weight for user in org.users])

    def runner(self, plan: _Plan, *, zone_share: float) -> None:
        """Pick the explorer (or hosted zone) of a scan or connector at the plan's site."""
        assert plan.site is not None
        local = plan.org.explorers_of(plan.site.id) or plan.org.explorers
        plan.explorer = self.rng.choice(local)
        if plan.explorer.zone_id is not None and self.rng.random() < zone_share:
            plan.zone_id = plan.explorer.zone_id

    def templates(self, org: Organization, count: int) -> list[_Plan]:
        rng = self.rng
        plans = []
        frequencies = list(FREQUENCIES)
        shares = [FREQUENCIES[name][0] for name in frequencies]
        for index in range(count):
            state = TERMINAL
            if index % 20 == 19:
                state = REMOVED
            created = self.start + HISTORY.total_seconds() * 0.9 * rng.random() ** 2
            plan = _Plan(org, TEMPLATE, state, created)
            plan.frequency = _weighted(rng, frequencies, shares)
            plan.site = self.site(org)
            plan.creator = self.user(org)
            kind = rng.random()
            if kind < 0.85:
                plan.type = TaskType.SCAN
                pattern = rng.choice(TEMPLATE_NAMES[plan.frequency])
                plan.name = pattern.format(site=plan.site.name)
                self.runner(plan, zone_share=0.3)
            elif kind < 0.95:
                plan.type = TaskType.CONNECTOR
                plan.name = f"{plan.frequency} sync vsphere vc-0{rng.randint(1, 4)}"
                if rng.random() < 0.3:
                    self.runner(plan, zone_share=0.0)
            else:
                plan.type = TaskType.REPORT
                plan.name = f"{plan.frequency} {rng.choice(REPORT_NAMES)}"
                plan.site = None
            plans.append(plan)
        return plans

    def one_off(self, org: Organization, kind: str, state: str, created: float) -> _Plan:
        rng = self.rng
        plan = _Plan(org, kind, state, created)
        plan.site = self.site(org)
        plan.creator = self.user(org)
        n = rng.randint(100, 9999)
        if kind == SCAN:
            plan.type = TaskType.SCAN
            plan.name = rng.choice(SCAN_NAMES).format(
                site=plan.site.name, n=n, subnet="{subnet}", ip="{ip}"
            )
            self.runner(plan, zone_share=0.15)
        elif kind == CONNECTOR:
            plan.type = TaskType.CONNECTOR
            plan.name = rng.choice(CONNECTOR_NAMES).format(k=rng.randint(1, 4), site=plan.site.name)
            if rng.random() < 0.3:
                self.runner(plan, zone_share=0.0)
        elif kind == IMPORT:
            plan.type = TaskType.IMPORT
            plan.name = rng.choice(IMPORT_NAMES).format(k=rng.randint(1, 12), site=plan.site.name)
        else:
            plan.creator = None
            plan.type = _weighted(
                rng,
                (TaskType.OUTLIER, TaskType.REPORT, TaskType.QUERY, TaskType.RETENTION),
                (0.6, 0.15, 0.2, 0.05),
            )
            if plan.type is TaskType.OUTLIER:
                plan.name = f"outlier scores {plan.site.name}"
            else:
                plan.site = None
                plan.name = {
                    TaskType.REPORT: rng.choice(REPORT_NAMES),
                    TaskType.QUERY: f"refresh saved query '{rng.choice(QUERY_NAMES)}'",
                    TaskType.RETENTION: "retention sweep",
                }[plan.type]
        return plan

    def run(self, template: _Plan, state: str, created: float) -> _Plan:
        plan = _Plan(template.org, RUN, state, created)
        plan.template = template
        for field in ("type", "name", "frequency", "site", "creator", "explorer", "zone_id"):
            setattr(plan, field, getattr(template, field))
        if plan.zone_id is not None and plan.site is not None:
            members = [e for e in plan.org.explorers_of(plan.site.id) if e.zone_id == plan.zone_id]
            plan.explorer = self.rng.choice(members or [template.explorer])
        return plan

    def organization(self, org: Organization, count: int) -> list[_Plan]:
        """Every task of one organization, in no particular order."""
        rng = self.rng
        now, start, span = self.now, self.start, HISTORY.total_seconds()
        n_templates = max(6, round(count * 0.0003))
        n_active = max(3, round(count * 0.0003))
        n_processing = max(4, round(count * 0.0004))
        n_scheduled = max(10, round(count * 0.003))
        n_waiting = max(2, round(count * 0.00006))
        n_removed = max(1, round(count * 0.0004))
        n_terminal = count - (
            n_templates + n_active + n_processing + n_scheduled + n_waiting + n_removed
        )
        templates = self.templates(org, n_templates)
        for template in templates:
            if template.state != REMOVED:
                template.state = PAUSED_TEMPLATE if rng.random() < 0.15 else LIVE_TEMPLATE
            # A template's runs span its life; paused and removed ones stopped some time ago.
            template.ended = now - 60
            if template.state != LIVE_TEMPLATE:
                template.ended = max(template.created, now - rng.uniform(7, 120) * DAY)
        weights = [(t.ended - t.created) / FREQUENCIES[t.frequency][1] for t in templates]
        plans = list(templates)

        def history_time() -> float:
            # Use grew over time: density rises linearly towards now.
            return min(now - 60, start + span * math.sqrt(rng.random()))

        kinds = (RUN, SCAN, CONNECTOR, IMPORT, SYSTEM)
        terminal_mix = (0.58, 0.20, 0.05, 0.03, 0.14)
        run_templates = rng.choices(templates, weights=weights, k=n_terminal)
        for index, kind in enumerate(rng.choices(kinds, weights=terminal_mix, k=n_terminal)):
            if kind == RUN:
                template = run_templates[index]
                created = rng.uniform(template.created, template.ended)
                plans.append(self.run(template, TERMINAL, created))
            else:
                plans.append(self.one_off(org, kind, TERMINAL, history_time()))

        running = [
            t for t in templates if t.state == LIVE_TEMPLATE and t.type is not TaskType.REPORT
        ]

        def recent(
            state: str, kinds_and_weights: dict[str, float], age: tuple[float, float], count: int
        ) -> None:
            for kind in rng.choices(
                list(kinds_and_weights), list(kinds_and_weights.values()), k=count
            ):
                created = now - rng.uniform(*age)
                if kind == RUN and running:
                    plans.append(self.run(rng.choice(running), state, created))
                else:
                    plans.append(self.one_off(org, SCAN if kind == RUN else kind, state, created))

        recent(ACTIVE, {RUN: 0.5, SCAN: 0.35, CONNECTOR: 0.15}, (120, 3 * HOUR), n_active)
        recent(
            PROCESSING,
            {RUN: 0.45, SCAN: 0.25, CONNECTOR: 0.1, IMPORT: 0.08, SYSTEM: 0.12},
            (300, 6 * HOUR),
            n_processing,
        )
        recent(SCHEDULED, {SCAN: 0.9, CONNECTOR: 0.1}, (0, 30 * DAY), n_scheduled)
        recent(WAITING, {RUN: 0.7, SCAN: 0.3}, (60, 50 * 60), n_waiting)
        recent(REMOVED, {SCAN: 1.0}, (2 * DAY, 60 * DAY), n_removed)
        return plans


def plan_tasks(
    organizations: Sequence[tuple[Organization, int]], *, now: datetime, seed: int
) -> list[_Plan]:
    """Every task of every organization, ids assigned in creation order (as the database would)."""
    rng = random.Random(seed)
    planner = _Planner(rng, now.timestamp())
    plans: list[_Plan] = []
    for org, count in organizations:
        plans.extend(planner.organization(org, count))
    plans.sort(key=lambda plan: plan.created)
    for task_id, plan in enumerate(plans, start=1):
        plan.id = task_id
        if plan.template is not None:
            template = plan.template
            if template.last_run is None or template.last_run.created < plan.created:
                template.last_run = plan
    return plans


# --- rows ------------------------------------------------------------------------------------


#: JSON texts of values that repeat (scan params), by identity: encoding them once per value
#: instead of once per row saves most of the JSON work of a load.
_JSON_TEXTS: dict[int, tuple[Any, str]] = {}


def json_text(value: Any) -> str:
    """`value` as the JSON text SQLAlchemy's JSON type writes (plain `json.dumps`)."""
    known = _JSON_TEXTS.get(id(value))
    if known is not None and known[0] is value:
        return known[1]
    return json.dumps(value)


def _remember_json(value: dict[str, Any]) -> dict[str, Any]:
    _JSON_TEXTS[id(value)] = (value, json.dumps(value))
    return value


def _at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


class _RowBuilder:
    def __init__(self, rng: random.Random, now: float) -> None:
        self.rng = rng
        self.now = now
        self._params: dict[tuple[str, str, str], dict[str, Any]] = {}

    # Values that repeat are computed once: the validator is exact but not free.
    def scan_params(self, site: Site, targets: str, ports: str) -> dict[str, Any]:
        key = (site.name, targets, ports)
        if key not in self._params:
            checked = validate_scan_params(
                {"targets": targets, "tcp_ports": ports, "rate": 2000},
                default_targets=site.scope,
                default_excludes=site.excludes,
                scope_cap=65536,
            )
            self._params[key] = _remember_json(checked.to_json())
        return self._params[key]

    def params(self, plan: _Plan) -> dict[str, Any]:
        rng = self.rng
        if plan.type is TaskType.SCAN and plan.site is not None:
            base = plan.site.scope.rsplit(".", 2)[0]  # "127.13" of "127.13.0.0/18"
            subnet = f"{base}.{rng.randrange(32)}.0/24"
            address = f"{base}.{rng.randrange(8)}.{rng.randint(2, 12)}"
            if "{subnet}" in plan.name:
                targets = subnet
            elif "{ip}" in plan.name:
                targets = address
            else:
                targets = plan.site.scope if plan.kind in (TEMPLATE, RUN) else subnet
            ports = _weighted(rng, [p for p, _ in PORT_CHOICES], [w for _, w in PORT_CHOICES])
            return self.scan_params(plan.site, targets, ports)
        if plan.type is TaskType.CONNECTOR:
            return {
                "connector": plan.name.split()[-2] if " " in plan.name else "vsphere",
                "endpoint": f"{plan.name.split()[-1]}.corp.example",
            }
        if plan.type is TaskType.IMPORT:
            return {"file": f"{plan.name.replace(' ', '-')}.csv", "format": "csv"}
        return {"site_id": plan.site.id} if plan.site is not None else {}

    def change_summary(self, plan: _Plan) -> dict[str, int]:
        rng = self.rng
        total = int(rng.lognormvariate(math.log(400 if plan.type is TaskType.SCAN else 150), 1.0))
        total = max(1, min(total, 60_000))
        new = 0 if rng.random() < 0.8 else min(total, int(rng.expovariate(1 / 12)) + 1)
        changed = 0 if rng.random() < 0.45 else min(total - new, int(rng.expovariate(1 / 15)) + 1)
        offline = 0 if rng.random() < 0.6 else min(total - new - changed, rng.randint(1, 20))
        online = (
            0 if rng.random() < 0.7 else min(total - new - changed - offline, rng.randint(1, 10))
        )
        ignored = 0 if rng.random() < 0.95 else rng.randint(1, 5)
        unchanged = total - new - changed - offline - online
        return {
            "new": new,
            "changed": changed,
            "offline": offline,
            "online": online,
            "unchanged": unchanged,
            "ignored": ignored,
            "total": total + ignored,
        }

    def row(self, plan: _Plan) -> dict[str, Any]:
        rng = self.rng
        now = self.now
        c = plan.created
        runner_name = plan.explorer.name if plan.explorer else "its explorer"
        row: dict[str, Any] = {
            **dict.fromkeys(TASK_COLUMNS),
            "id": plan.id,
            "organization_id": plan.org.id,
            "site_id": plan.site.id if plan.site else None,
            "name": plan.name,
            "description": "",
            "type": plan.type.value,
            "status": S.NEW.value,
            "params": {},
            "stats": {},
            "progress_collect": 0.0,
            "progress_process": 0.0,
            "explorer_id": plan.explorer.id if plan.explorer else None,
            "hosted_zone_id": plan.zone_id,
            "created_by": plan.creator.email if plan.creator else "system",
            "created_by_user_id": plan.creator.id if plan.creator else None,
            "created_at": _at(c),
            "updated_at": _at(c),
            "recur": False,
            "parent_id": plan.template.id if plan.template else None,
            "grace_period": 3600,
            "hidden": False,
            "size_data": 0,
            "size_results": 0,
            "targets": "",
            "version": 1,
            "attempt": 0,
            "processing_attempts": 0,
            "data_partial": False,
        }
        params = self.params(plan)
        if plan.type is TaskType.SCAN and "{" in plan.name:
            row["name"] = plan.name.format(subnet=params["targets"], ip=params["targets"])
        row["params"] = params
        row["targets"] = str(params.get("targets", ""))
        if plan.kind == TEMPLATE:
            row["description"] = f"Recurring {plan.frequency} {plan.type.value}" + (
                f" of {plan.site.name}" if plan.site else ""
            )
            return self.template(plan, row)
        if plan.kind == RUN:
            row["description"] = f"Recurring {plan.frequency} {plan.type.value}"
        sort_now = now
        acquires = plan.type in (TaskType.SCAN, TaskType.CONNECTOR)
        row["start_time"] = _at(c)
        if plan.state == TERMINAL:
            sort_now = self.finished(plan, row, acquires, runner_name)
            row["hidden"] = rng.random() < HIDDEN_SHARE
        elif plan.state == ACTIVE:
            started = min(c + rng.uniform(1, 30), now - 1)
            row["data_acquisition_started_at"] = _at(started)
            row["updated_at"] = _at(rng.uniform(started, now))
            row["progress_collect"] = round(rng.uniform(0.02, 0.97), 3)
            if rng.random() < 0.05:
                row["status"] = S.STOPPING.value
            else:
                row["status"] = (S.ACTIVE if plan.type is TaskType.SCAN else S.CONNECTING).value
            row["version"] = 3
        elif plan.state == PROCESSING:
            sort_now = self.processing(plan, row, acquires)
        elif plan.state == SCHEDULED:
            row["start_time"] = _at(now + rng.uniform(600, 60 * DAY))
            row["wait_reason"] = WaitReason.NOT_DUE.value
        elif plan.state == WAITING:
            reasons = [WaitReason.EXPLORER_BUSY, WaitReason.EXPLORER_OFFLINE]
            if plan.zone_id is not None:
                reasons.append(WaitReason.ZONE_FULL)
            if plan.template is not None:
                reasons.append(WaitReason.PREVIOUS_RUN_ACTIVE)
            row["wait_reason"] = rng.choice(reasons).value
        elif plan.state == REMOVED:
            row["start_time"] = _at(c + rng.uniform(HOUR, 20 * DAY))
            removed = min(c + rng.uniform(HOUR, 2 * DAY), now - 60)
            row.update(
                status=S.STOPPED.value,
                finished_at=_at(removed),
                removed_at=_at(removed),
                updated_at=_at(removed),
                version=3,
            )
        self.run_columns(plan, row)
        row.update(placement(row, previous=None, now=_at(sort_now)))
        return row

    def run_columns(self, plan: _Plan, row: dict[str, Any]) -> None:
        """What the scheduler, the explorer protocol and the processing queue keep per task."""
        if plan.kind == RUN:
            row["occurrence_at"] = row["start_time"]
        status = row["status"]
        if row["data_acquisition_started_at"] is not None:
            row["attempt"] = 1
            row["attempt_token"] = f"{plan.id:032x}"
            row["last_report_at"] = row["data_acquisition_ended_at"] or row["updated_at"]
        if status in (S.STOPPING.value, S.STOPPED.value):
            row["stop_requested_at"] = row["finished_at"] or row["updated_at"]
        if row["data_processing_started_at"] is not None:
            row["processing_attempts"] = 3 if status == S.CANCELED.value else 1
        if status == S.PROCESSING.value:
            row["lease_owner"] = "console-1/worker-1"
            row["lease_expires_at"] = _at(self.now + 60)
        if row["size_data"]:
            row["data_sha256"] = f"{plan.id:064x}"

    def template(self, plan: _Plan, row: dict[str, Any]) -> dict[str, Any]:
        rng = self.rng
        _, period, rule = FREQUENCIES[plan.frequency]
        last = plan.last_run
        row.update(
            recur=True,
            recur_frequency=plan.frequency,
            recur_rule=rule,
            timezone=rng.choice(TIMEZONES),
            grace_period=7200 if period > HOUR else 900,
            recur_last=_at(last.created) if last else None,
            recur_last_task_id=last.id if last else None,
            updated_at=_at(last.created) if last else row["created_at"],
            version=2 + (5 if last else 0),
        )
        if plan.state == LIVE_TEMPLATE:
            row["wait_reason"] = WaitReason.NOT_DUE.value
            row["recur_next"] = _at(self.now + rng.uniform(60, period))
        else:
            row["status"] = S.PAUSED.value
        if plan.state == REMOVED:
            removed = _at(min(self.now - 60, plan.ended + rng.uniform(60, DAY)))
            row.update(removed_at=removed, updated_at=removed)
        row.update(placement(row, previous=None, now=row["updated_at"]))
        return row

    def finished(self, plan: _Plan, row: dict[str, Any], acquires: bool, runner: str) -> float:
        """Fill a terminal task's timeline; returns when it finished."""
        rng = self.rng
        c = plan.created
        outcome = rng.random()
        if outcome < 0.94:
            status = S.PROCESSED
        elif outcome < 0.98 or not acquires:
            status = S.CANCELED
        else:
            status = S.STOPPED
        # Offsets from creation: explorer pickup, acquisition, queue wait, processing.
        pickup = rng.uniform(0.5, 20) if acquires else rng.uniform(0.05, 2)
        scan_median = 600 if plan.type is TaskType.SCAN else 120
        acquisition = 0.0
        if acquires:
            acquisition = min(6 * HOUR, rng.lognormvariate(math.log(scan_median), 1.0))
        wait = min(2 * HOUR, rng.lognormvariate(math.log(15), 1.2))
        work = min(2 * HOUR, rng.lognormvariate(math.log(45), 1.0))
        stages = [pickup, acquisition, wait, work]
        failed_at = len(stages)
        if status is S.CANCELED:
            failed_at = rng.choice((0, 1, 1, 3)) if acquires else 3
        elif status is S.STOPPED:
            failed_at = 1
        if failed_at == 0:
            stages = [float(row["grace_period"])]
        else:
            stages = stages[: failed_at + 1]
            if failed_at < 4:
                stages[-1] *= rng.uniform(0.05, 0.95)
        total = sum(stages)
        limit = self.now - 5 - c
        if total > limit:
            factor = limit * rng.uniform(0.3, 0.95) / total
            stages = [stage * factor for stage in stages]
        marks = list(itertools.accumulate(stages, initial=c))
        finished = marks[-1]
        if acquires and failed_at >= 1:
            row["data_acquisition_started_at"] = _at(marks[1])
            if failed_at >= 2:
                row["data_acquisition_ended_at"] = _at(marks[2])
        if failed_at >= 3:
            row["data_processing_started_at"] = _at(marks[3])
        row["progress_collect"] = (
            1.0 if failed_at >= 2 or not acquires else round(rng.uniform(0.05, 0.95), 3)
        )
        if status is S.PROCESSED:
            row["data_processing_ended_at"] = _at(finished)
            summary = (
                self.change_summary(plan)
                if plan.kind not in (SYSTEM,)
                and plan.type in (TaskType.SCAN, TaskType.CONNECTOR, TaskType.IMPORT)
                else None
            )
            if summary is not None:
                row["change_summary"] = summary
                for key in ("new", "changed", "offline", "online", "unchanged"):
                    row[f"cs_{key}"] = summary[key]
                row["stats"] = {
                    "hosts_up": summary["total"],
                    "records": summary["total"] + 2,
                    "duration_s": round(acquisition, 1),
                }
                row["size_data"] = summary["total"] * rng.randint(900, 2400)
                row["size_results"] = summary["total"] * rng.randint(200, 600)
            row["progress_process"] = 1.0
            row["version"] = 6 if acquires else 4
        elif status is S.CANCELED:
            row["error"] = self.error(plan, failed_at, runner)
            row["version"] = 2 + failed_at
        else:
            row["version"] = 4
        row.update(status=status.value, finished_at=_at(finished), updated_at=_at(finished))
        return finished

    def error(self, plan: _Plan, failed_at: int, runner: str) -> str:
        if failed_at == 0:
            if plan.zone_id is not None:
                zone = plan.org.zone_names.get(plan.zone_id, "its hosted zone")
                return (
                    f"could not launch within the grace period: hosted zone {zone} had no free slot"
                )
            return f"could not launch within the grace period: explorer {runner} was offline"
        if failed_at == 1:
            if plan.type is TaskType.CONNECTOR:
                return (
                    "could not connect to the remote system: authentication failed;"
                    " check the credential"
                )
            return f"explorer {runner} went silent for 10 minutes while scanning; task canceled"
        return self.rng.choice(
            (
                "the uploaded data failed verification (checksum mismatch); run the task again",
                "processing gave up after 3 attempts: the worker's lease was lost each time",
            )
        )

    def processing(self, plan: _Plan, row: dict[str, Any], acquires: bool) -> float:
        """Fill a task in the processing tab; returns when it entered the tab (queue order)."""
        rng = self.rng
        c, now = plan.created, self.now
        if acquires:
            started = c + rng.uniform(1, 20)
            entered = rng.uniform(started + 1, now - 10)
            row["data_acquisition_started_at"] = _at(started)
            row["data_acquisition_ended_at"] = _at(entered)
            row["progress_collect"] = 1.0
        else:
            entered = c + rng.uniform(0.05, 2)
        roll = rng.random()
        if roll < 0.1 and acquires:
            status = S.SCANNED if plan.type is TaskType.SCAN else S.CONNECTED
        elif roll < 0.7:
            status = S.PROCESSING_QUEUED
        else:
            status = S.PROCESSING
            begun = rng.uniform(entered, now - 1)
            row["data_processing_started_at"] = _at(begun)
            row["progress_process"] = round(rng.uniform(0.01, 0.99), 3)
        row["status"] = status.value
        row["updated_at"] = _at(max(entered, now - rng.uniform(1, 120)))
        row["version"] = 4
        return entered


def task_rows(plans: Sequence[_Plan], *, now: datetime, seed: int) -> Iterator[dict[str, Any]]:
    """The rows of the planned tasks, in id order, with every column of `tasks`."""
    builder = _RowBuilder(random.Random(seed + 1), now.timestamp())
    for plan in plans:
        yield builder.row(plan)
