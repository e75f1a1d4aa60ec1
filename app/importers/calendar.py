"""`engram import-calendar FILE.ics`: each calendar event an episodic memory at its own time.

The file is read twice, like a chat export: first checked whole (a VEVENT that never ends, a
start Engram cannot read: an error naming the line, nothing stored), then written in batches.
A memory's id comes from the event's UID and start, so importing the same calendar twice adds
nothing and a changed event is updated in place (with history). A recurring event is kept at
its first occurrence. Text is redacted as a screen read is.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from app.importers.base import ImportFailed, Summary
from capture.redact import Redactor
from storage.dates import UnknownDateFormat, parse_when
from storage.errors import NotFound
from storage.records import EpisodicMemory
from storage.store import MemoryStore, Write

ACTOR = "import:calendar"
BATCH = 100


@dataclass(frozen=True)
class CalendarEvent:
    uid: str
    start: datetime
    summary: str
    location: str
    description: str
    recurring: bool
    line: int


def _unfolded(path: Path) -> Iterator[tuple[int, str]]:
    """The content lines of an .ics file, folded lines joined (RFC 5545 3.1), with the line
    each starts on."""
    start, current = 0, None
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            for number, raw in enumerate(handle, start=1):
                line = raw.rstrip("\r\n")
                if line[:1] in (" ", "\t") and current is not None:
                    current += line[1:]
                    continue
                if current is not None:
                    yield start, current
                start, current = number, line
    except UnicodeDecodeError as exc:
        raise ImportFailed(path, f"this is not UTF-8 text ({exc.reason})") from None
    if current is not None:
        yield start, current


def _text(value: str) -> str:
    return re.sub(r"\\([\\;,nN])", lambda m: "\n" if m[1] in "nN" else m[1], value).strip()


def _start(path: Path, params: str, value: str, line: int) -> datetime:
    tz: tzinfo = UTC
    zone = re.search(r"TZID=([^;:]+)", params)
    if zone:
        try:
            tz = ZoneInfo(zone[1].strip('"'))
        except (ZoneInfoNotFoundError, ValueError):
            raise ImportFailed(path, f"unknown time zone {zone[1]!r}", line) from None
    elif not value.endswith("Z"):
        tz = datetime.now().astimezone().tzinfo or UTC  # a floating time: the user's own
    try:
        return parse_when(value, tz=tz)
    except UnknownDateFormat as exc:
        raise ImportFailed(path, str(exc), line) from None


def events(path: Path) -> Iterator[CalendarEvent]:
    seen_calendar, current, begun = False, dict[str, str](), 0
    for line, content in _unfolded(path):
        if not content.strip():
            continue
        name, _, value = content.partition(":")
        key, _, params = name.partition(";")
        key = key.upper()
        if key == "BEGIN" and value.upper() == "VCALENDAR":
            seen_calendar = True
        elif not seen_calendar:
            raise ImportFailed(path, "not an iCalendar file (no BEGIN:VCALENDAR)", line)
        elif key == "BEGIN" and value.upper() == "VEVENT":
            if begun:
                raise ImportFailed(path, "a VEVENT begins inside another", line)
            current, begun = {}, line
        elif key == "END" and value.upper() == "VEVENT":
            if not begun:
                raise ImportFailed(path, "END:VEVENT without a BEGIN", line)
            yield _event(path, current, begun)
            begun = 0
        elif begun and key in ("UID", "SUMMARY", "LOCATION", "DESCRIPTION", "RRULE"):
            current[key] = value
        elif begun and key == "DTSTART":
            current.update({"DTSTART": value, "DTSTART;": params, "DTSTART@": str(line)})
    if begun:
        raise ImportFailed(path, "the calendar breaks off inside a VEVENT", begun)
    if not seen_calendar:
        raise ImportFailed(path, "not an iCalendar file (no BEGIN:VCALENDAR)", 1)


def _event(path: Path, fields: dict[str, str], line: int) -> CalendarEvent:
    if "DTSTART" not in fields:
        raise ImportFailed(path, "a VEVENT has no DTSTART", line)
    start = _start(path, fields["DTSTART;"], fields["DTSTART"], int(fields["DTSTART@"]))
    return CalendarEvent(
        uid=fields.get("UID") or f"{start.isoformat()}:{fields.get('SUMMARY', '')}",
        start=start,
        summary=_text(fields.get("SUMMARY", "")),
        location=_text(fields.get("LOCATION", "")),
        description=_text(fields.get("DESCRIPTION", "")),
        recurring="RRULE" in fields,
        line=line,
    )


def memory_id(path: Path, event: CalendarEvent) -> str:
    key = f"{path.resolve()}\x00{event.uid}\x00{event.start.isoformat()}"
    return "ep_imp_" + hashlib.sha1(key.encode()).hexdigest()[:24]


def import_calendar(store: MemoryStore, path: Path, *, redactor: Redactor | None = None) -> Summary:
    started = time.monotonic()
    total = sum(1 for _ in events(path))  # a bad file raises here, before anything is stored
    redactor = redactor or Redactor()
    summary = Summary("calendar", str(path), extra={"updated": 0, "recurring": 0, "events": total})
    pending: list[Write] = []
    for event in events(path):
        write = _write(store, path, event, redactor, summary)
        if write is not None:
            pending.append(write)
        if len(pending) >= BATCH:
            store.apply(pending, ACTOR)
            pending = []
    if pending:
        store.apply(pending, ACTOR)
    summary.seconds = time.monotonic() - started
    return summary


def _write(
    store: MemoryStore, path: Path, event: CalendarEvent, redactor: Redactor, summary: Summary
) -> Write | None:
    if not event.summary and not event.description:
        summary.rejected["no title or description"] += 1
        return None
    summary.read += 1
    summary.extra["recurring"] += event.recurring
    title = event.summary or event.description.splitlines()[0]
    text = f"{title} at {event.location}" if event.location else title
    summary_text, details = redactor.redact(text), redactor.redact(event.description)
    summary.redacted += summary_text.total + details.total
    fields = {
        "summary": summary_text.text,
        "details": details.text,
        "occurred_at": event.start,
        "event_type": "calendar",
        "provenance": (f"{path.resolve()}#{event.uid}",),
    }
    ident = memory_id(path, event)
    try:
        before = store.get(ident)
    except NotFound:
        summary.new += 1
        return Write("add", EpisodicMemory(id=ident, **fields))
    assert isinstance(before, EpisodicMemory)
    if (before.summary, before.details) == (fields["summary"], fields["details"]):
        summary.duplicates += 1
        return None
    summary.extra["updated"] += 1
    return Write("replace", before.updated(**fields))
