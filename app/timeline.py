"""The day view behind the timeline: a day's reads grouped into app-and-window sessions, the
stretches capture did not record (with their reason), and the memories made from each session.

People scrub through their day by what they were doing ("Firefox — Q3 budget, 14:02–14:37,
12 reads"), not by single screen reads, so the grouping is done here, once, Qt-free and tested;
the widgets only draw it. Every count the header shows is computed from the same rows the list
shows, so the two cannot disagree.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta, tzinfo

from app.services import DayTimeline, Services
from storage.capture_log import CaptureGap, GapReason
from storage.records import Event, Record
from storage.text import content_words, query_words

#: Skips that are not lost time: the screen simply had nothing new to read.
QUIET_REASONS = frozenset({GapReason.UNCHANGED, GapReason.DUPLICATE, GapReason.NO_TEXT})
#: No read of a window for longer than this starts a new session when it is read again (an
#: unchanged screen is re-read now and then, so reading one page for long is one session).
SESSION_IDLE_S = 900.0
#: How capture marks what it redacted (capture/redact.py writes `[REDACTED:<kind>]`).
REDACTION = re.compile(r"\[REDACTED:[^\]\s]*\]")

#: Gap reasons as a person says them.
REASON_TEXT = {
    GapReason.PAUSED: "capture paused",
    GapReason.EXCLUDED: "excluded window",
    GapReason.SCREEN_LOCKED: "screen locked",
    GapReason.UNCHANGED: "screen unchanged",
    GapReason.DUPLICATE: "same text again",
    GapReason.NO_TEXT: "no text on screen",
    GapReason.OCR_ERROR: "text recognition failed",
    GapReason.BACKLOG: "too much waiting to be read",
    GapReason.SCREEN_UNAVAILABLE: "screen unavailable",
}

SOURCE_TEXT = {"chat": "Chat", "import": "Imported", "manual": "Added by hand", "screen": "Screen"}


def clock(at: datetime, tz: tzinfo | None = None) -> str:
    return at.astimezone(tz).strftime("%H:%M")


def span_text(seconds: float) -> str:
    if seconds < 90:
        return f"{max(seconds, 0):.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


@dataclass(frozen=True)
class Session:
    """Consecutive reads of one app's window: what a person was looking at, from when to when."""

    app: str
    title: str
    source: str
    events: tuple[Event, ...]
    #: Memories the agents made from these reads (their provenance names one of them).
    memories: tuple[Record, ...] = ()

    @property
    def started_at(self) -> datetime:
        return self.events[0].occurred_at

    @property
    def ended_at(self) -> datetime:
        return max(e.last_seen for e in self.events)

    @property
    def reads(self) -> int:
        return len(self.events)

    @property
    def key(self) -> tuple[str, str, datetime]:
        """Stays the same when a refresh adds reads to the end of the session."""
        return (self.app, self.title, self.started_at)

    def label(self) -> str:
        """ "Firefox — Q3 budget"; a chat or an import by its source."""
        name = " — ".join(p for p in (self.app, self.title) if p)
        return name or SOURCE_TEXT.get(self.source, self.source)

    def times(self, tz: tzinfo | None = None) -> str:
        start, end = clock(self.started_at, tz), clock(self.ended_at, tz)
        return start if start == end else f"{start}–{end}"

    def heading(self, tz: tzinfo | None = None) -> str:
        return f"{self.label()}, {self.times(tz)}, {plural(self.reads, 'read')}"

    def contains(self, at: datetime) -> bool:
        return self.started_at <= at <= self.ended_at


def gap_text(gap: CaptureGap) -> str:
    """ "capture paused for 12 min (40 skipped looks): detail"."""
    reason = REASON_TEXT.get(gap.reason, gap.reason.value)
    text = f"{reason} for {span_text(gap.seconds)} ({plural(gap.count, 'skipped look')})"
    return text + (f": {gap.detail}" if gap.detail else "")


def sessions_of(
    events: Iterable[Event],
    breaks: Sequence[CaptureGap] = (),
    idle_s: float = SESSION_IDLE_S,
) -> list[Session]:
    """Group reads into sessions: a new one starts when the app or window changes, after
    `idle_s` without a read, or across a stretch capture did not record (`breaks`)."""
    ordered = sorted(events, key=lambda e: e.occurred_at)
    out: list[Session] = []
    current: list[Event] = []

    def close() -> None:
        if current:
            first = current[0]
            out.append(Session(first.app, first.window_title, first.source, tuple(current)))
            current.clear()

    for event in ordered:
        if current:
            last = current[-1]
            same = (last.app, last.window_title, last.source) == (
                event.app,
                event.window_title,
                event.source,
            )
            idle = (event.occurred_at - last.last_seen).total_seconds() > idle_s
            broken = any(last.occurred_at <= g.started_at < event.occurred_at for g in breaks)
            if not same or idle or broken:
                close()
        current.append(event)
    close()
    return out


Row = Session | CaptureGap | Record


@dataclass(frozen=True)
class DayView:
    """One local day: sessions, lost-time gaps and the memories not tied to a session, as rows
    in time order; `summary` counts exactly those rows."""

    day: date
    sessions: tuple[Session, ...]
    gaps: tuple[CaptureGap, ...]
    #: The day's episodic memories that no session of the day made (a chat, an edit by hand).
    loose: tuple[Record, ...] = ()
    #: Every app seen this day, for the per-app filter (kept when filtered).
    apps: tuple[str, ...] = field(default=())
    app_filter: str | None = None

    def rows(self) -> list[Row]:
        rows: list[tuple[datetime, Row]] = [(s.started_at, s) for s in self.sessions]
        rows += [(g.started_at, g) for g in self.gaps]
        rows += [(m.timestamp, m) for m in self.loose]
        rows.sort(key=lambda r: r[0])
        return [r for _at, r in rows]

    @property
    def reads(self) -> int:
        return sum(s.reads for s in self.sessions)

    @property
    def memory_count(self) -> int:
        made = {m.id for s in self.sessions for m in s.memories}
        return len(made | {m.id for m in self.loose})

    @property
    def lost_seconds(self) -> float:
        return sum(max(g.seconds, 0.0) for g in self.gaps)

    def summary(self) -> str:
        text = (
            f"{plural(self.reads, 'read')} in {plural(len(self.sessions), 'session')} · "
            f"{plural(len(self.gaps), 'gap')}"
        )
        if self.gaps:
            text += f" ({span_text(self.lost_seconds)} not recorded)"
        return text + f" · {plural(self.memory_count, 'memory', 'memories')}"

    def only(self, app: str | None) -> DayView:
        """The view with only `app`'s sessions (gaps stay: they are nobody's); None: all."""
        if app is None:
            return replace(self, app_filter=None)
        return replace(
            self,
            sessions=tuple(s for s in self.sessions if s.app == app),
            loose=(),
            app_filter=app,
        )

    # ----- moving through the day ------------------------------------------------------------

    def index_at(self, at: datetime) -> int | None:
        """The session under `at`, else the nearest one (None when there are none)."""
        if not self.sessions:
            return None
        for i, s in enumerate(self.sessions):
            if s.contains(at):
                return i

        def distance(i: int) -> float:
            s = self.sessions[i]
            return min(
                abs((s.started_at - at).total_seconds()), abs((s.ended_at - at).total_seconds())
            )

        return min(range(len(self.sessions)), key=distance)

    def index_of(self, key: tuple[str, str, datetime] | None) -> int | None:
        for i, s in enumerate(self.sessions):
            if s.key == key:
                return i
        return None

    def step(self, index: int | None, by: int) -> int | None:
        """The previous (`by=-1`) or next session, staying at the ends; from none: the last
        going back, the first going on."""
        if not self.sessions:
            return None
        if index is None:
            return len(self.sessions) - 1 if by < 0 else 0
        return min(max(index + by, 0), len(self.sessions) - 1)

    def now_index(self, now: datetime) -> int | None:
        """Home: the session going on now, else the last one that started before now."""
        before = [i for i, s in enumerate(self.sessions) if s.started_at <= now]
        return before[-1] if before else self.step(None, 1)

    def extent(self, tz: tzinfo, now: datetime | None = None) -> tuple[datetime, datetime]:
        """The stretch of the day the strip shows: whole hours around what happened (and now,
        on today's page), at least one hour; the working day when nothing happened."""
        midnight = datetime.combine(self.day, time.min, tzinfo=tz)
        times: list[datetime] = []
        for s in self.sessions:
            times += [s.started_at, s.ended_at]
        for g in self.gaps:
            times += [g.started_at, g.ended_at]
        if now is not None and now.astimezone(tz).date() == self.day:
            times.append(now)
        if not times:
            return midnight + timedelta(hours=8), midnight + timedelta(hours=18)
        first = max(min(times), midnight)
        last = min(max(times), midnight + timedelta(days=1))
        start = first.astimezone(tz).replace(minute=0, second=0, microsecond=0)
        end = last.astimezone(tz).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
        if end - start < timedelta(hours=1):
            start = max(midnight, end - timedelta(hours=1))
            end = start + timedelta(hours=1)
        return start, min(end, midnight + timedelta(days=1))


def build_day(timeline: DayTimeline, made: Sequence[Record] = ()) -> DayView:
    """The day view of what the store holds for one day (`made`: memories whose provenance
    names the day's events)."""
    gaps = tuple(g for g in timeline.gaps if g.reason not in QUIET_REASONS)
    sessions = sessions_of(timeline.events, gaps)
    by_event: dict[str, list[Record]] = {}
    for record in made:
        for source in record.provenance:
            by_event.setdefault(source, []).append(record)
    with_memories = []
    tied: set[str] = set()
    for s in sessions:
        mine = {m.id: m for e in s.events for m in by_event.get(e.id, ())}
        tied |= set(mine)
        with_memories.append(replace(s, memories=tuple(mine.values())))
    loose = tuple(m for m in timeline.memories if m.id not in tied)
    apps = tuple(sorted({s.app for s in sessions if s.app}, key=str.lower))
    return DayView(timeline.day, tuple(with_memories), gaps, loose, apps)


def load_day(services: Services, day: date, tz: tzinfo) -> DayView:
    """Blocking (a worker thread): the day's rows and the memories made from its reads."""
    timeline = services.timeline(day, tz)
    made = services.store().made_from([e.id for e in timeline.events])
    return build_day(timeline, made)


def text_segments(text: str) -> list[tuple[str, bool]]:
    """`text` cut into (piece, is_redaction) so a view can show what was redacted as such."""
    out: list[tuple[str, bool]] = []
    at = 0
    for match in REDACTION.finditer(text):
        if match.start() > at:
            out.append((text[at : match.start()], False))
        out.append((match.group(0), True))
        at = match.end()
    if at < len(text):
        out.append((text[at:], False))
    return out


def plain_text(text: str) -> str:
    """`text` with each redaction said in words ("[email redacted]"), for one-line previews."""
    return REDACTION.sub(lambda m: f"[{m.group(0)[10:-1] or 'text'} redacted]", text)


def search_text(session: Session, words: int = 10) -> str:
    """What "search from here" looks for: the window title's words and the session's most
    frequent content words (redaction markers left out)."""
    title = query_words(session.title)
    counts: Counter[str] = Counter()
    for event in session.events:
        counts.update(content_words(REDACTION.sub(" ", event.text)))
    common = [w for w, _n in sorted(counts.items(), key=lambda p: (-p[1], p[0])) if w not in title]
    return " ".join([*title, *common][: max(words, len(title))])
