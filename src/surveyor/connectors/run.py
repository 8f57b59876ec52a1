"""One connector run as task data: what the console and explorers both write.

`run_records` wraps a connector's host records in the task data format of SPEC §7: a
`config` record saying what was read (never the credential), the host records, and a
`summary`. A stopped run ends with a summary marked `stopped`, so processing treats what it
found as partial. Writing the records to a file is the caller's (it knows where they go).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from surveyor.connectors.base import Connector, ConnectorConfig, Progress, no_progress
from surveyor.core.clock import SYSTEM_CLOCK, Clock


def run_records(
    connector: Connector,
    config: ConnectorConfig,
    progress: Progress = no_progress,
    *,
    clock: Clock = SYSTEM_CLOCK,
) -> Iterator[dict[str, Any]]:
    """The task data of one run, streaming. Raises the connector's ConnectorError."""
    yield {
        "type": "config",
        "connector": connector.name,
        "server": config.server,
        "options": dict(config.options),
        "started_at": clock.now().isoformat(),
    }
    hosts = 0
    for record in connector.fetch(config, progress):
        if config.stopped.is_set():
            break
        record.setdefault("type", "host")
        record.setdefault("source", connector.name)
        hosts += 1
        yield record
    yield {
        "type": "summary",
        "hosts": hosts,
        "finished_at": clock.now().isoformat(),
        "stopped": config.stopped.is_set(),
    }
