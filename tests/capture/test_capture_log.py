"""The capture health log (storage side): merging, flushing, reading back, and capture state."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from storage.capture_log import CaptureLog, GapReason
from storage.sqlite_db import Database

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def test_repeated_skips_merge_into_one_gap_and_a_pause_in_between_splits_them(
    db: Database,
) -> None:
    log = CaptureLog(db, merge_within_s=10)
    for n in range(5):
        log.note(GapReason.UNCHANGED, T0 + timedelta(seconds=3 * n), monitor=1)
    log.note(GapReason.UNCHANGED, T0 + timedelta(seconds=60), monitor=1)  # too late to merge
    log.note(GapReason.UNCHANGED, T0 + timedelta(seconds=60), monitor=2)  # another monitor
    gaps = sorted(log.gaps(), key=lambda g: (g.started_at, g.monitor or 0))
    assert [(g.count, g.monitor, g.seconds) for g in gaps] == [
        (5, 1, 12.0),
        (1, 1, 0.0),
        (1, 2, 0.0),
    ]
    assert log.totals() == {"unchanged": 7}


def test_open_gaps_reach_the_database_on_flush_and_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "g.sqlite3"
    db = Database(path)
    log = CaptureLog(db, flush_every_s=3600)
    for n in range(4):
        log.note(GapReason.PAUSED, T0 + timedelta(seconds=n))
    log.flush()
    db.close()
    again = CaptureLog(Database(path))
    (gap,) = again.gaps()
    assert (gap.reason, gap.count, gap.started_at, gap.ended_at) == (
        GapReason.PAUSED,
        4,
        T0,
        T0 + timedelta(seconds=3),
    )


def test_gaps_filter_by_time_and_reason_newest_first(db: Database) -> None:
    log = CaptureLog(db)
    log.note(GapReason.EXCLUDED, T0, detail="app keepassxc")
    log.note(GapReason.OCR_ERROR, T0 + timedelta(minutes=5), detail="timeout")
    log.note(GapReason.BACKLOG, T0 + timedelta(minutes=10))
    assert [g.reason for g in log.gaps()] == [
        GapReason.BACKLOG,
        GapReason.OCR_ERROR,
        GapReason.EXCLUDED,
    ]
    recent = log.gaps(since=T0 + timedelta(minutes=4))
    assert [g.reason for g in recent] == [GapReason.BACKLOG, GapReason.OCR_ERROR]
    only = log.gaps(reasons=[GapReason.EXCLUDED])
    assert [g.detail for g in only] == ["app keepassxc"]
    assert log.prune(T0 + timedelta(minutes=6)) == 2
    assert [g.reason for g in log.gaps()] == [GapReason.BACKLOG]


def test_close_open_starts_a_new_gap_next_time(db: Database) -> None:
    log = CaptureLog(db)
    log.note(GapReason.PAUSED, T0)
    log.close_open(GapReason.PAUSED)
    log.note(GapReason.PAUSED, T0 + timedelta(seconds=1))
    assert len(log.gaps()) == 2


def test_capture_state_and_pending_events(db: Database) -> None:
    from storage.events import EventQueue
    from storage.records import Event

    log = CaptureLog(db)
    assert log.get_state("paused_until") is None
    log.set_state("paused_until", "forever")
    assert log.get_state("paused_until") == "forever"
    log.set_state("paused_until", None)
    assert log.get_state("paused_until") is None
    queue = EventQueue(db)
    queue.put_many([Event(text="a"), Event(text="b")])
    queue.claim(1)
    assert log.pending_events() == 1
