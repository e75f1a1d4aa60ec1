"""The one way in for the user's past: items parsed from an export become events on the same
path as a screen read: redacted (capture/redact.py), put on the durable event queue (keyword-
searchable from the commit on, the memory agents make memories from them), marked as imported.

An import reads its file twice: first the whole file is parsed and checked, writing nothing,
so a truncated or malformed export fails with the file and line before anything is stored;
then it is parsed again and written in batches. Each item's event id is derived from the file's
own identity for it (a message id, a line's content), so importing the same file twice adds
nothing, and an import killed half-way is finished by running it again. Parsers stream: a huge
export is never held in memory whole.
"""

from __future__ import annotations

import functools
import hashlib
import json
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from capture.redact import Redactor
from storage.errors import EngramError
from storage.records import MAX_FIELD_CHARS, Event
from storage.store import MemoryStore

#: Events written per transaction.
BATCH = 500


class ImportCancelled(EngramError):
    """The user stopped an import; what was stored stays, and importing again finishes it."""


OnProgress = Callable[[int, int], None]


class ImportFailed(EngramError):
    """An export Engram cannot read; the message names the file (and line). Nothing of it
    was stored."""

    def __init__(self, path: Path, why: str, line: int | None = None) -> None:
        where = f"{path}, line {line}" if line else str(path)
        super().__init__(f"{where}: {why}; nothing was imported")


@dataclass(frozen=True)
class Item:
    """One message (or visit) as a parser found it. `key` identifies it within its file (a
    message id; else its time, speaker and text), so a second import finds it again."""

    key: str
    at: datetime
    text: str
    speaker: str = ""
    title: str = ""
    line: int = 0


@dataclass(frozen=True)
class Rejected:
    """Something in the file that is not a message to keep (a system line, an image)."""

    reason: str
    line: int = 0


Parsed = Item | Rejected
Parser = Callable[[], Iterable[Parsed]]


@dataclass
class Summary:
    """What an import did; printed as JSON at the end."""

    source: str
    file: str
    read: int = 0
    new: int = 0
    duplicates: int = 0
    redacted: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "file": self.file,
            "read": self.read,
            "new": self.new,
            "duplicates": self.duplicates,
            "redacted": self.redacted,
            "rejected": dict(self.rejected),
            "seconds": round(self.seconds, 2),
            **self.extra,
        }


class Progress:
    """A count and an ETA on standard error, at most a few times a second."""

    def __init__(self, what: str, total: int, stream: TextIO | None = None) -> None:
        self._what, self._total = what, total
        self._stream = stream
        self._started = time.monotonic()
        self._last = 0.0

    def __call__(self, done: int, final: bool = False) -> None:
        now = time.monotonic()
        if not final and now - self._last < 0.5:
            return
        self._last = now
        stream = self._stream or sys.stderr
        elapsed = max(now - self._started, 1e-6)
        rate = done / elapsed
        left = (self._total - done) / rate if rate > 0 else 0.0
        eta = time.strftime("%H:%M:%S", time.gmtime(left))
        end = "\n" if final else ""
        tty = stream.isatty()
        line = f"{self._what}: {done:,}/{self._total:,} ({rate:,.0f}/s, ETA {eta})"
        stream.write(("\r" + line + end) if tty else (line + "\n"))
        stream.flush()


def stop_if(cancel: threading.Event | None, summary: Summary) -> None:
    if cancel is not None and cancel.is_set():
        raise ImportCancelled(
            f"stopped after {summary.new:,} new of {summary.file}; import it again to finish"
        )


def event_id(source: str, file_key: str, item_key: str) -> str:
    digest = hashlib.sha1(f"{source}\x00{file_key}\x00{item_key}".encode()).hexdigest()
    return f"evt_imp_{digest[:24]}"


def _clip(text: str) -> str:
    return text if len(text) <= MAX_FIELD_CHARS else text[: MAX_FIELD_CHARS - 1] + "…"


def import_items(
    store: MemoryStore,
    source: str,
    path: Path,
    parse: Parser,
    *,
    file_key: str | None = None,
    redactor: Redactor | None = None,
    progress: bool = True,
    on_progress: OnProgress | None = None,
    cancel: threading.Event | None = None,
) -> Summary:
    """Check everything `parse` yields, then store its items as events (see the module).
    `progress` prints a count and an ETA on standard error; `on_progress(done, total)` hears
    each batch (the app's progress bar); `cancel` stops it between batches."""
    started = time.monotonic()
    total = sum(1 for p in parse() if isinstance(p, Item))  # a bad file raises here
    summary = Summary(source, str(path))
    redactor = redactor or Redactor()
    key = file_key or str(path.resolve())
    show = Progress(f"importing {path.name}", total) if progress else None
    batch: dict[str, Item] = {}
    make = functools.partial(_event, source=source, path=path, redactor=redactor, summary=summary)
    for parsed in parse():
        if isinstance(parsed, Rejected):
            summary.rejected[parsed.reason] += 1
            continue
        summary.read += 1
        ident = event_id(source, key, parsed.key)
        if ident in batch:
            summary.duplicates += 1  # the same message twice in the file
            continue
        batch[ident] = parsed
        if len(batch) >= BATCH:
            _flush(store, batch, make, summary)
            batch = {}
            if show:
                show(summary.read)
            if on_progress:
                on_progress(summary.read, total)
            stop_if(cancel, summary)
    _flush(store, batch, make, summary)
    if on_progress:
        on_progress(summary.read, total)
    if show:
        show(summary.read, final=True)
    summary.seconds = time.monotonic() - started
    return summary


def _event(
    ident: str, item: Item, *, source: str, path: Path, redactor: Redactor, summary: Summary
) -> Event:
    text = f"{item.speaker}: {item.text}" if item.speaker else item.text
    redaction = redactor.redact(_clip(text))
    summary.redacted += redaction.total
    metadata: dict[str, str | int | float | bool] = {
        "origin": f"import:{source}",
        "file": str(path),
    }
    if item.speaker:
        metadata["speaker"] = item.speaker
    if item.line:
        metadata["line"] = item.line
    return Event(
        id=ident,
        occurred_at=item.at,
        source="import",
        app=source,
        window_title=_clip(item.title or path.name),
        text=redaction.text,
        metadata=metadata,
    )


def _flush(
    store: MemoryStore,
    batch: dict[str, Item],
    make: Callable[[str, Item], Event],
    summary: Summary,
) -> None:
    """Store the items of `batch` not stored before (nor removed by retention), in one
    transaction; only those are redacted and built."""
    if not batch:
        return
    ids = list(batch)
    known = {e.id for e in store.events.get_many(ids)} | set(store.events.expired(ids))
    fresh = [make(i, item) for i, item in batch.items() if i not in known]
    summary.duplicates += len(batch) - len(fresh)
    store.events.put_many(fresh)
    summary.new += len(fresh)


def item_key(*parts: object) -> str:
    """A key for an item the file gives no id: its content (time, speaker, text)."""
    return hashlib.sha1("\x00".join(str(p) for p in parts).encode()).hexdigest()


# ----- streaming JSON ------------------------------------------------------------------------


def iter_json_array(path: Path, chunk: int = 1 << 16) -> Iterator[tuple[int, Any]]:
    """The elements of the JSON array in `path`, one at a time, each with the line it starts
    on, holding one element in memory (not the file). A file that is not an array, or breaks
    off, raises ImportFailed with the line."""
    decoder = json.JSONDecoder()
    with path.open(encoding="utf-8-sig") as handle:
        buffer, line, eof = "", 1, False

        def more() -> bool:
            nonlocal buffer, eof
            data = handle.read(max(chunk, len(buffer)))  # doubling: linear in a long element
            if not data:
                eof = True
                return False
            buffer += data
            return True

        def skip_space() -> None:
            nonlocal buffer, line
            while True:
                stripped = buffer.lstrip()
                line += buffer.count("\n", 0, len(buffer) - len(stripped))
                buffer = stripped
                if buffer or not more():
                    return

        try:
            skip_space()
            if not buffer.startswith("["):
                raise ImportFailed(path, "this is not a JSON list", line)
            buffer = buffer[1:]
            skip_space()
            if buffer.startswith("]"):
                return
            while True:
                skip_space()
                while True:
                    try:
                        value, end = decoder.raw_decode(buffer)
                        break
                    except json.JSONDecodeError as exc:
                        if eof or not more():
                            raise ImportFailed(
                                path, f"the JSON breaks off or is malformed ({exc.msg})",
                                line + buffer.count("\n", 0, exc.pos),
                            ) from None  # fmt: skip
                yield line, value
                line += buffer.count("\n", 0, end)
                buffer = buffer[end:]
                skip_space()
                if buffer.startswith(","):
                    buffer = buffer[1:]
                    continue
                if buffer.startswith("]"):
                    return
                raise ImportFailed(path, "the JSON list breaks off (no closing ])", line)
        except UnicodeDecodeError as exc:
            raise ImportFailed(path, f"this is not UTF-8 text ({exc.reason})") from None
