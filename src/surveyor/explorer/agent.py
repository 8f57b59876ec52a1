"""The explorer's loop: ask for work, scan, report, stop when told, upload, repeat.

- Work arrives by long poll: one request held open by the console until a scan is launched
  on this explorer (no busy polling).
- While a scan runs (in its own thread) the agent reports progress every
  `report_interval` (0.5 s: at least once a second); the answer says whether to stop, and a
  stop sets the scan's stop event at once.
- A stopped scan keeps what it found: the engine halts and closes its data (the summary
  says `stopped`), and the agent uploads it marked partial; the console stores it and
  the task becomes `stopped` (a scan that wrote nothing just confirms the stop).
- A report refused as stale (a newer attempt exists, or the task no longer runs) ends the
  scan and drops its data.
- When the console cannot be reached the agent keeps scanning and retries with capped,
  jittered exponential backoff; finished data waits on disk (its upload is recorded in the
  state directory, so even a restarted explorer delivers it).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from surveyor import connectors
from surveyor.connectors.base import ConnectorConfig, ConnectorError, connector_named
from surveyor.connectors.run import run_records
from surveyor.core.explorer_protocol import LONG_POLL_SECONDS, HostInfo
from surveyor.core.scan_params import (
    SCAN_PARAM_KEYS,
    ScanParams,
    ScanParamsError,
    validate_scan_params,
)
from surveyor.core.tasks import TaskType
from surveyor.explorer.client import (
    Assignment,
    ConsoleUnreachable,
    ExplorerClient,
    Refused,
    TaskGone,
)
from surveyor.explorer.identity import (
    PendingUpload,
    clear_pending_upload,
    load_pending_upload,
    prepare_state_dir,
    remove_abandoned_spool,
    save_pending_upload,
    spool_path,
)

log = logging.getLogger("surveyor.explorer")

#: Params of a connector run that are not the connector's own options.
CONNECTOR_PARAM_KEYS = ("connector", "credential_id", "server")


class ScanFunction(Protocol):
    """`surveyor.scan.engine.run_scan`: SPEC §7 records, lazily, until done or stopped."""

    def __call__(
        self,
        params: ScanParams,
        *,
        on_progress: Callable[[Any], None] | None,
        stop: threading.Event | None,
    ) -> Iterator[dict[str, Any]]: ...


DataWriter = Callable[[Iterable[dict[str, Any]], Path], Any]


def engine_scan(
    params: ScanParams,
    *,
    on_progress: Callable[[Any], None] | None,
    stop: threading.Event | None,
) -> Iterator[dict[str, Any]]:
    from surveyor.scan.engine import run_scan

    records: Iterator[dict[str, Any]] = run_scan(params, on_progress=on_progress, stop=stop)
    return records


def engine_writer(records: Iterable[dict[str, Any]], path: Path) -> Any:
    from surveyor.scan.taskdata import write_task_data

    return write_task_data(records, path)


@dataclass(frozen=True)
class AgentTiming:
    """How long to hold a poll, and the backoff after failures (seconds)."""

    poll_wait: float = LONG_POLL_SECONDS
    backoff_initial: float = 0.5
    backoff_max: float = 30.0
    #: After a shutdown request, how long a report may still be retried.
    shutdown_grace: float = 3.0
    #: How many times an upload whose checksum the console disputes is sent again.
    checksum_retries: int = 3


class Backoff:
    """Exponential delays, capped, with jitter: half the delay is fixed, half random, so
    explorers that lost the console together do not come back together."""

    def __init__(
        self, initial: float, cap: float, *, rng: Callable[[], float] = random.random
    ) -> None:
        self.initial = initial
        self.cap = cap
        self._rng = rng
        self._failures = 0

    def next_delay(self) -> float:
        base = min(self.cap, self.initial * 2.0 ** min(self._failures, 30))
        self._failures += 1
        return base / 2 + self._rng() * base / 2

    def reset(self) -> None:
        self._failures = 0


def scan_params_for(task: Assignment) -> ScanParams:
    """The scan the console asked for. Its params were validated and normalized when the
    task was created (site scope and excludes merged in); the explorer checks them again."""
    params = {key: value for key, value in task.params.items() if key in SCAN_PARAM_KEYS}
    return validate_scan_params(
        params, default_targets="", default_excludes="", scope_cap=task.scope_cap
    )


#: Yields a run's task data records, reporting progress, until done or `stop` is set.
Producer = Callable[[Callable[[Any], None], threading.Event], Iterable[dict[str, Any]]]


class ConnectorProgress:
    """A connector run's progress in the shape the reports take (`progress`, `stats`)."""

    def __init__(self, done: int, total: int | None) -> None:
        self.progress = min(0.99, done / total) if total else 0.0
        self.objects = done
        self.announced = total

    def stats(self) -> dict[str, int | float]:
        said: dict[str, int | float] = {"objects": self.objects}
        if self.announced is not None:
            said["announced"] = self.announced
        return said


def connector_producer(task: Assignment) -> Producer:
    """A connector run as the console assigned it, with the credential it sent for this
    attempt (held in memory only). Raises ConnectorError or ValueError for bad params."""
    params = dict(task.params)
    connector = connector_named(str(params.get("connector")))
    options = {k: v for k, v in params.items() if k not in CONNECTOR_PARAM_KEYS}
    checked = connector.check_options(options)

    def produce(
        on_progress: Callable[[Any], None], stop: threading.Event
    ) -> Iterable[dict[str, Any]]:
        config = ConnectorConfig(
            server=str(params.get("server")),
            options=checked,
            credential=dict(task.credential or {}),
            stopped=stop,
        )
        return run_records(
            connector, config, lambda done, total: on_progress(ConnectorProgress(done, total))
        )

    return produce


class ScanRun:
    """One run (a scan, a connector run) in its own thread, writing its task data to
    `path`."""

    def __init__(self, produce: Producer, write_data: DataWriter, path: Path) -> None:
        self.stop = threading.Event()
        self.error: str | None = None
        self.summary_stopped = False
        #: Host records written so far.
        self.hosts = 0
        self._progress: Any = None
        self._produce = produce
        self._write = write_data
        self.path = path
        self._thread = threading.Thread(target=self._run, name="surveyor-scan", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def wait(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds; True once the scan has ended."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _on_progress(self, progress: Any) -> None:
        self._progress = progress

    def _watch(self, records: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for record in records:
            if record.get("type") == "host":
                self.hosts += 1
            elif record.get("type") == "summary":
                self.summary_stopped = bool(record.get("stopped"))
            yield record

    def _run(self) -> None:
        try:
            records = self._produce(self._on_progress, self.stop)
            self._write(self._watch(records), self.path)
        except ConnectorError as exc:
            self.error = str(exc)
        except Exception as exc:
            log.exception("the run failed")
            self.error = str(exc) or type(exc).__name__

    def collect(self) -> float:
        """Scan progress 0..1, as the engine reckons it (`ScanProgress.progress`)."""
        progress = self._progress
        if progress is None:
            return 0.0
        return max(0.0, min(1.0, float(progress.progress)))

    def stats(self) -> dict[str, int | float]:
        progress = self._progress
        if progress is None:
            return {}
        if isinstance(progress, ConnectorProgress):
            return {**progress.stats(), "hosts": self.hosts}
        names = ("hosts_done", "hosts_total", "hosts_up", "probes_sent", "open_ports")
        return {name: getattr(progress, name) for name in names if hasattr(progress, name)}


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


class Agent:
    """Runs scans for one console until `shutdown` is set. `ExplorerRejected` ends it."""

    def __init__(
        self,
        client: ExplorerClient,
        state_dir: Path,
        *,
        host: Callable[[], HostInfo],
        scan: ScanFunction = engine_scan,
        write_data: DataWriter = engine_writer,
        timing: AgentTiming | None = None,
        shutdown: threading.Event | None = None,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.client = client
        self.state_dir = prepare_state_dir(state_dir)
        connectors.load()
        self.host = host
        self.scan = scan
        self.write_data = write_data
        self.timing = timing or AgentTiming()
        self.shutdown = shutdown or threading.Event()
        self._rng = rng
        #: True while a scan or its final reports are in hand (a shutdown should wait).
        self.busy = False

    def _backoff(self, cap: float | None = None) -> Backoff:
        """Delays for retries; `cap` bounds them for reports about a running task, so that
        a console that comes back hears from the explorer before it declares it silent."""
        limit = self.timing.backoff_max if cap is None else min(cap, self.timing.backoff_max)
        return Backoff(min(self.timing.backoff_initial, limit), limit, rng=self._rng)

    @contextlib.contextmanager
    def _working(self) -> Iterator[None]:
        """`busy` while the block runs (an upload or a task)."""
        self.busy = True
        try:
            yield
        finally:
            self.busy = False

    def run(self) -> None:
        """Deliver any unfinished upload, then take work until shut down."""
        pending = load_pending_upload(self.state_dir)
        remove_abandoned_spool(self.state_dir, pending)
        if pending is not None:
            with self._working():
                self.deliver_upload(pending)
        backoff = self._backoff()
        connected = False
        while not self.shutdown.is_set():
            try:
                task = self.client.poll(self.host(), wait=self.timing.poll_wait)
            except ConsoleUnreachable as exc:
                delay = backoff.next_delay()
                if connected:
                    log.warning("lost the console: %s; retrying", exc)
                log.debug("console unreachable (%s); next try in %.1f s", exc, delay)
                connected = False
                self.shutdown.wait(delay)
                continue
            if not connected:
                log.info("connected to the console at %s", self.client.console)
            connected = True
            backoff.reset()
            if task is not None:
                with self._working():
                    self.run_task(task)

    def _producer(self, task: Assignment) -> Producer:
        """What runs the task: a scan, or a connector run. Raises ValueError or
        ConnectorError (their message says what is wrong) for what cannot run."""
        if task.type == TaskType.CONNECTOR.value:
            return connector_producer(task)
        if task.type != TaskType.SCAN.value:
            raise ValueError(f"this explorer cannot run tasks of type {task.type!r}")
        try:
            params = scan_params_for(task)
        except ScanParamsError as exc:
            raise ValueError(f"invalid scan parameters: {exc.message}") from exc
        scan = self.scan
        return lambda on_progress, stop: scan(params, on_progress=on_progress, stop=stop)

    def run_task(self, task: Assignment) -> None:
        """Run the task (scan or connector run), report progress, obey a stop, then upload
        (or report why not)."""
        log.info(
            "task %s '%s': running the %s (attempt %s)",
            task.task_id,
            task.name,
            task.type,
            task.attempt,
        )
        try:
            produce = self._producer(task)
        except (ValueError, ConnectorError) as exc:
            problem = str(exc)
            self._deliver(task, "failure", lambda: self.client.report_failure(task, problem))
            return
        path = spool_path(self.state_dir, task.task_id, task.attempt)
        run = ScanRun(produce, self.write_data, path)
        run.start()
        told_to_stop = self._report_until_done(task, run)
        if told_to_stop is None:
            _remove(path)
            return
        if told_to_stop:
            if run.error is None and path.is_file():
                log.info("task %s: stopped as asked; uploading what it found", task.task_id)
                self._upload(task, path, partial=True)
                return
            log.info("task %s: stopped as asked", task.task_id)
            self._deliver(task, "stop confirmation", lambda: self.client.confirm_stopped(task))
            _remove(path)
            return
        if self.shutdown.is_set():
            _remove(path)
            self._deliver(
                task,
                "shutdown",
                lambda: self.client.report_failure(
                    task, "the explorer was shut down during the scan"
                ),
            )
            return
        if run.error is not None:
            _remove(path)
            error = run.error
            self._deliver(task, "failure", lambda: self.client.report_failure(task, error))
            return
        with contextlib.suppress(ConsoleUnreachable, Refused, TaskGone):
            self.client.report_progress(task, collect=run.collect(), stats=run.stats())
        self._upload(task, path, partial=False)

    def _upload(self, task: Assignment, path: Path, *, partial: bool) -> None:
        """Record the finished data as pending (so a restart still delivers it) and upload."""
        pending = PendingUpload(
            task_id=task.task_id,
            attempt_token=task.attempt_token,
            path=str(path),
            sha256=sha256_of(path),
            size=path.stat().st_size,
            retry_max=task.report_retry_max,
            partial=partial,
        )
        save_pending_upload(self.state_dir, pending)
        self.deliver_upload(pending)

    def _report_until_done(self, task: Assignment, run: ScanRun) -> bool | None:
        """Report progress until the scan ends. Returns whether the console asked for a
        stop, or None when the task is no longer ours (its data is worthless)."""
        backoff = self._backoff(task.report_retry_max)
        next_report = 0.0
        told_to_stop = False
        while not run.wait(task.report_interval):
            if self.shutdown.is_set():
                run.stop.set()
            now = time.monotonic()
            if now < next_report:
                continue
            try:
                stop = self.client.report_progress(task, collect=run.collect(), stats=run.stats())
            except ConsoleUnreachable as exc:
                next_report = now + backoff.next_delay()
                log.warning(
                    "task %s: cannot report progress (%s); still scanning", task.task_id, exc
                )
                continue
            except TaskGone as exc:
                log.warning("task %s: %s; abandoning the scan", task.task_id, exc)
                run.stop.set()
                run.wait(30.0)
                return None
            except Refused as exc:
                log.warning("task %s: progress refused: %s", task.task_id, exc)
                continue
            backoff.reset()
            next_report = 0.0
            if stop and not told_to_stop:
                log.info("task %s: the console asked to stop", task.task_id)
                told_to_stop = True
                run.stop.set()
        return told_to_stop

    def _deliver(self, task: Assignment, what: str, send: Callable[[], None]) -> bool:
        """Send a final report, retrying while the console is unreachable."""
        backoff = self._backoff(task.report_retry_max)
        give_up_at: float | None = None
        while True:
            try:
                send()
                return True
            except (TaskGone, Refused) as exc:
                log.warning("task %s: %s refused: %s", task.task_id, what, exc)
                return False
            except ConsoleUnreachable as exc:
                delay = backoff.next_delay()
                log.warning("task %s: cannot send the %s (%s); retrying", task.task_id, what, exc)
                if not self.shutdown.is_set():
                    self.shutdown.wait(delay)
                    continue
                # Shutting down: a few quick tries, then the console's timeouts take over.
                give_up_at = give_up_at or time.monotonic() + self.timing.shutdown_grace
                remaining = give_up_at - time.monotonic()
                if remaining <= 0:
                    return False
                time.sleep(min(delay, remaining))

    def deliver_upload(self, pending: PendingUpload) -> bool:
        """Upload finished task data until the console has it (or refuses it for good).
        On shutdown the upload stays recorded and is resumed at the next start."""
        path = Path(pending.path)
        if not path.is_file():
            clear_pending_upload(self.state_dir)
            return False
        backoff = self._backoff(pending.retry_max)
        disputes = 0
        while not self.shutdown.is_set():
            try:
                answer = self.client.upload(
                    pending.task_id,
                    pending.attempt_token,
                    path,
                    sha256=pending.sha256,
                    partial=pending.partial,
                )
            except ConsoleUnreachable as exc:
                delay = backoff.next_delay()
                log.warning(
                    "task %s: upload failed (%s); retrying in %.1f s", pending.task_id, exc, delay
                )
                self.shutdown.wait(delay)
                continue
            except Refused as exc:
                if exc.code == "checksum_mismatch" and disputes < self.timing.checksum_retries:
                    disputes += 1
                    log.warning("task %s: %s; sending again", pending.task_id, exc)
                    continue
                log.error("task %s: the console refused the data: %s", pending.task_id, exc)
            except TaskGone as exc:
                log.warning("task %s: upload no longer wanted: %s", pending.task_id, exc)
            else:
                log.info(
                    "task %s: uploaded %s bytes; the console has it (%s)",
                    pending.task_id,
                    pending.size,
                    answer.get("status"),
                )
            clear_pending_upload(self.state_dir)
            _remove(path)
            return True
        return False


def _remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
