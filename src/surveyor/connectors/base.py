"""What every connector is: the contract between a connector and the task that runs it.

A connector pulls hosts out of another system (a directory, a DNS zone, a switch) and yields
them as the `host` records of the task data format (SPEC §7), each with `source` set to the
connector's name. It knows nothing of tasks, the store or the console: the connector kind
gives it a `ConnectorConfig` (the server, the options of the task's params, and the fields of
the credential with its secrets in the clear), reads the records it yields into task data, and
turns a `ConnectorError` into the task's error. So a connector runs the same in the console
and on an explorer.

The credential fields each connector reads (SPEC §9; secret fields marked *):
- ldap: `bind_dn`, `password`*
- snmp: `version` (`2c` or `3`); v2c: `community`*; v3: `user`, `auth_protocol`, `auth_key`*,
  `priv_protocol`, `priv_key`*
- dns: `tsig_name`, `tsig_algorithm`, `tsig_secret`* (all optional)

Secrets never leave the connector: an error message names the server and the problem, and a
connector never puts a credential field into a record, an error or a log line.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from surveyor.core import kinds

#: Called as records are fetched: (objects fetched so far, objects announced or None).
Progress = Callable[[int, int | None], None]


def no_progress(done: int, total: int | None) -> None:
    """The progress callback of a caller that does not watch."""


class ConnectorError(Exception):
    """A failure a user can act on. The message names the server and the problem, such as
    "bind as cn=svc,dc=lab to ldap://127.0.0.1:3890 failed: invalid credentials", and never
    a secret."""


@dataclass(frozen=True)
class ConnectorConfig:
    """Everything one run of a connector needs."""

    #: `host[:port]` of the system to read.
    server: str
    #: The connector's options from the task's params (SPEC §9), already checked.
    options: Mapping[str, Any] = field(default_factory=dict)
    #: The credential's fields, secrets decrypted. Not shown by repr, so never logged by it.
    credential: Mapping[str, str] = field(default_factory=dict, repr=False)
    #: Seconds one network operation may take before the run fails with a timeout.
    timeout: float = 10.0
    #: Set when the task is stopped: the connector returns promptly once it is set.
    stopped: threading.Event = field(default_factory=threading.Event, compare=False)


class Connector(Protocol):
    """One kind of system Surveyor can read."""

    #: The `connector` param that names it, and the `source` of its records: ldap, dns, snmp.
    name: str
    #: The credential kind it takes (SPEC §9).
    credential_kind: str

    def check_options(self, options: Mapping[str, Any]) -> dict[str, Any]:
        """The options with defaults filled in; raises ValueError naming a bad option."""
        ...

    def verify(self, config: ConnectorConfig) -> str:
        """Connects and authenticates, then answers in plain words what worked ("bound as
        cn=svc,dc=lab to 127.0.0.1:3890"); raises ConnectorError saying what did not."""
        ...

    def fetch(
        self, config: ConnectorConfig, progress: Progress = no_progress
    ) -> Iterator[dict[str, Any]]:
        """Yields `host` records (SPEC §7) with `source` set, streaming: memory does not
        grow with the number of objects. Raises ConnectorError on any failure."""
        ...


class LinesConnector(Connector, Protocol):
    """A connector that can also hand over its records already encoded (the LDAP one):
    `connectors.run.EncodedRun` takes them so, with no dictionary made for each record."""

    def fetch_lines(
        self, config: ConnectorConfig, progress: Progress = no_progress
    ) -> Iterator[tuple[bytes, int]]:
        """The records `fetch` yields, in the same order, as the lines `encode_record`
        makes of them, a batch at a time, each with the number of records it holds."""
        ...


_REGISTRY: dict[str, Connector] = {}
_LOCK = threading.Lock()


def register(connector: Connector) -> Connector:
    """Makes a connector known by its name (a module registers its own on import)."""
    with _LOCK:
        _REGISTRY[connector.name] = connector
    kinds.register_connector_options(
        connector.name, connector.check_options, connector.credential_kind
    )
    return connector


def unregister(name: str) -> None:
    """Forget a connector (a test's own, afterwards)."""
    with _LOCK:
        _REGISTRY.pop(name, None)
    kinds.unregister_connector_options(name)


def connector_named(name: str) -> Connector:
    """The connector called `name`; raises ConnectorError listing the known ones."""
    with _LOCK:
        found = _REGISTRY.get(name)
        known = sorted(_REGISTRY)
    if found is None:
        raise ConnectorError(
            f"there is no connector named {name!r}; known connectors: {', '.join(known) or 'none'}"
        )
    return found


def connector_names() -> list[str]:
    with _LOCK:
        return sorted(_REGISTRY)
