"""`surveyor worker`: a processing worker in its own process (PostgreSQL, beside consoles)."""

from __future__ import annotations

import signal
import threading
from typing import Annotated, Any

import typer
from rich.console import Console

from surveyor.cli.logs import LogFormatOption, configure_logging

err = Console(stderr=True)


def worker(
    once: Annotated[
        bool, typer.Option("--once", help="Process what is queued now, then exit.")
    ] = False,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            "--metrics-port",
            min=1,
            max=65535,
            envvar="SURVEYOR_METRICS_PORT",
            help="Serve GET /metrics (Prometheus) on this port.",
        ),
    ] = None,
    metrics_host: Annotated[
        str, typer.Option("--metrics-host", help="Address the metrics port listens on.")
    ] = "127.0.0.1",
    log_format: LogFormatOption = None,
) -> None:
    """Run a processing worker: merge queued task data into the inventory until stopped.

    SIGTERM or Ctrl-C finish the current batch and give the task back to the queue.
    The worker uses SURVEYOR_DATABASE_URL and SURVEYOR_DATA like the console (the data
    directory must be the console's); SURVEYOR_PROCESSING_LEASE, _BATCH, _POLL, _ATTEMPTS,
    _RETRY and _REQUEUE_EVERY tune it (docs/inventory.md).
    """
    from surveyor.cli.server import task_data_store_at_start
    from surveyor.processing.queue import Wakeup
    from surveyor.processing.worker import Worker, WorkerSettings, wake_on_queued
    from surveyor.store.change_bus import ChangeBus
    from surveyor.store.engine import Database, data_dir, database_url, make_engine
    from surveyor.store.migrate import current_revision, head_revision

    configure_logging(log_format)
    engine = make_engine()
    if current_revision(engine) != head_revision():
        engine.dispose()
        err.print("[red]The database schema is not current; run `surveyor db upgrade` first.[/red]")
        raise typer.Exit(2)
    db = Database(engine)
    try:
        store = task_data_store_at_start(db.dialect)
    except SystemExit:
        db.dispose()
        raise
    if db.is_sqlite:
        err.print(
            "[yellow]This worker uses SQLite, where the console already processes in-process; "
            "separate workers pay off on PostgreSQL.[/yellow]"
        )
    wakeup = Wakeup()
    runner = Worker(db, data_dir(), WorkerSettings.from_environment(), wakeup=wakeup)
    stop = threading.Event()

    def request_stop(_signal: int, _frame: object) -> None:
        stop.set()
        wakeup.notify()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    metrics_server = None
    if metrics_port is not None:
        metrics_server = serve_worker_metrics(db, runner, metrics_host, metrics_port)
        err.print(f"Metrics on http://{metrics_host}:{metrics_port}/metrics")
    where = database_url().split("@")[-1]
    err.print(f"Surveyor processing worker {runner.name} on {where} (data in {data_dir()})")
    err.print(store)
    # The change bus wakes the worker when a task is queued, by any console (PostgreSQL).
    changes = ChangeBus()
    changes.open(db)
    wake_on_queued(changes, [wakeup])
    try:
        if once:
            claimed = runner.drain()
            err.print(f"Processed {claimed} task{'s' if claimed != 1 else ''}; the queue is empty.")
        else:
            runner.run(stop)
    finally:
        if metrics_server is not None:
            metrics_server.shutdown()
        changes.close()
        db.dispose()


def serve_worker_metrics(db: Any, runner: Any, host: str, port: int) -> Any:
    """Serve the store's gauges and this worker's own on `host:port` (a thread)."""
    from prometheus_client import CollectorRegistry, start_http_server
    from prometheus_client.core import GaugeMetricFamily

    from surveyor.core.clock import SYSTEM_CLOCK
    from surveyor.service.metrics import StoreCollector

    registry = CollectorRegistry()
    registry.register(StoreCollector(db, SYSTEM_CLOCK))

    class WorkerCollector:
        def collect(self) -> Any:
            yield GaugeMetricFamily(
                "surveyor_worker_up", "1 while this processing worker runs.", value=1
            )

    registry.register(WorkerCollector())
    server, _thread = start_http_server(port, addr=host, registry=registry)
    return server
