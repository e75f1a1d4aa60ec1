"""The day view: reads grouped into app-and-window sessions, lost time with its reason, the
memories made from each session, and the counts the header shows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.services import DayTimeline
from app.timeline import (
    DayView,
    build_day,
    plain_text,
    search_text,
    sessions_of,
    text_segments,
)
from storage.capture_log import CaptureGap, GapReason
from storage.records import EpisodicMemory, Event, SemanticMemory
from storage.store import MemoryStore

T0 = datetime(2026, 3, 2, 14, 2, tzinfo=UTC)


def read(minute: float, app: str = "Firefox", title: str = "Q3 budget", text: str = "x") -> Event:
    return Event(
        source="screen",
        app=app,
        window_title=title,
        text=text,
        occurred_at=T0 + timedelta(minutes=minute),
    )


def gap(minute: float, minutes: float, reason: GapReason, gap_id: int = 1) -> CaptureGap:
    start = T0 + timedelta(minutes=minute)
    return CaptureGap(
        id=gap_id,
        started_at=start,
        ended_at=start + timedelta(minutes=minutes),
        reason=reason,
        count=3,
    )


def day_of(events, gaps=(), memories=(), made=()) -> DayView:
    timeline = DayTimeline(T0.date(), tuple(memories), tuple(events), tuple(gaps))
    return build_day(timeline, made)


def test_reads_of_one_window_are_one_session_with_its_times_and_count() -> None:
    events = [read(m) for m in (0, 5, 12, 20, 35)]
    (session,) = sessions_of(events)
    assert session.reads == 5
    assert session.heading(UTC) == "Firefox — Q3 budget, 14:02–14:37, 5 reads"


def test_a_new_window_an_idle_stretch_or_a_gap_starts_a_new_session() -> None:
    events = [
        read(0),
        read(1, title="Inbox"),  # another window
        read(2, title="Inbox"),
        read(20, title="Inbox"),  # 18 min later: idle
        read(21, title="Inbox"),
        read(23, title="Inbox"),  # after a pause
    ]
    paused = gap(22, 0.5, GapReason.PAUSED)
    sessions = sessions_of(events, [paused])
    assert [(s.title, s.reads) for s in sessions] == [
        ("Q3 budget", 1),
        ("Inbox", 2),
        ("Inbox", 2),
        ("Inbox", 1),
    ]


def test_quiet_skips_are_not_gaps_and_the_summary_counts_the_rows() -> None:
    day = day_of(
        [read(0), read(1), read(30, app="xterm", title="notes")],
        [gap(5, 10, GapReason.PAUSED), gap(40, 60, GapReason.UNCHANGED, 2)],
        [EpisodicMemory(summary="Talked to Dana", occurred_at=T0 + timedelta(minutes=50))],
    )
    rows = day.rows()
    assert [type(r).__name__ for r in rows] == [
        "Session",
        "CaptureGap",
        "Session",
        "EpisodicMemory",
    ]
    assert day.summary() == (
        "3 reads in 2 sessions · 1 gap (10 min not recorded) · 1 memory"
    )  # "unchanged" is not lost time, so it is neither a row nor counted


def test_memories_made_from_a_session_go_with_it_not_loose() -> None:
    a, b = read(0), read(30, app="xterm", title="notes")
    made = SemanticMemory(name="Q3", summary="the Q3 budget is 5k", provenance=(a.id,))
    episode = EpisodicMemory(summary="Budget review", occurred_at=T0, provenance=(a.id,))
    day = day_of([a, b], memories=[episode], made=[made, episode])
    first, second = day.sessions
    assert {m.id for m in first.memories} == {made.id, episode.id}
    assert second.memories == ()
    assert day.loose == ()
    assert day.memory_count == 2


def test_the_app_filter_keeps_gaps_and_every_app_name() -> None:
    day = day_of(
        [read(0), read(30, app="xterm", title="notes"), read(40)],
        [gap(10, 5, GapReason.SCREEN_LOCKED)],
    )
    only = day.only("xterm")
    assert [s.app for s in only.sessions] == ["xterm"]
    assert len(only.gaps) == 1 and only.apps == ("Firefox", "xterm")
    assert only.summary().startswith("1 read in 1 session · 1 gap")
    assert len(day.only(None).sessions) == 3


def test_moving_between_sessions_and_to_now() -> None:
    day = day_of([read(0), read(30, app="xterm"), read(60, app="mail")])
    assert day.step(None, 1) == 0 and day.step(None, -1) == 2
    assert day.step(0, -1) == 0 and day.step(0, 1) == 1 and day.step(2, 1) == 2
    assert day.index_at(T0 + timedelta(minutes=29)) == 1  # nearest
    assert day.index_at(T0) == 0
    assert day.now_index(T0 + timedelta(minutes=45)) == 1
    assert day.now_index(T0 - timedelta(hours=1)) == 0
    assert day_of([]).step(None, 1) is None


def test_the_strip_spans_whole_hours_around_what_happened() -> None:
    day = day_of([read(0), read(95)])
    start, end = day.extent(UTC)
    assert (start.hour, end.hour) == (14, 16)
    empty = day_of([])
    start, end = empty.extent(UTC)
    assert (start.hour, end.hour) == (8, 18)
    start, end = empty.extent(UTC, now=T0.replace(hour=21))
    assert (start.hour, end.hour) == (21, 22)


def test_redactions_are_cut_out_as_such_and_left_out_of_search() -> None:
    text = "mail [REDACTED:email] about the budget [REDACTED:card]"
    assert text_segments(text) == [
        ("mail ", False),
        ("[REDACTED:email]", True),
        (" about the budget ", False),
        ("[REDACTED:card]", True),
    ]
    assert plain_text(text) == "mail [email redacted] about the budget [card redacted]"
    events = [read(0, text=text), read(1, text="budget forecast meeting")]
    (session,) = sessions_of(events)
    query = search_text(session)
    assert query.split()[:2] == ["q3", "budget"]  # the title first
    assert "forecast" in query and "redacted" not in query


def test_load_day_of_the_services(fake_store: MemoryStore) -> None:
    from app.services import Services
    from app.settings import Settings
    from app.timeline import load_day

    now = datetime.now(UTC)
    event = Event(
        source="screen", app="editor", window_title="plan.txt", text="beans", occurred_at=now
    )
    fake_store.events.put(event)
    fake_store.add(SemanticMemory(name="beans", summary="grow beans", provenance=(event.id,)))
    services = Services(Settings(), store_opener=lambda _s: fake_store)
    local = now.astimezone()
    day = load_day(services, local.date(), local.tzinfo)
    assert day.day == local.date()
    (session,) = day.sessions
    assert session.label() == "editor — plan.txt"
    assert [m.headline() for m in session.memories] == ["beans: grow beans"]
