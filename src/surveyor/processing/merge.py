"""Merging a claimed task's data into its site's inventory: in batches, resumable, fenced.

1. The data file must be the one the task stored (its SHA-256); `survey` then reads and checks
   the whole file: bad data cancels the task before anything is written.
2. A processing run holds the checkpoint (host records merged so far) and the counts. A task
   whose worker died resumes its unfinished run; any other start is a fresh run, numbered
   after the earlier ones, which all stay with their counts and change reports.
3. Each batch is one write transaction: the lease is renewed (and progress written) first, so
   a worker that lost its lease fails before writing; then the batch's assets, addresses,
   services, change rows and sources (which source saw each asset, and when); then the
   checkpoint moves, only from where this worker left it.
4. Known assets in the scanned scope that no answer claimed are marked offline, in batches.
   The scanned scope is the one the console stored for the task (`task_scope`), never what
   the data says; host records outside it are ignored. Partial data (a stopped scan) marks
   nothing offline, and a task without a scope (an import, a connector run) neither.
   Likewise, the ports whose silent services are gone are those the task asked for
   (`task_ports`) that the data says it probed, never more.
5. The run's counts become the task's change summary as it moves to `processed`.

Every timestamp written to the inventory is the scan's time (`observed_at`), never the time of
processing, so merging the same data again writes the same values.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection

from surveyor.core.changes import (
    AssetState,
    Change,
    ChangeKind,
    compare,
    merge_state,
    state_digest,
    summarize,
)
from surveyor.core.clock import SYSTEM_CLOCK, Clock
from surveyor.core.fingerprint import (
    KnownAsset,
    Observation,
    Service,
    address_key,
    address_key_bounds,
    listing_key,
    match,
    primary_address,
    primary_hostname,
)
from surveyor.core.inventory import details_columns
from surveyor.core.jsonl_limits import DEFAULT_LIMITS, JsonlLimits
from surveyor.core.kinds import find_kind
from surveyor.core.processing import UNFINISHED_PHASES, ProcessingPhase
from surveyor.core.targets import Scope
from surveyor.core.task import Task
from surveyor.processing.outliers import request_after_processing
from surveyor.processing.processors import LeaseLost, ProcessingJob, StopRequested, complete
from surveyor.processing.queue import Claim, renew_lease
from surveyor.processing.records import (
    Answer,
    Survey,
    TaskDataError,
    answers,
    survey,
    task_ports,
    task_scope,
)
from surveyor.store import inventory
from surveyor.store.engine import Database
from surveyor.store.task_data_store import TaskDataUnavailable, local_task_data
from surveyor.store.taskdata import sha256_of

log = logging.getLogger("surveyor.processing")

#: Host records per transaction: few commits, while other writers wait well under a second.
DEFAULT_BATCH_SIZE = 2000


@dataclass
class MergeContext:
    """What every batch of one run needs to know."""

    db: Database
    claim: Claim
    surveyed: Survey
    run: dict[str, Any]
    observed_at: datetime
    lease_seconds: float
    clock: Clock
    #: The source of records that name none: the task's kind says (`scan`, `import`, ...).
    source: str = "scan"
    done: int = 0

    @property
    def task_id(self) -> int:
        return self.claim.task_id

    @property
    def site_id(self) -> int:
        site_id = self.claim.task.site_id
        assert site_id is not None  # checked before the merge starts
        return site_id

    @property
    def organization_id(self) -> int:
        return self.claim.organization_id

    @property
    def run_id(self) -> int:
        return int(self.run["id"])

    @property
    def partial(self) -> bool:
        """The data covers only part of the scope: the console says so (a stopped scan's
        upload), or the data itself does."""
        return self.claim.task.data_partial or not self.surveyed.complete

    @property
    def offline_scope(self) -> Scope | None:
        """The scope whose silent assets go offline: the task's own, for complete data."""
        return None if self.partial else self.surveyed.scope

    def probed_for(self, observation: Observation) -> frozenset[tuple[str, int]] | None:
        """The ports whose known services the answer can make gone: none when its record
        left some of its open ports out (`services_truncated`), as a scanner does for a host
        open on thousands of them."""
        if observation.services_truncated:
            return frozenset()
        return self.surveyed.config.probed

    @property
    def total(self) -> int:
        return int(self.run["records_total"])

    def progress(self) -> dict[str, Any]:
        """Task columns that show how far processing is: records done / total."""
        fraction = self.done / self.total if self.total else 1.0
        stats = dict(self.claim.task.stats or {})
        stats["processing"] = {"records_done": self.done, "records_total": self.total}
        return {"progress_process": min(fraction, 1.0), "stats": stats}

    def fence(self, conn: Connection, now: datetime | None = None) -> None:
        """Renew the lease and write progress; raise LeaseLost if the task is not ours."""
        if not renew_lease(
            conn,
            self.task_id,
            self.claim.owner,
            now=now or self.clock.now(),
            lease_seconds=self.lease_seconds,
            changes=self.progress(),
        ):
            raise LeaseLost(self.task_id)


def process_claimed_task(
    db: Database,
    data_dir: Path,
    claim: Claim,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    lease_seconds: float,
    limits: JsonlLimits = DEFAULT_LIMITS,
    should_stop: Callable[[], bool] = lambda: False,
    clock: Clock = SYSTEM_CLOCK,
) -> Task:
    """Merge a claimed task's data (read within `limits`) and mark it processed; the task
    as it ends.

    Raises TaskDataError (the data cannot be merged), LeaseLost, or StopRequested.
    """
    task = claim.task
    if task.site_id is None:
        raise TaskDataError("the task belongs to no site, so there is no inventory to merge into")
    try:
        path = local_task_data(db, data_dir, claim.task_id, task.data_sha256)
    except TaskDataUnavailable as exc:
        raise TaskDataError(str(exc)) from exc
    if not path.exists():
        raise TaskDataError(
            f"its data file is missing (looked for {path}); the data directory of this worker "
            "must be the console's"
        )
    expected = task.data_sha256
    if expected and sha256_of(path) != expected:
        # Task ids repeat across databases: a worker given another install's data directory
        # must not merge that install's file for this task.
        raise TaskDataError(
            f"its data file {path} is not the one the task stored (SHA-256 differs); the data "
            "directory of this worker must be the console's"
        )
    params = task.params or {}
    kind = find_kind(task.type)
    if kind is None or kind.scope_from_targets:
        scope = task_scope(params)
        ports = task_ports(params, defaults=kind.param_defaults if kind is not None else {})
    else:
        # What another system knows (a connector's): no scope, and no port was probed.
        scope, ports = None, frozenset()
    source = kind.default_source(params) if kind is not None else task.type
    with survey(path, spool_in=path.parent, scope=scope, ports=ports, limits=limits) as surveyed:
        return _merge_surveyed(
            db, path, claim, surveyed, batch_size, lease_seconds, should_stop, clock, source
        )


def merge_into_inventory(job: ProcessingJob) -> Task:
    """The `inventory` processor: a claimed task's data merged into its site's inventory."""
    return process_claimed_task(
        job.db,
        job.data_dir,
        job.claim,
        batch_size=job.batch_size,
        lease_seconds=job.lease_seconds,
        limits=job.limits,
        should_stop=job.should_stop,
        clock=job.clock,
    )


def _merge_surveyed(
    db: Database,
    path: Path,
    claim: Claim,
    surveyed: Survey,
    batch_size: int,
    lease_seconds: float,
    should_stop: Callable[[], bool],
    clock: Clock,
    source: str,
) -> Task:
    task = claim.task
    observed_at = (
        surveyed.observed_at or task.data_acquisition_ended_at or task.start_time or task.created_at
    )
    with db.write() as conn:
        run = _resume_or_start_run(conn, claim, surveyed, observed_at, clock.now())
        context = MergeContext(
            db, claim, surveyed, run, run["observed_at"], lease_seconds, clock, source
        )
        context.done = int(run["records_done"])
        context.fence(conn)
    if context.done:
        log.info("task %s: resuming at record %s of %s", claim.task_id, context.done, context.total)
    if run["phase"] == ProcessingPhase.MERGING:
        batch: list[Answer] = []
        for answer in answers(path, surveyed, skip=context.done):
            batch.append(answer)
            if len(batch) >= batch_size:
                merge_batch(context, batch)
                batch = []
                if should_stop():
                    raise StopRequested(claim.task_id)
        merge_batch(context, batch, phase=ProcessingPhase.OFFLINE)
    mark_silent_assets_offline(context, batch_size=batch_size, should_stop=should_stop)
    return finish(context)


def _resume_or_start_run(
    conn: Connection, claim: Claim, surveyed: Survey, observed_at: datetime, now: datetime
) -> dict[str, Any]:
    task = claim.task
    run = inventory.latest_run(conn, claim.task_id)
    if (
        run is not None
        and run["phase"] in UNFINISHED_PHASES
        and run["data_sha256"] == task.data_sha256
        and run["records_total"] == surveyed.host_records
    ):
        return run
    fresh = inventory.start_run(
        conn,
        {
            "task_id": claim.task_id,
            "organization_id": claim.organization_id,
            "site_id": task.site_id,
            "data_sha256": task.data_sha256,
            "worker": claim.owner,
            "observed_at": observed_at,
            "started_at": now,
            "records_total": surveyed.host_records,
            "phase": ProcessingPhase.MERGING.value,
        },
    )
    inventory.abandon_unfinished_runs(conn, claim.task_id, keep=fresh["id"], ended_at=now)
    return fresh


@dataclass
class BatchWrites:
    """Everything one batch writes, gathered before the transaction that writes it."""

    new_assets: list[dict[str, Any]] = field(default_factory=list)
    new_services: list[list[Service]] = field(default_factory=list)
    new_changes: list[dict[str, Any]] = field(default_factory=list)
    updated_assets: list[dict[str, Any]] = field(default_factory=list)
    touched_assets: list[dict[str, Any]] = field(default_factory=list)
    readdressed: dict[int, Sequence[str]] = field(default_factory=dict)
    renamed: dict[int, Sequence[str]] = field(default_factory=dict)
    #: The source of each new asset, and (asset id, source) of the known ones seen.
    new_sources: list[str] = field(default_factory=list)
    sources: dict[tuple[int, str], None] = field(default_factory=dict)
    #: Uptime and distance of known assets, as answers reported them.
    reported: list[dict[str, Any]] = field(default_factory=list)
    service_inserts: list[dict[str, Any]] = field(default_factory=list)
    service_updates: list[dict[str, Any]] = field(default_factory=list)
    service_deletes: list[int] = field(default_factory=list)
    changes: list[dict[str, Any]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    def count(self, kind: ChangeKind) -> None:
        self.counts[kind.value] = self.counts.get(kind.value, 0) + 1


class _Candidates:
    """The batch's known assets, indexed by what an answer can share with them.

    Their address and name lists and their services are read only when matching or comparing
    needs them: an answer whose digest equals its asset's stored digest is unchanged without
    a look at them.
    """

    def __init__(self, conn: Connection, found: inventory.Candidates, run_id: int) -> None:
        self.conn = conn
        self.assets = found.assets
        self.services: dict[int, list[tuple[int, Service]]] = {}
        self.identities: dict[int, inventory.Identity] = {}
        self.claimed = {i for i, asset in self.assets.items() if asset.last_run_id == run_id}
        self.index: dict[tuple[str, str], set[int]] = {}
        for kind, shared, asset_id in found.keys:
            self.index.setdefault((kind, shared), set()).add(asset_id)

    def unclaimed_for(self, observation: Observation) -> list[int]:
        keys = [("mac", observation.mac)] if observation.mac else []
        keys += [("address", a) for a in observation.addresses]
        keys += [("name", n) for n in observation.hostnames]
        ids: set[int] = set()
        for key in keys:
            ids |= self.index.get(key, set())
        return sorted(ids - self.claimed)

    def quick_match(self, observation: Observation, digest: str, ids: list[int]) -> int | None:
        """The match `fingerprint.match` would find, when it is clear without services:
        the asset with the answer's MAC, or the only candidate, identical to the answer."""
        if observation.mac is not None:
            same_mac = [i for i in ids if self.assets[i].mac == observation.mac]
            if same_mac:
                return min(same_mac, key=lambda i: (-self.assets[i].last_seen.timestamp(), i))
        if len(ids) == 1 and self.assets[ids[0]].state_hash == digest:
            return ids[0]
        return None

    def load(self, ids: Iterable[int]) -> None:
        missing = [i for i in ids if i not in self.services]
        if missing:
            self.services.update(inventory.known_services(self.conn, missing))
            self.identities.update(inventory.asset_identities(self.conn, missing))

    def known(self, asset_id: int) -> KnownAsset:
        self.load([asset_id])
        return inventory.known_asset(
            self.assets[asset_id], self.identities[asset_id], self.services[asset_id]
        )

    def claim(self, asset_id: int) -> None:
        self.claimed.add(asset_id)


def merge_batch(
    context: MergeContext, batch: Sequence[Answer], *, phase: ProcessingPhase | None = None
) -> None:
    """Merge one batch of answers in one transaction and move the checkpoint past it."""
    with context.db.write() as conn:
        expected = context.done
        context.done = expected + len(batch)
        try:
            context.fence(conn)
            writes = _plan_batch(conn, context, batch)
            _write_batch(conn, context, writes)
            if not inventory.advance_run(
                conn,
                context.run_id,
                expected_done=expected,
                done=context.done,
                counts=writes.counts,
                phase=phase,
            ):
                raise LeaseLost(context.task_id)
        except BaseException:
            context.done = expected
            raise
    if phase is not None:
        context.run["phase"] = phase.value


def _plan_batch(conn: Connection, context: MergeContext, batch: Sequence[Answer]) -> BatchWrites:
    writes = BatchWrites()
    observations = [a.observation for a in batch if a.observation is not None]
    candidates = _Candidates(
        conn,
        inventory.assets_sharing_identity(
            conn,
            context.site_id,
            macs={o.mac for o in observations if o.mac},
            address_keys={address_key(a) for o in observations for a in o.addresses},
            hostnames={n for o in observations for n in o.hostnames},
        ),
        context.run_id,
    )
    digests = {o.line: state_digest(AssetState.of_observation(o)) for o in observations}
    # Read the details of every candidate the quick path cannot settle, in one go.
    unclear: set[int] = set()
    for seen in observations:
        ids = candidates.unclaimed_for(seen)
        quick = candidates.quick_match(seen, digests[seen.line], ids)
        if quick is None:
            unclear.update(ids)
        elif candidates.assets[quick].state_hash != digests[seen.line]:
            unclear.add(quick)
    candidates.load(unclear)
    for answer in batch:
        if answer.ignored is not None:
            writes.count(ChangeKind.IGNORED)
            writes.changes.append(
                _change_row(
                    context,
                    None,
                    Change(ChangeKind.IGNORED, {"reason": answer.ignored.value}),
                    answer.address,
                    None,
                )
            )
            continue
        observation = answer.observation
        if observation is None:
            continue
        digest = digests[observation.line]
        ids = candidates.unclaimed_for(observation)
        found = candidates.quick_match(observation, digest, ids)
        if found is None:
            matched = match(observation, [candidates.known(i) for i in ids])
            found = matched.asset.id if matched is not None else None
        if found is None:
            _plan_new(context, writes, observation)
            continue
        candidates.claim(found)
        _plan_known(context, writes, candidates, found, observation, digest)
    return writes


def _plan_new(context: MergeContext, writes: BatchWrites, observation: Observation) -> None:
    state = merge_state(None, observation, None)
    change = compare(None, state)
    writes.count(change.kind)
    values = _asset_values(context, state, first_seen=context.observed_at)
    values["uptime_seconds"] = observation.uptime_seconds
    values["distance"] = observation.distance
    writes.new_assets.append(values)
    writes.new_sources.append(observation.source or context.source)
    writes.new_services.append(list(state.services))
    writes.new_changes.append(
        _change_row(context, None, change, primary_address(state.addresses), None)
    )


def _plan_known(
    context: MergeContext,
    writes: BatchWrites,
    candidates: _Candidates,
    asset_id: int,
    observation: Observation,
    digest: str,
) -> None:
    asset = candidates.assets[asset_id]
    observed_at = context.observed_at
    seen: dict[str, Any] = {
        "id": asset_id,
        "alive": asset.alive,
        "first_seen": min(asset.first_seen, observed_at),
        "last_seen": max(asset.last_seen, observed_at),
        "last_task_id": context.task_id,
        "last_run_id": context.run_id,
        "state_hash": asset.state_hash,
    }
    writes.sources[(asset_id, observation.source or context.source)] = None
    if asset.last_seen > observed_at:
        # An older scan than what the inventory already knows changes nothing.
        writes.count(ChangeKind.UNCHANGED)
        writes.touched_assets.append(seen)
        return
    if digest == asset.state_hash:
        kind, change, after = ChangeKind.UNCHANGED, None, None
        if not asset.alive:
            kind, change = ChangeKind.ONLINE, Change(ChangeKind.ONLINE)
    else:
        known = candidates.known(asset_id)
        after = merge_state(known, observation, context.probed_for(observation))
        change = compare(known, after)
        kind = change.kind
    writes.count(kind)
    if observation.uptime_seconds is not None or observation.distance is not None:
        writes.reported.append(
            {
                "id": asset_id,
                "uptime_seconds": observation.uptime_seconds,
                "distance": observation.distance,
            }
        )
    if after is None or change is None or not change.details:
        # Unchanged, or back online as it was: only when it was seen, and that it is alive.
        if after is not None:
            seen["state_hash"] = state_digest(after)
        writes.touched_assets.append({**seen, "alive": True})
        if change is not None and change.kind is ChangeKind.ONLINE:
            writes.changes.append(
                _change_row(context, asset_id, change, asset.address, asset.hostname)
            )
        return
    values = _asset_values(
        context, after, first_seen=seen["first_seen"], last_seen=seen["last_seen"]
    )
    values["id"] = asset_id
    writes.updated_assets.append(values)
    addresses, hostnames, _ = candidates.identities[asset_id]
    if set(after.addresses) != set(addresses):
        writes.readdressed[asset_id] = after.addresses
    if set(after.hostnames) != set(hostnames):
        writes.renamed[asset_id] = after.hostnames
    _plan_services(writes, asset_id, candidates.services[asset_id], after.services, observed_at)
    writes.changes.append(
        _change_row(context, asset_id, change, values["address"], values["hostname"])
    )


def _plan_services(
    writes: BatchWrites,
    asset_id: int,
    rows: list[tuple[int, Service]],
    after: Sequence[Service],
    observed_at: datetime,
) -> None:
    existing = {known.key: (service_id, known) for service_id, known in rows}
    wanted = {service.key: service for service in after}
    for key, (service_id, _) in existing.items():
        if key not in wanted:
            writes.service_deletes.append(service_id)
    for key, service in wanted.items():
        row = existing.get(key)
        if row is None:
            writes.service_inserts.append(
                {
                    **inventory.service_values(service),
                    "asset_id": asset_id,
                    "first_seen": observed_at,
                    "changed_at": observed_at,
                }
            )
        elif row[1] != service:
            writes.service_updates.append(
                {**inventory.service_values(service), "id": row[0], "changed_at": observed_at}
            )


def _asset_values(
    context: MergeContext,
    state: AssetState,
    *,
    first_seen: datetime,
    last_seen: datetime | None = None,
) -> dict[str, Any]:
    return {
        "organization_id": context.organization_id,
        "site_id": context.site_id,
        "address": primary_address(state.addresses),
        "address_key": listing_key(state.addresses, state.hostnames),
        "addresses": list(state.addresses),
        "mac": state.mac,
        "hostname": primary_hostname(state.hostnames),
        "hostnames": list(state.hostnames),
        "os": state.os,
        "alive": True,
        "service_count": len(state.services),
        "state_hash": state_digest(state),
        "first_seen": first_seen,
        "last_seen": last_seen or context.observed_at,
        "changed_at": context.observed_at,
        "last_task_id": context.task_id,
        "last_run_id": context.run_id,
        **details_columns(state.details),
    }


def _change_row(
    context: MergeContext,
    asset_id: int | None,
    change: Change,
    address: str,
    hostname: str | None,
) -> dict[str, Any]:
    return {
        "run_id": context.run_id,
        "task_id": context.task_id,
        "organization_id": context.organization_id,
        "asset_id": asset_id,
        "kind": change.kind.value,
        "address": address,
        "hostname": hostname,
        "details": change.details,
    }


def _write_batch(conn: Connection, context: MergeContext, writes: BatchWrites) -> None:
    new_ids = inventory.insert_assets(conn, writes.new_assets)
    inventory.insert_addresses(
        conn,
        context.site_id,
        {
            asset_id: row["addresses"]
            for asset_id, row in zip(new_ids, writes.new_assets, strict=True)
        },
    )
    inventory.insert_names(
        conn,
        {
            asset_id: row["hostnames"]
            for asset_id, row in zip(new_ids, writes.new_assets, strict=True)
        },
    )
    observed_at = context.observed_at
    service_inserts = list(writes.service_inserts)
    for asset_id, found in zip(new_ids, writes.new_services, strict=True):
        service_inserts.extend(
            {
                **inventory.service_values(service),
                "asset_id": asset_id,
                "first_seen": observed_at,
                "changed_at": observed_at,
            }
            for service in found
        )
    for asset_id, row, change in zip(new_ids, writes.new_assets, writes.new_changes, strict=True):
        change["asset_id"] = asset_id
        change["hostname"] = row["hostname"]
    inventory.update_assets(conn, writes.updated_assets)
    inventory.touch_assets(conn, writes.touched_assets)
    inventory.replace_addresses(conn, context.site_id, writes.readdressed)
    inventory.replace_names(conn, writes.renamed)
    inventory.delete_services(conn, writes.service_deletes)
    inventory.update_services(conn, writes.service_updates)
    inventory.insert_services(conn, service_inserts)
    inventory.insert_changes(conn, writes.new_changes + writes.changes)
    inventory.note_reported(conn, writes.reported)
    seen = dict.fromkeys(zip(new_ids, writes.new_sources, strict=True))
    seen.update(writes.sources)
    inventory.note_sources(conn, [(asset_id, source, observed_at) for asset_id, source in seen])


def scope_key_ranges(scope: Scope) -> list[tuple[str, str]]:
    ranges = [address_key_bounds(4, first, last) for first, last in scope.ipv4]
    ranges += [address_key_bounds(6, first, last) for first, last in scope.ipv6]
    return ranges


def mark_silent_assets_offline(
    context: MergeContext, *, batch_size: int, should_stop: Callable[[], bool]
) -> None:
    """Mark offline the known assets in the scanned scope that did not answer (SPEC §8)."""
    scope = context.offline_scope
    if scope is None:
        return
    with context.db.read() as conn:
        silent = inventory.silent_assets_in_scope(
            conn,
            context.site_id,
            run_id=context.run_id,
            observed_at=context.observed_at,
            key_ranges=scope_key_ranges(scope),
            hostnames=scope.hostnames,
        )
    for start in range(0, len(silent), batch_size):
        if should_stop():
            raise StopRequested(context.task_id)
        with context.db.write() as conn:
            context.fence(conn)
            marked = inventory.mark_offline(
                conn, silent[start : start + batch_size], run_id=context.run_id
            )
            inventory.insert_changes(
                conn,
                [
                    _change_row(
                        context,
                        asset.id,
                        Change(ChangeKind.OFFLINE, {"last_seen": asset.last_seen.isoformat()}),
                        asset.address,
                        asset.hostname,
                    )
                    for asset in marked
                ],
            )
            if not inventory.advance_run(
                conn,
                context.run_id,
                expected_done=context.done,
                done=context.done,
                counts={ChangeKind.OFFLINE.value: len(marked)},
            ):
                raise LeaseLost(context.task_id)


def finish(context: MergeContext) -> Task:
    """Close the run and move the task to `processed` with its change summary."""
    now = context.clock.now()
    with context.db.write() as conn:
        context.fence(conn, now)
        run = inventory.finish_run(conn, context.run_id, ended_at=now)
        summary = summarize({name: run[name] for name in inventory.RUN_COUNTS})
        request_after_processing(conn, context.claim.task, summary, now=now)
        return complete(
            conn,
            context.claim,
            message=_summary_sentence(summary, run=int(run["number"]), partial=context.partial),
            changes={
                **context.progress(),
                "change_summary": summary,
                "cs_new": summary["new"],
                "cs_changed": summary["changed"],
                "cs_offline": summary["offline"],
                "cs_online": summary["online"],
                "cs_unchanged": summary["unchanged"],
            },
            now=now,
        )


def _summary_sentence(summary: dict[str, int], *, run: int, partial: bool) -> str:
    parts = [
        f"{summary[key]} {key}" for key in ("new", "changed", "offline", "online") if summary[key]
    ]
    what = "processed" if run == 1 else f"processed again (run {run})"
    said = f"{what}: " + (", ".join(parts) if parts else "nothing changed")
    if partial:
        said += "; the data is partial (its scan was stopped), so nothing was marked offline"
    return said
