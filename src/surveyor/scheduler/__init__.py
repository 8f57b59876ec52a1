"""The scheduler: fires recurring templates and brings one-off tasks due (SPEC §5).

- `firing`: the pure rules (spawn, skip, coalesce; launch grace) and their event wording.
- `tick`: one pass at a given time (`Scheduler.tick(now)`), what tests drive directly.
- `loop`: the console service that ticks and sleeps until the next due moment.
- `leader`: which console fires when several share one PostgreSQL.

Its statements are the store's: store/schedules.py (set-based, in batches) and
store/leader_lock.py.
"""
