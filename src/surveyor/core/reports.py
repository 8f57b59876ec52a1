"""Reports (SPEC §10, docs/reports.md): which reports there are, and how their results are
built from counts the store gathers.

A report's result is plain JSON: a summary (label and value pairs) and sections, each a table
(`columns`, `rows`) that may be drawn as a chart (`bars`, `stacked` bars or a time `series`)
and may highlight cells that stand out (`highlights`: [row, column] pairs) with notes in words.
The pages, the downloads (HTML, JSON, CSV) and the charts all read that one shape, so a
result stored once is shown the same everywhere.

Nothing here reads the database: `store/reports.py` gathers the counts, this module turns
them into results, which keeps the arithmetic testable on its own.
"""

from __future__ import annotations

import ipaddress
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from surveyor.core.outliers import device_type, os_family

#: The `type` of report tasks' params key naming the report they refresh.
REPORT_PARAM = "report"
#: Days the time series and "new" counts look back over.
HISTORY_DAYS = 30
#: Certificates expiring within this many days are listed.
EXPIRY_DAYS = 30
#: Bars shown per chart; the rest are summed as "Other".
TOP = 12
#: External assets listed one by one in a stored result (the counts cover all of them).
MAX_LISTED = 1000
#: A site's share differs from the organization's enough to be highlighted when it is at
#: least this many percentage points away and at least half as large again (or half as small).
HIGHLIGHT_POINTS = 5.0
HIGHLIGHT_RATIO = 1.5
UNKNOWN = "Unknown"
OTHER = "Other"


@dataclass(frozen=True)
class ReportDefinition:
    """One report: its id (in addresses and task params), its name (the task's name) and
    what it shows."""

    id: str
    name: str
    description: str


OVERVIEW = ReportDefinition(
    "overview",
    "Organization overview",
    "Assets by site, device type, OS and service; new and offline assets over time.",
)
COMPARISON = ReportDefinition(
    "comparison",
    "Site and organization comparison",
    "Sites side by side, with where they differ from the organization highlighted.",
)
EXTERNAL = ReportDefinition(
    "external",
    "External assets",
    "Assets with public addresses or names, their exposed services, and certificates "
    f"expiring within {EXPIRY_DAYS} days.",
)
REPORTS: tuple[ReportDefinition, ...] = (OVERVIEW, COMPARISON, EXTERNAL)
_BY_ID = {report.id: report for report in REPORTS}


def report_named(report_id: str) -> ReportDefinition | None:
    return _BY_ID.get(report_id)


# Counts the store gathers -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AssetGroup:
    """How many assets of a site share an OS text, a recorded device type and being online,
    with their open services, how many are new and how many are unusual."""

    site_id: int
    os: str
    device_type: str
    alive: bool
    assets: int
    services: int
    new: int
    unusual: int


@dataclass(frozen=True, slots=True)
class ServiceGroup:
    """How many assets of a site have one open service (protocol, port, name)."""

    site_id: int
    proto: str
    port: int
    name: str
    assets: int


@dataclass(frozen=True, slots=True)
class RunCounts:
    """One processing run's new and offline counts and when it ended."""

    ended_at: datetime
    new: int
    offline: int


@dataclass(frozen=True)
class Inventory:
    """What the overview and the comparison read: the organization's sites, its assets and
    services grouped, and its processing runs over the history window."""

    sites: Mapping[int, str]
    assets: Sequence[AssetGroup]
    services: Sequence[ServiceGroup]
    runs: Sequence[RunCounts] = ()


@dataclass(frozen=True, slots=True)
class ExposedService:
    proto: str
    port: int
    name: str
    product: str
    tls_subject: str
    tls_issuer: str
    tls_not_after: str


@dataclass(frozen=True)
class ExternalAsset:
    """An asset with a public address or a public name, and its open services."""

    id: int
    site: str
    address: str
    public_addresses: tuple[str, ...]
    public_names: tuple[str, ...]
    services: tuple[ExposedService, ...] = field(default=())


# Public addresses and names ------------------------------------------------------------------

#: Name suffixes for private use (RFC 6761, 6762, 8375, ICANN's `.internal`) and those common
#: inside networks; a name ending in one is not public.
PRIVATE_SUFFIXES = (
    "local",
    "localhost",
    "localdomain",
    "internal",
    "intranet",
    "private",
    "lan",
    "home",
    "home.arpa",
    "corp",
    "lab",
    "test",
    "example",
    "invalid",
    "arpa",
)


def is_public_address(address: str) -> bool:
    """An address reachable from the internet: globally routable (not private, shared,
    loopback, link-local, documentation or multicast)."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return False
    return parsed.is_global and not parsed.is_multicast


def is_public_name(name: str) -> bool:
    """A fully qualified DNS name outside the private-use suffixes: at least two labels, the
    last one alphabetic."""
    labels = name.strip().rstrip(".").lower().split(".")
    if len(labels) < 2 or not all(labels) or not labels[-1].isalpha():
        return False
    return not any(
        ".".join(labels[-len(suffix.split(".")) :]) == suffix for suffix in PRIVATE_SUFFIXES
    )


def external_facts(
    addresses: Iterable[str], hostnames: Iterable[str]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """An asset's public addresses and public names."""
    return (
        tuple(a for a in addresses if is_public_address(a)),
        tuple(n for n in hostnames if is_public_name(n)),
    )


def parse_time(text: str) -> datetime | None:
    """A certificate time as stored (RFC 3339), or None when it is not one."""
    text = text.strip()
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


# Building results -----------------------------------------------------------------------------


def section(
    section_id: str,
    title: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    chart: str | None = None,
    description: str = "",
    highlights: Sequence[tuple[int, int]] = (),
    notes: Sequence[str] = (),
) -> dict[str, Any]:
    return {
        "id": section_id,
        "title": title,
        "description": description,
        "chart": chart,
        "columns": list(columns),
        "rows": [list(row) for row in rows],
        "highlights": [list(cell) for cell in highlights],
        "notes": list(notes),
    }


def _result(
    report: ReportDefinition,
    now: datetime,
    summary: Sequence[tuple[str, Any]],
    sections: Sequence[dict[str, Any]],
) -> dict[str, Any]:
    return {
        "report": report.id,
        "name": report.name,
        "generated_at": now.astimezone(UTC)
        .replace(microsecond=0)
        .isoformat()
        .replace("+00:00", "Z"),
        "summary": [[label, value] for label, value in summary],
        "sections": list(sections),
    }


def top_rows(counter: Counter[str], limit: int = TOP) -> list[list[Any]]:
    """The most frequent labels (ties by label), the rest summed as "Other"."""
    ranked = sorted(counter.items(), key=lambda item: (-item[1], item[0]))
    rows: list[list[Any]] = [[label, count] for label, count in ranked[:limit]]
    rest = sum(count for _label, count in ranked[limit:])
    if rest:
        rows.append([OTHER, rest])
    return rows


def service_label(proto: str, port: int, name: str) -> str:
    """A service as reports name it: "ssh (tcp/22)", or "tcp/8080" without a name."""
    where = f"{proto}/{port}"
    return f"{name} ({where})" if name else where


def family_of(group: AssetGroup) -> str:
    family = os_family(group.os)
    return UNKNOWN if family == "unknown" else family


def type_of(group: AssetGroup) -> str:
    kind = device_type(group.os, group.device_type)
    return UNKNOWN if kind == "unknown" else kind.capitalize()


def days_back(now: datetime, days: int = HISTORY_DAYS) -> list[str]:
    """The last `days` UTC dates up to today, oldest first, as YYYY-MM-DD."""
    today = now.astimezone(UTC).date()
    return [(today - timedelta(days=back)).isoformat() for back in range(days - 1, -1, -1)]


def history_start(now: datetime, days: int = HISTORY_DAYS) -> datetime:
    """The start (UTC midnight) of the first day the history covers."""
    first = now.astimezone(UTC).date() - timedelta(days=days - 1)
    return datetime(first.year, first.month, first.day, tzinfo=UTC)


def overview(inventory: Inventory, now: datetime) -> dict[str, Any]:
    """The Organization overview."""
    total = sum(group.assets for group in inventory.assets)
    online = sum(group.assets for group in inventory.assets if group.alive)
    by_site: dict[int, list[int]] = {site_id: [0, 0] for site_id in inventory.sites}
    types: Counter[str] = Counter()
    families: Counter[str] = Counter()
    for group in inventory.assets:
        by_site.setdefault(group.site_id, [0, 0])[0 if group.alive else 1] += group.assets
        types[type_of(group)] += group.assets
        families[family_of(group)] += group.assets
    services: Counter[str] = Counter()
    for service in inventory.services:
        services[service_label(service.proto, service.port, service.name)] += service.assets
    days = days_back(now)
    series = {day: [0, 0] for day in days}
    for run in inventory.runs:
        day = run.ended_at.astimezone(UTC).date().isoformat()
        if day in series:
            series[day][0] += run.new
            series[day][1] += run.offline
    ranked = sorted(
        (
            (inventory.sites.get(site_id, f"Site {site_id}"), on, off)
            for site_id, (on, off) in by_site.items()
        ),
        key=lambda item: (-(item[1] + item[2]), item[0]),
    )
    site_rows = [list(item) for item in ranked]
    sections = [
        section(
            "by_site",
            "Assets by site",
            ["Site", "Online", "Offline"],
            site_rows,
            chart="stacked",
            description="Each site's assets, online and offline.",
        ),
        section(
            "by_type",
            "Assets by device type",
            ["Device type", "Assets"],
            top_rows(types),
            chart="bars",
            description="The device type the inventory records, else the one its OS names.",
        ),
        section(
            "by_os",
            "Assets by operating system",
            ["Operating system", "Assets"],
            top_rows(families),
            chart="bars",
            description="Operating systems by family.",
        ),
        section(
            "by_service",
            "Assets by open service",
            ["Service", "Assets"],
            top_rows(services),
            chart="bars",
            description="How many assets have each service open.",
        ),
        section(
            "over_time",
            f"New and offline assets, last {HISTORY_DAYS} days",
            ["Day", "New", "Offline"],
            [[day, *series[day]] for day in days],
            chart="series",
            description="Assets found for the first time and assets gone offline, per day "
            "(UTC), as processing counted them.",
        ),
    ]
    summary = [
        ("Assets", total),
        ("Online", online),
        ("Offline", total - online),
        ("Sites", len(inventory.sites)),
        ("Open services", sum(group.services for group in inventory.assets)),
        (f"New in {HISTORY_DAYS} days", sum(group.new for group in inventory.assets)),
    ]
    return _result(OVERVIEW, now, summary, sections)


def _share(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 1) if whole else 0.0


def stands_out(value: float, reference: float) -> bool:
    """Whether a site's share differs enough from the organization's to be highlighted."""
    return abs(value - reference) >= HIGHLIGHT_POINTS and _ratio_apart(value, reference)


def _ratio_apart(value: float, reference: float) -> bool:
    """One is at least HIGHLIGHT_RATIO times the other (or one is zero)."""
    low, high = sorted((value, reference))
    return low == 0 or high / low >= HIGHLIGHT_RATIO


@dataclass
class _SiteFigures:
    assets: int = 0
    online: int = 0
    services: int = 0
    new: int = 0
    unusual: int = 0
    families: Counter[str] = field(default_factory=Counter)
    types: Counter[str] = field(default_factory=Counter)


def comparison(inventory: Inventory, now: datetime) -> dict[str, Any]:
    """Sites side by side, with the organization as a whole; cells where a site differs from
    the organization are highlighted and said in words."""
    figures: dict[int, _SiteFigures] = {site_id: _SiteFigures() for site_id in inventory.sites}
    whole = _SiteFigures()
    for group in inventory.assets:
        for target in (figures.setdefault(group.site_id, _SiteFigures()), whole):
            target.assets += group.assets
            target.online += group.assets if group.alive else 0
            target.services += group.services
            target.new += group.new
            target.unusual += group.unusual
            target.families[family_of(group)] += group.assets
            target.types[type_of(group)] += group.assets
    names = {site_id: inventory.sites.get(site_id, f"Site {site_id}") for site_id in figures}
    order = sorted(figures, key=lambda site_id: (-figures[site_id].assets, names[site_id]))
    columns = [
        "Site",
        "Assets",
        "Offline %",
        "Services per asset",
        f"New in {HISTORY_DAYS} days %",
        "Unusual (outlier ≥ 60) %",
        "Most common OS",
    ]

    def row(name: str, f: _SiteFigures) -> list[Any]:
        common = top_rows(f.families, 1)[0][0] if f.families else "—"
        return [
            name,
            f.assets,
            _share(f.assets - f.online, f.assets),
            round(f.services / f.assets, 2) if f.assets else 0.0,
            _share(f.new, f.assets),
            _share(f.unusual, f.assets),
            common,
        ]

    reference = row("Whole organization", whole)
    rows = [row(names[site_id], figures[site_id]) for site_id in order]
    highlights: list[tuple[int, int]] = []
    notes: list[str] = []
    for index, values in enumerate(rows):
        if not values[1]:
            continue
        for column in (2, 4, 5):
            if stands_out(values[column], reference[column]):
                highlights.append((index, column))
                notes.append(
                    f"{values[0]}: {columns[column].removesuffix(' %').lower()} "
                    f"{values[column]}%, against {reference[column]}% across the organization"
                )
        per_asset, whole_per_asset = values[3], reference[3]
        if abs(per_asset - whole_per_asset) >= 1 and _ratio_apart(per_asset, whole_per_asset):
            highlights.append((index, 3))
            notes.append(
                f"{values[0]}: {per_asset} services per asset, against {whole_per_asset} "
                "across the organization"
            )
        if values[6] != reference[6] and values[6] != "—":
            highlights.append((index, 6))
            notes.append(
                f"{values[0]}: mostly {values[6]}, where the organization is mostly {reference[6]}"
            )
    rows.append(reference)
    type_names = [label for label, _count in top_rows(whole.types, 5) if label != OTHER]
    type_rows = []
    for site_id in order:
        counts = figures[site_id].types
        shown = [counts.get(label, 0) for label in type_names]
        type_rows.append([names[site_id], *shown, figures[site_id].assets - sum(shown)])
    type_columns = ["Site", *type_names, OTHER]
    if all(row[-1] == 0 for row in type_rows):
        type_columns.pop()
        type_rows = [row[:-1] for row in type_rows]
    per_site_services: dict[str, dict[int, int]] = defaultdict(dict)
    service_totals: Counter[str] = Counter()
    for service in inventory.services:
        label = service_label(service.proto, service.port, service.name)
        per_site_services[label][service.site_id] = (
            per_site_services[label].get(service.site_id, 0) + service.assets
        )
        service_totals[label] += service.assets
    service_rows: list[list[Any]] = []
    service_highlights: list[tuple[int, int]] = []
    service_notes: list[str] = []
    for index, (label, _count) in enumerate(
        item for item in top_rows(service_totals) if item[0] != OTHER
    ):
        per_site = [per_site_services[label].get(site_id, 0) for site_id in order]
        service_rows.append([label, *per_site])
        holders = [names[site_id] for site_id, n in zip(order, per_site, strict=True) if n]
        if len(order) > 1 and len(holders) < len(order):
            service_highlights.extend(
                (index, column + 1) for column, n in enumerate(per_site) if n == 0
            )
            service_notes.append(f"{label}: open only in {', '.join(holders)}")
    sections = [
        section(
            "sites",
            "Sites side by side",
            columns,
            rows,
            description="Each site's figures next to the whole organization's (last row).",
            highlights=highlights,
            notes=notes,
        ),
        section(
            "types_by_site",
            "Device types by site",
            type_columns,
            type_rows,
            chart="stacked",
            description="Each site's assets by device type.",
        ),
        section(
            "services_by_site",
            "Open services by site",
            ["Service", *(names[site_id] for site_id in order)],
            service_rows,
            description="Assets with each of the organization's most common services, per "
            "site; a service missing from some sites is highlighted.",
            highlights=service_highlights,
            notes=service_notes,
        ),
    ]
    summary = [
        ("Sites", len(figures)),
        ("Assets", whole.assets),
        ("Differences", len(notes) + len(service_notes)),
    ]
    return _result(COMPARISON, now, summary, sections)


def external(found: Sequence[ExternalAsset], now: datetime) -> dict[str, Any]:
    """External assets, their exposed services, and certificates expiring soon."""
    horizon = now + timedelta(days=EXPIRY_DAYS)
    services: Counter[str] = Counter()
    expiring: list[tuple[datetime, list[Any]]] = []
    listed: list[list[Any]] = []
    exposed = 0
    for asset in sorted(found, key=lambda a: (a.site, a.address, a.id)):
        exposed += len(asset.services)
        for service in asset.services:
            services[service_label(service.proto, service.port, service.name)] += 1
            not_after = parse_time(service.tls_not_after)
            if not_after is not None and not_after <= horizon:
                days = (not_after - now).total_seconds() / 86400
                expiring.append(
                    (
                        not_after,
                        [
                            asset.address,
                            f"{service.proto}/{service.port}",
                            service.tls_subject,
                            service.tls_issuer,
                            not_after.isoformat().replace("+00:00", "Z"),
                            "expired" if days < 0 else f"{int(days)} days",
                        ],
                    )
                )
        if len(listed) < MAX_LISTED:
            listed.append(
                [
                    asset.address,
                    asset.site,
                    ", ".join(asset.public_addresses) or "—",
                    ", ".join(asset.public_names) or "—",
                    ", ".join(service_label(s.proto, s.port, s.name) for s in asset.services)
                    or "—",
                ]
            )
    expiring.sort(key=lambda item: (item[0], item[1][0], item[1][1]))
    expired = sum(1 for moment, _row in expiring if moment < now)
    asset_notes = []
    if len(found) > MAX_LISTED:
        asset_notes.append(f"The first {MAX_LISTED} of {len(found)} external assets are listed.")
    sections = [
        section(
            "exposed_services",
            "Exposed services",
            ["Service", "External assets"],
            top_rows(services),
            chart="bars",
            description="Open services on assets with a public address or name.",
        ),
        section(
            "expiring_certificates",
            f"Certificates expiring within {EXPIRY_DAYS} days",
            ["Asset", "Service", "Subject", "Issuer", "Expires", "Left"],
            [row for _moment, row in expiring],
            description="Certificates of exposed services, soonest first; expired ones "
            "are highlighted.",
            highlights=[
                (index, 5) for index, (moment, _row) in enumerate(expiring) if moment < now
            ],
        ),
        section(
            "external_assets",
            "External assets",
            ["Asset", "Site", "Public addresses", "Public names", "Services"],
            listed,
            description="Assets with a public address or a public DNS name.",
            notes=asset_notes,
        ),
    ]
    summary = [
        ("External assets", len(found)),
        ("With a public address", sum(1 for a in found if a.public_addresses)),
        ("With a public name only", sum(1 for a in found if not a.public_addresses)),
        ("Exposed services", exposed),
        (f"Certificates expiring in {EXPIRY_DAYS} days", len(expiring) - expired),
        ("Certificates expired", expired),
    ]
    return _result(EXTERNAL, now, summary, sections)


# Downloads ------------------------------------------------------------------------------------


CSV_HEADER = ("section", "row", "column", "value")


def csv_rows(result: Mapping[str, Any]) -> Iterator[list[Any]]:
    """A result in long form for CSV, one value a line: section, row label, column, value
    (the summary is the section `summary`)."""
    for label, value in result.get("summary", []):
        yield ["summary", label, "value", value]
    for part in result.get("sections", []):
        columns = part["columns"]
        for row in part["rows"]:
            for column, value in zip(columns[1:], row[1:], strict=False):
                yield [part["id"], row[0], column, value]
