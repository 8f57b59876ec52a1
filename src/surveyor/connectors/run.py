"""One connector run as task data: what the console and explorers both write.

`run_records` wraps a connector's host records in the task data format of SPEC §7: a
`config` record saying what was read (never the credential), the host records, and a
`summary`. A stopped run ends with a summary marked `stopped`, so processing treats what it
found as partial. Writing the records to a file is the caller's (it knows where they go).

`EncodedRun` is the same run already encoded as task data lines, for `write_encoded`: a
connector that can encode its own records (`fetch_lines`, as the LDAP connector does) hands
them over a batch at a time, with no dictionary made for each; any other connector's records
are encoded one by one.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from surveyor.connectors.base import Connector, ConnectorConfig, Progress, no_progress
from surveyor.core.clock import SYSTEM_CLOCK, Clock
from surveyor.core.jsonl import encode_record


def run_records(
    connector: Connector,
    config: ConnectorConfig,
    progress: Progress = no_progress,
    *,
    clock: Clock = SYSTEM_CLOCK,
) -> Iterator[dict[str, Any]]:
    """The task data of one run, streaming. Raises the connector's ConnectorError."""
    yield _config_record(connector, config, clock)
    hosts = 0
    for record in connector.fetch(config, progress):
        if config.stopped.is_set():
            break
        record.setdefault("type", "host")
        record.setdefault("source", connector.name)
        hosts += 1
        yield record
    yield _summary_record(config, hosts, clock)


class EncodedRun:
    """The task data of one run as `run_records` makes it, encoded as `encode_record` does,
    streaming: iterate it once. `hosts` counts the host records handed over so far. A
    stopped run ends at the batch it is in, with its summary marked `stopped`. Raises the
    connector's ConnectorError."""

    def __init__(
        self,
        connector: Connector,
        config: ConnectorConfig,
        progress: Progress = no_progress,
        *,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._connector = connector
        self._config = config
        self._progress = progress
        self._clock = clock
        self.hosts = 0

    def __iter__(self) -> Iterator[bytes]:
        connector, config = self._connector, self._config
        yield encode_record(_config_record(connector, config, self._clock))
        fetch_lines = getattr(connector, "fetch_lines", None)
        if fetch_lines is not None:
            for lines, count in fetch_lines(config, self._progress):
                if config.stopped.is_set():
                    break
                self.hosts += count
                yield lines
        else:
            for record in connector.fetch(config, self._progress):
                if config.stopped.is_set():
                    break
                record.setdefault("type", "host")
                record.setdefault("source", connector.name)
                self.hosts += 1
                yield encode_record(record)
        yield encode_record(_summary_record(config, self.hosts, self._clock))


def _config_record(connector: Connector, config: ConnectorConfig, clock: Clock) -> dict[str, Any]:
    return {
        "type": "config",
        "connector": connector.name,
        "server": config.server,
        "options": dict(config.options),
        "started_at": clock.now().isoformat(),
    }


def _summary_record(config: ConnectorConfig, hosts: int, clock: Clock) -> dict[str, Any]:
    return {
        "type": "summary",
        "hosts": hosts,
        "finished_at": clock.now().isoformat(),
        "stopped": config.stopped.is_set(),
    }
