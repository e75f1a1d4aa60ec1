"""What of a batch the memory agents need to read: screen reads coalesced, known text left out.

Capture stores a new event each time a window's text changes, so a person typing makes a dozen
reads of one window a minute, each repeating the page around the new words. The agents' cost is
per call and per prompt token, so a batch shows them each run of consecutive reads of the same
window as one read (the union of its lines, in order), and leaves out lines they were already
shown from that window. A batch with nothing new is not shown to a model at all: its text is
already searchable as events. Provenance is unchanged: a memory made from the batch cites
every event of it (the loop keeps the batch's own event ids).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Sequence

from storage.records import Event

#: Windows whose lines are remembered, and lines per window (the oldest go first).
MAX_WINDOWS = 64
MAX_LINES = 4000


def _window(event: Event) -> tuple[str, str] | None:
    """What makes two screen reads "the same window"; None for events that never coalesce."""
    if event.source != "screen":
        return None
    return (event.app, event.window_title)


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def _key(line: str) -> str:
    return " ".join(line.lower().split())


def coalesce(events: Sequence[Event]) -> list[Event]:
    """Each run of consecutive screen reads of one window as one read: the union of their
    lines in the order first seen, dated at the first read and seen again at the others."""
    out: list[Event] = []
    run: list[Event] = []

    def flush() -> None:
        if len(run) == 1:
            out.append(run[0])
        elif run:
            out.append(_merged(run))
        run.clear()

    for event in events:
        if run and (_window(event) is None or _window(event) != _window(run[0])):
            flush()
        if _window(event) is None:
            out.append(event)
        else:
            run.append(event)
    flush()
    return out


def _merged(run: Sequence[Event]) -> Event:
    seen: set[str] = set()
    lines: list[str] = []
    for event in run:
        for line in _lines(event.text):
            if _key(line) not in seen:
                seen.add(_key(line))
                lines.append(line)
    first = run[0]
    if not lines:
        return first
    later = tuple(t for e in run for t in (e.occurred_at, *e.seen_at) if t != first.occurred_at)
    return first.model_copy(
        update={"text": "\n".join(lines), "seen_at": tuple(sorted(set(first.seen_at + later)))}
    )


class KnownText:
    """The lines of each window the agents have been shown (in memory: after a restart a
    window's page is read once more, which costs a call, not a wrong memory)."""

    def __init__(self) -> None:
        self._windows: OrderedDict[tuple[str, str], OrderedDict[str, None]] = OrderedDict()

    def fresh(self, events: Iterable[Event]) -> list[Event]:
        """`events` with lines already shown from their window left out; a read left with
        nothing is dropped. Events of other sources pass as they are."""
        out = []
        for event in events:
            window = _window(event)
            known = self._windows.get(window) if window is not None else None
            if known is None:
                out.append(event)
                continue
            new = [line for line in _lines(event.text) if _key(line) not in known]
            if new:
                out.append(event.model_copy(update={"text": "\n".join(new)}))
        return out

    def remember(self, events: Iterable[Event]) -> None:
        for event in events:
            window = _window(event)
            if window is None:
                continue
            known = self._windows.setdefault(window, OrderedDict())
            self._windows.move_to_end(window)
            for line in _lines(event.text):
                known[_key(line)] = None
                known.move_to_end(_key(line))
            while len(known) > MAX_LINES:
                known.popitem(last=False)
        while len(self._windows) > MAX_WINDOWS:
            self._windows.popitem(last=False)
