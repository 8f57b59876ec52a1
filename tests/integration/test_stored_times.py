"""Times read back from either backend are the aware UTC moments that were written, whatever
the stored text looks like on SQLite (`UTCDateTime`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from sqlalchemy import Column, Integer, MetaData, Table, insert, select, text

from surveyor.store.engine import Database
from surveyor.store.schema import UTCDateTime

times = Table(
    "test_stored_times",
    MetaData(),
    Column("id", Integer, primary_key=True),
    Column("at", UTCDateTime, nullable=True),
)


def test_times_come_back_as_the_utc_moments_written(db: Database) -> None:
    written = [
        datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC),
        datetime(2026, 3, 4, 5, 6, 7, 890123, tzinfo=UTC),
        datetime(1, 1, 1, tzinfo=UTC),
        datetime(2026, 3, 4, 7, 6, 7, tzinfo=timezone(timedelta(hours=2))),
        None,
    ]
    times.create(db.engine)
    try:
        with db.write() as conn:
            conn.execute(insert(times), [{"id": n, "at": at} for n, at in enumerate(written)])
        with db.read() as conn:
            read = conn.execute(select(times.c.at).order_by(times.c.id)).scalars().all()
        assert read == written
        assert all(at.tzinfo is UTC for at in read if at is not None)
    finally:
        times.drop(db.engine)


def test_sqlite_text_in_other_shapes_is_read_as_utc(db: Database) -> None:
    if not db.is_sqlite:
        return
    stored = {
        1: ("2026-03-04 05:06:07", datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)),
        2: ("2026-03-04T05:06:07.5", datetime(2026, 3, 4, 5, 6, 7, 500000, tzinfo=UTC)),
        3: ("2026-03-04 07:06:07+02:00", datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)),
        4: ("2026-03-04 05:06:07Z", datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)),
    }
    times.create(db.engine)
    try:
        with db.write() as conn:
            for key, (value, _) in stored.items():
                conn.execute(
                    text("INSERT INTO test_stored_times VALUES (:id, :at)"),
                    {"id": key, "at": value},
                )
        with db.read() as conn:
            read = dict(conn.execute(select(times.c.id, times.c.at)).all())
        assert read == {key: moment for key, (_, moment) in stored.items()}
        assert all(at.tzinfo is UTC for at in read.values())
    finally:
        times.drop(db.engine)
