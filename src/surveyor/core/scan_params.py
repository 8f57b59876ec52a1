"""Scan `params` (SPEC §7): validated once at task creation into a `ScanParams`.

Every error is a `ScanParamsError` carrying the params key (`field`), a message a user can act on
and, when one token is to blame, that token, so the API can answer
`{"error": {"code": "invalid_params", "message": ..., "details": {"field": ..., "token": ...}}}`.
Values that arrive as strings from forms (`"1000"`, `"true"`) are accepted alongside JSON types.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from surveyor.core.field_error import FieldError
from surveyor.core.ports import PortError, format_ports, parse_ports
from surveyor.core.targets import (
    DEFAULT_IPV6_MIN_PREFIX,
    Scope,
    TargetError,
    TargetSet,
    build_scope,
    check_scope_cap,
    parse_targets,
    quote_token,
    split_entries,
)


class Probe(StrEnum):
    """Service probes run on open ports (SPEC §7), in the order they are listed."""

    BANNER = "banner"
    HTTP = "http"
    TLS = "tls"
    RDNS = "rdns"


#: The params keys a scan accepts, in the order the docs and errors list them.
SCAN_PARAM_KEYS: Final = (
    "targets",
    "excludes",
    "tcp_ports",
    "rate",
    "max_host_rate",
    "max_sockets",
    "probes",
    "host_ping",
)

DEFAULT_TCP_PORTS: Final = "default"
DEFAULT_RATE: Final = 1000
MAX_RATE: Final = 1_000_000
DEFAULT_MAX_HOST_RATE: Final = 100
DEFAULT_MAX_SOCKETS: Final = 512
MAX_SOCKETS: Final = 65535
#: The per-task scope cap of SPEC §7 until an admin raises it (the caller passes the current one).
DEFAULT_SCOPE_CAP: Final = 65536
#: Port probes per task (addresses in scope times ports) until an admin raises it: a full scope
#: cap of addresses on 1,000 ports each. Without it, 65,536 addresses on 65,535 ports (4.3
#: billion probes, days of traffic) would pass the scope cap.
DEFAULT_PROBE_CAP: Final = DEFAULT_SCOPE_CAP * 1000


class ScanParamsError(FieldError):
    """Invalid scan params: the key at fault, a message, and the offending token if any."""


@dataclass(frozen=True, slots=True)
class ScanParams:
    """Validated scan parameters; `scope` is targets minus excludes, already within the cap."""

    targets: TargetSet
    excludes: TargetSet
    scope: Scope
    tcp_ports: tuple[int, ...]
    rate: int = DEFAULT_RATE
    max_host_rate: int = DEFAULT_MAX_HOST_RATE
    max_sockets: int = DEFAULT_MAX_SOCKETS
    probes: tuple[Probe, ...] = tuple(Probe)
    host_ping: bool = True

    @property
    def scope_size(self) -> int:
        return self.scope.size

    def to_params(self) -> dict[str, object]:
        """The normalised params: what to store, and valid input to `validate_scan_params`."""
        return {
            "targets": self.targets.text,
            "excludes": self.excludes.text,
            "tcp_ports": format_ports(self.tcp_ports),
            "rate": self.rate,
            "max_host_rate": self.max_host_rate,
            "max_sockets": self.max_sockets,
            "probes": [str(probe) for probe in self.probes],
            "host_ping": self.host_ping,
        }

    def to_json(self) -> dict[str, object]:
        """The normalised params plus derived counts, for API answers and task data."""
        return {
            **self.to_params(),
            "scope_size": self.scope_size,
            "ports_count": len(self.tcp_ports),
        }


def validate_scan_params(
    params: Mapping[str, object],
    *,
    default_targets: str,
    default_excludes: str,
    scope_cap: int,
    probe_cap: int | None = None,
    ipv6_min_prefix: int = DEFAULT_IPV6_MIN_PREFIX,
) -> ScanParams:
    """Validate a scan's params; missing targets fall back to the site's scope, and the
    site's excludes always apply on top of the task's own. `probe_cap` bounds addresses
    times ports (the console passes the organization's; None: no bound).

    A key set to null counts as missing. Raises `ScanParamsError` on the first problem.
    """
    unknown = sorted(str(key) for key in params if key not in SCAN_PARAM_KEYS)
    if unknown:
        names = ", ".join(f"'{key}'" for key in unknown)
        noun = "parameter" if len(unknown) == 1 else "parameters"
        raise ScanParamsError(
            unknown[0],
            f"unknown {noun} {names} (valid: {', '.join(SCAN_PARAM_KEYS)})",
            unknown[0],
        )
    given = {key: value for key, value in params.items() if value is not None}
    try:
        from_site = "targets" not in given
        targets = parse_targets(
            given.get("targets", default_targets), ipv6_min_prefix=ipv6_min_prefix
        )
        if not targets and from_site:
            raise TargetError("no targets given, and the site has no default scope")
        # The site's excludes always apply (they often protect fragile devices); a task's own
        # excludes add to them.
        site_excludes = parse_targets(default_excludes, field="excludes", ipv6_min_prefix=None)
        own_excludes = parse_targets(
            given.get("excludes", ""), field="excludes", ipv6_min_prefix=None
        )
        merged = dict.fromkeys((*site_excludes.entries, *own_excludes.entries))
        excludes = TargetSet(tuple(merged))
        scope = build_scope(targets, excludes)
        check_scope_cap(scope, scope_cap)
        tcp_ports = parse_ports(given.get("tcp_ports", DEFAULT_TCP_PORTS))
    except (TargetError, PortError) as error:
        raise ScanParamsError(error.field, error.message, error.token) from error
    if probe_cap is not None:
        check_probe_cap(scope.size, len(tcp_ports), probe_cap)
    return ScanParams(
        targets=targets,
        excludes=excludes,
        scope=scope,
        tcp_ports=tcp_ports,
        rate=_whole_number(
            given, "rate", DEFAULT_RATE, MAX_RATE, "a whole number of probes per second"
        ),
        max_host_rate=_whole_number(
            given,
            "max_host_rate",
            DEFAULT_MAX_HOST_RATE,
            MAX_RATE,
            "a whole number of probes per second to one host",
        ),
        max_sockets=_whole_number(
            given, "max_sockets", DEFAULT_MAX_SOCKETS, MAX_SOCKETS, "a whole number of sockets"
        ),
        probes=_probes(given),
        host_ping=_boolean(given, "host_ping", default=True),
    )


def check_probe_cap(addresses: int, ports: int, cap: int) -> None:
    """Refuse a scan that would make more port probes than the per-task cap, naming both
    numbers it multiplies."""
    probes = addresses * ports
    if probes > cap:
        raise ScanParamsError(
            "tcp_ports",
            f"the scan would make {probes:,} port probes ({addresses:,} "
            f"address{'es' if addresses != 1 else ''}, {ports:,} "
            f"port{'s' if ports != 1 else ''} each), more than the cap of {cap:,} per task; "
            "narrow the targets or the ports, or ask an admin to raise the cap",
        )


def _shown(value: object) -> str:
    """A value as an error message shows it; safe for any JSON value, however large."""
    if isinstance(value, str):
        return quote_token(value)
    try:
        text = repr(value)
    except ValueError:  # ints beyond the interpreter's digit limit
        text = f"a {type(value).__name__} too large to show"
    return text if len(text) <= 80 else text[:77] + "..."


def _token(value: object) -> str:
    return value if isinstance(value, str) else _shown(value)


def _whole_number(
    given: Mapping[str, object], key: str, default: int, maximum: int, meaning: str
) -> int:
    value = given.get(key, default)
    number = _as_whole_number(value, maximum)
    if number is None:
        raise ScanParamsError(key, f"'{key}' must be {meaning}, got {_shown(value)}", _token(value))
    if not 1 <= number <= maximum:
        raise ScanParamsError(
            key, f"'{key}' must be between 1 and {maximum:,}, got {_shown(value)}", _token(value)
        )
    return number


def _as_whole_number(value: object, maximum: int) -> int | None:
    """An int from JSON or a form; anything above `maximum` may come back as maximum + 1."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value) if abs(value) <= maximum else maximum + 1
    if isinstance(value, str) and re.fullmatch(r"\s*[0-9]+\s*", value):
        digits = value.strip().lstrip("0") or "0"
        # the length check keeps absurdly long digit strings away from int()
        return int(digits) if len(digits) <= len(str(maximum)) else maximum + 1
    return None


def _boolean(given: Mapping[str, object], key: str, *, default: bool) -> bool:
    value = given.get(key, default)
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ScanParamsError(key, f"'{key}' must be true or false, got {_shown(value)}", _token(value))


def _probes(given: Mapping[str, object]) -> tuple[Probe, ...]:
    value = given.get("probes", list(Probe))
    names: list[str]
    if isinstance(value, str):
        names = [entry.text for entry in split_entries(value)]
    elif isinstance(value, list | tuple) and all(isinstance(item, str) for item in value):
        names = [str(item).strip() for item in value if str(item).strip()]
    else:
        raise ScanParamsError(
            "probes", f"'probes' must be a list of probe names, got {_shown(value)}", _token(value)
        )
    chosen: set[Probe] = set()
    for name in names:
        try:
            chosen.add(Probe(name.lower()))
        except ValueError:
            valid = ", ".join(Probe)
            raise ScanParamsError(
                "probes", f"{quote_token(name)} is not a probe (probes: {valid})", name
            ) from None
    return tuple(probe for probe in Probe if probe in chosen)


def scan_params_brief(params: Mapping[str, object]) -> str:
    """A scan's stored params in one line, for lists and the task card: targets, ports, rate."""
    parts = []
    targets = str(params.get("targets") or "").strip()
    if targets:
        parts.append(targets if len(targets) <= 60 else targets[:57] + "…")
    if params.get("excludes"):
        parts.append(f"excluding {params['excludes']}")
    if params.get("tcp_ports"):
        ports = str(params["tcp_ports"])
        count = params.get("ports_count")
        shown = ports if len(ports) <= 40 else f"{count} ports" if count else ports[:37] + "…"
        parts.append(f"TCP {shown}")
    if params.get("rate"):
        parts.append(f"{params['rate']} probes/s")
    size = params.get("scope_size")
    if isinstance(size, int) and size:
        parts.append(f"{size} address" if size == 1 else f"{size:,} addresses")
    return " · ".join(parts)
