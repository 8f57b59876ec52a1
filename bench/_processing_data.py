"""The processing benchmark's world: an inventory, and a scan of part of it.

A site holds `inventory` assets. The scan covers a block of addresses (its scope) in which
the inventory knows about `hosts` * 1.07 assets; `hosts` of them answer. Of the answers, most
are the same as before, some changed services, some come back online, some moved to another
address with their MAC, and some are new; the known assets of the scope that do not answer go
offline. Roles are spread over the scope by a seeded shuffle, so every batch sees a mix.

Every asset's content comes from one function of its number, `host_record`, and its rows are
made by the product's own parser and rules (`parse_host`, `state_digest`), so the loaded
inventory is what the product would have stored after an earlier scan.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from ipaddress import IPv4Address
from typing import Any

from surveyor.core.changes import AssetState, state_digest
from surveyor.core.fingerprint import address_key, primary_address, primary_hostname
from surveyor.core.inventory import details_columns
from surveyor.processing.records import parse_host
from surveyor.store.inventory import service_values

GENERATOR_VERSION = 7
SEED = 20_261_128
SEEN_BEFORE = datetime(2026, 2, 1, 12, 0, tzinfo=UTC)
SCAN_FINISHED = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SCOPE_BASE = int(IPv4Address("127.20.0.0"))
OUTSIDE_BASE = int(IPv4Address("127.64.0.0"))

PORT_SETS = (
    (22, 80, 443, 135, 139, 445, 3389, 8080),
    (22, 80, 443, 3306, 5432, 6379, 8443, 9100),
    (21, 22, 25, 80, 110, 143, 443, 993),
)
SSH_BANNERS = ("SSH-2.0-OpenSSH_9.6p1 Ubuntu-3ubuntu13", "SSH-2.0-OpenSSH_8.4p1 Debian-5+deb11u3")


@dataclass(frozen=True)
class Roles:
    """How many answers and silent assets of each kind the scan has."""

    unchanged: int
    changed: int
    online: int
    moved: int
    new: int
    silent: int

    @classmethod
    def for_hosts(cls, hosts: int) -> Roles:
        changed, online, moved = hosts * 3 // 100, hosts * 3 // 400, hosts * 3 // 400
        new = hosts * 39 // 1000
        silent = hosts * 107 // 1000
        return cls(hosts - changed - online - moved - new, changed, online, moved, new, silent)

    @property
    def known_in_scope(self) -> int:
        return self.unchanged + self.changed + self.online + self.moved + self.silent

    @property
    def answers(self) -> int:
        return self.unchanged + self.changed + self.online + self.moved + self.new


@dataclass(frozen=True)
class Plan:
    """Where every asset of the main site lives and what the scan does to it."""

    inventory: int
    hosts: int
    roles: Roles
    scope_size: int
    #: Scope offset of each known in-scope asset (asset number = index), by role order.
    known_offsets: list[int]
    new_offsets: list[int]
    moved_to_offsets: list[int]

    @property
    def targets(self) -> str:
        prefix = 32 - (self.scope_size.bit_length() - 1)
        return f"{IPv4Address(SCOPE_BASE)}/{prefix}"

    def role_of(self, number: int) -> str:
        roles = self.roles
        for name, size in (
            ("unchanged", roles.unchanged),
            ("changed", roles.changed),
            ("online", roles.online),
            ("moved", roles.moved),
            ("silent", roles.silent),
        ):
            if number < size:
                return name
            number -= size
        return "outside"

    def address_of(self, number: int) -> str:
        """Where asset `number` was last seen."""
        if number < self.roles.known_in_scope:
            return str(IPv4Address(SCOPE_BASE + self.known_offsets[number]))
        return str(IPv4Address(OUTSIDE_BASE + number))


def make_plan(inventory: int, hosts: int) -> Plan:
    roles = Roles.for_hosts(hosts)
    if roles.known_in_scope > inventory:
        raise SystemExit(f"an inventory of {inventory} cannot hold a scan of {hosts} hosts")
    scope_size = 1 << (2 * hosts - 1).bit_length()
    offsets = list(range(scope_size))
    random.Random(SEED).shuffle(offsets)
    known = roles.known_in_scope
    return Plan(
        inventory=inventory,
        hosts=hosts,
        roles=roles,
        scope_size=scope_size,
        known_offsets=offsets[:known],
        new_offsets=offsets[known : known + roles.new],
        moved_to_offsets=offsets[known + roles.new : known + roles.new + roles.moved],
    )


def host_record(
    number: int, address: str, *, services: int = 8, changed: bool = False
) -> dict[str, Any]:
    """What a scan reports about asset `number` (the same every time unless `changed`)."""
    ports = PORT_SETS[number % len(PORT_SETS)][:services]
    if changed:
        ports = (*ports[:-1], ports[-1] + 1)
    found = []
    for port in ports:
        service: dict[str, Any] = {"port": port, "proto": "tcp", "state": "open"}
        if port == 22:
            service["banner"] = SSH_BANNERS[number % 2]
        elif port in (80, 8080):
            title = f"Host {number}" + (" v2" if changed else "")
            service["http"] = {"status": 200, "server": "nginx/1.24.0", "title": title}
        elif port in (443, 8443):
            name = f"host-{number}.corp.example"
            service["http"] = {"status": 200, "server": "nginx/1.24.0", "title": "Sign in"}
            service["tls"] = {
                "subject": f"CN={name}",
                "issuer": "CN=Corp Issuing CA 2",
                "sans": [name],
                "not_before": "2025-06-01T00:00:00Z",
                "not_after": "2026-06-01T00:00:00Z",
                "sha256": hashlib.sha256(name.encode()).hexdigest(),
            }
        found.append(service)
    mac = None
    if number % 5 < 2:
        mac = ":".join(f"{b:02x}" for b in (0x02, 0x42, *number.to_bytes(4, "big")))
    return {
        "type": "host",
        "addresses": [address],
        "mac": mac,
        "hostnames": [f"host-{number}.corp.example"] if number % 2 == 0 else [],
        "services": found,
        "timing": {"rtt_ms": 0.4 + (number % 7) / 10},
    }


def with_mac(number: int, record: dict[str, Any]) -> dict[str, Any]:
    """Hosts that move keep their MAC, so every mover has one."""
    if record["mac"] is None:
        record["mac"] = ":".join(f"{b:02x}" for b in (0x0A, 0x42, *number.to_bytes(4, "big")))
    return record


def previous_record(plan: Plan, number: int) -> dict[str, Any]:
    """Asset `number` as the earlier scan saw it."""
    outside = number >= plan.roles.known_in_scope
    record = host_record(number, plan.address_of(number), services=1 + number % 8 if outside else 8)
    return with_mac(number, record) if plan.role_of(number) == "moved" else record


def scan_records(plan: Plan) -> Iterator[dict[str, Any]]:
    """The scan's records: config, host records in address order, summary."""
    hosts: list[tuple[int, dict[str, Any]]] = []
    for number in range(plan.roles.known_in_scope):
        role = plan.role_of(number)
        if role == "silent":
            continue
        offset = plan.known_offsets[number]
        if role == "moved":
            roles = plan.roles
            offset = plan.moved_to_offsets[number - roles.unchanged - roles.changed - roles.online]
        record = host_record(
            number, str(IPv4Address(SCOPE_BASE + offset)), changed=role == "changed"
        )
        if role == "moved":
            record = with_mac(number, record)
        hosts.append((offset, record))
    for index, offset in enumerate(plan.new_offsets):
        number = plan.inventory + index
        hosts.append((offset, host_record(number, str(IPv4Address(SCOPE_BASE + offset)))))
    hosts.sort(key=lambda item: item[0])
    yield {
        "type": "config",
        "targets": plan.targets,
        "excludes": "",
        "ports": "1-65535",
        "probes": ["banner", "http", "tls", "rdns"],
        "params": {},
    }
    for _, record in hosts:
        yield record
    yield {"type": "summary", "hosts": len(hosts), "finished_at": SCAN_FINISHED.isoformat()}


def scan_file_lines(plan: Plan) -> Iterator[bytes]:
    for record in scan_records(plan):
        yield (json.dumps(record, separators=(",", ":")) + "\n").encode()


@dataclass(frozen=True)
class AssetRows:
    """One asset's rows, as the product stores them (ids filled in by the loader)."""

    asset: dict[str, Any]
    addresses: list[str]
    names: list[str]
    services: list[dict[str, Any]]


def asset_rows(record: dict[str, Any], *, alive: bool, seen: datetime) -> AssetRows:
    """The rows of an asset made from one host record, through the product's own rules."""
    state = AssetState.of_observation(parse_host(record, 0))
    address = primary_address(state.addresses)
    asset = {
        "address": address,
        "address_key": address_key(address),
        "addresses": list(state.addresses),
        "mac": state.mac,
        "hostname": primary_hostname(state.hostnames),
        "hostnames": list(state.hostnames),
        "os": state.os,
        "alive": alive,
        "service_count": len(state.services),
        "state_hash": state_digest(state),
        "outlier": None,
        "first_seen": seen,
        "last_seen": seen,
        "changed_at": seen,
        "last_task_id": None,
        "last_run_id": None,
        **details_columns(state.details),
        "uptime_seconds": None,
        "distance": None,
    }
    services = [
        {**service_values(s), "first_seen": seen, "changed_at": seen} for s in state.services
    ]
    return AssetRows(asset, list(state.addresses), list(state.hostnames), services)


def inventory_assets(plan: Plan, *, in_scope_only: bool = False) -> Iterator[AssetRows]:
    """The main site's assets in number order (or only those in the scan's scope)."""
    count = plan.roles.known_in_scope if in_scope_only else plan.inventory
    for number in range(count):
        alive = plan.role_of(number) != "online"
        yield asset_rows(previous_record(plan, number), alive=alive, seen=SEEN_BEFORE)


def expected_summary(plan: Plan) -> dict[str, int]:
    roles = plan.roles
    return {
        "new": roles.new,
        "changed": roles.changed + roles.moved,
        "offline": roles.silent,
        "online": roles.online,
        "unchanged": roles.unchanged,
        "ignored": 0,
        "total": roles.answers,
    }
