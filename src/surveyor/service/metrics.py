"""The Prometheus collector that reads the store at scrape time: tasks, the processing
queue, scheduler lateness and explorers (used by the console's `/metrics` and by
`surveyor worker --metrics-port`)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from surveyor.core.clock import Clock
from surveyor.service.launch import is_online
from surveyor.store import gauges
from surveyor.store.engine import Database


class StoreCollector(Collector):
    """Gauges read from the database on every scrape (a handful of cheap queries)."""

    def __init__(self, db: Database, clock: Clock, *, online_window: float = 60) -> None:
        self.db = db
        self.clock = clock
        self.online_window = online_window

    def collect(self) -> Iterator[GaugeMetricFamily]:
        now = self.clock.now()
        with self.db.read() as conn:
            tabs = gauges.tab_counts(conn)
            live = gauges.live_task_counts(conn)
            oldest = gauges.oldest_queued_at(conn)
            due = gauges.earliest_due_start(conn, now)
            recur = gauges.earliest_due_recurrence(conn, now)
            presence = gauges.explorer_presence(conn)
            probes = gauges.active_scan_probes(conn)
        by_tab = GaugeMetricFamily(
            "surveyor_tasks_by_tab",
            "Tasks per tab (from the counter rows).",
            labels=["tab", "hidden"],
        )
        for (tab, hidden), count in sorted(tabs.items()):
            by_tab.add_metric([tab, "true" if hidden else "false"], count)
        yield by_tab
        by_status = GaugeMetricFamily(
            "surveyor_tasks",
            "Tasks in a non-terminal status, by status and type.",
            labels=["status", "type"],
        )
        for (status, kind), count in sorted(live.items()):
            by_status.add_metric([status, kind], count)
        yield by_status
        depth = sum(n for (status, _), n in live.items() if status == "processing_queued")
        yield GaugeMetricFamily(
            "surveyor_processing_queue_depth", "Tasks queued for processing.", value=depth
        )
        yield GaugeMetricFamily(
            "surveyor_processing_queue_oldest_age_seconds",
            "How long the oldest queued task has waited (0 when the queue is empty).",
            value=max(0.0, (now - oldest).total_seconds()) if oldest else 0.0,
        )
        lateness = [(now - t).total_seconds() for t in (due, recur) if t is not None]
        yield GaugeMetricFamily(
            "surveyor_scheduler_lateness_seconds",
            "How overdue the most overdue due task or recurring run is (0 when none is).",
            value=max([0.0, *lateness]),
        )
        online = [
            e
            for e in presence
            if is_online(
                e["last_checkin_at"],
                now=now,
                window=self.online_window,
                poll_dropped_at=e["poll_dropped_at"],
            )
        ]
        yield GaugeMetricFamily("surveyor_explorers", "Explorers enrolled.", value=len(presence))
        yield GaugeMetricFamily("surveyor_explorers_online", "Explorers online.", value=len(online))
        yield GaugeMetricFamily(
            "surveyor_explorers_busy",
            "Explorers a task occupies (scanning, connecting, uploading).",
            value=sum(1 for e in presence if e["busy"]),
        )
        yield GaugeMetricFamily(
            "surveyor_scan_probes_sent",
            "Probes the running scans have sent so far (their last progress reports).",
            value=sum(sent for sent, _ in probes),
        )
        yield GaugeMetricFamily(
            "surveyor_scan_probes_per_second",
            "The running scans' probe rate: each one's probes over its time so far, summed.",
            value=sum(
                sent / elapsed
                for sent, began in probes
                if began is not None and (elapsed := (now - began).total_seconds()) > 0
            ),
        )
