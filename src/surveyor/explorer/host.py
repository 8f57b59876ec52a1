"""What an explorer tells its console about the machine it runs on."""

from __future__ import annotations

import contextlib
import ipaddress
import platform
import socket
from urllib.parse import urlsplit

from surveyor import __version__
from surveyor.core.explorer_protocol import HostInfo

MAX_ADDRESSES = 32


def _address_towards(host: str, port: int) -> str | None:
    """The local address this machine uses to reach `host`. Connecting a UDP socket only
    picks a route; no packet is sent."""
    with contextlib.suppress(OSError, ValueError):
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.connect((host, port))
            return str(probe.getsockname()[0])
    return None


def local_addresses(console_url: str) -> tuple[str, ...]:
    """This machine's addresses: the one facing the console, and its host name's."""
    found: set[str] = set()
    parts = urlsplit(console_url)
    if parts.hostname:
        with contextlib.suppress(OSError):
            for info in socket.getaddrinfo(
                parts.hostname, parts.port or 80, proto=socket.IPPROTO_TCP
            ):
                towards = _address_towards(str(info[4][0]), int(info[4][1]))
                if towards:
                    found.add(towards)
    with contextlib.suppress(OSError):
        for info in socket.getaddrinfo(socket.gethostname(), None, proto=socket.IPPROTO_TCP):
            found.add(str(info[4][0]))
    valid = []
    for address in found:
        with contextlib.suppress(ValueError):
            valid.append(ipaddress.ip_address(address.split("%", 1)[0]))
    ordered = sorted(valid, key=lambda ip: (ip.version, ip.is_loopback, int(ip)))
    return tuple(str(ip) for ip in ordered[:MAX_ADDRESSES])


def describe_host(console_url: str) -> HostInfo:
    return HostInfo(
        version=__version__,
        hostname=socket.gethostname()[:255],
        os=platform.platform()[:200],
        addresses=local_addresses(console_url),
    )
