"""What the status bar and the activity panel say, Qt-free: problems that explain themselves,
the one agent backlog count, the model's friendly name, and the activity figures.

A problem is keyed by the condition it is about (the task that failed, "Memory agents"), so the
same failure met again is the same problem, shown once, and it is cleared when that condition
ends (the task succeeds next time, the agents finish a batch). Each problem carries a short line
for the status bar, what happened, and what to do about it.
"""

from __future__ import annotations

import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, time, timedelta, tzinfo
from pathlib import Path

from agents.llm.port import ModelError, ModelInfo, ModelTimeout
from agents.loop import BatchFailed, BatchReport
from agents.operations import Rejection
from app.llm_config import LLMSettings
from app.model_files import CATALOGUE
from app.settings import SettingsError
from capture.ports import CaptureError
from storage.errors import (
    InvalidText,
    ModelUnavailable,
    NotFound,
    StoreCorrupt,
    StoreLocked,
    VaultKeyMissing,
)
from storage.exchange import ImportFailed
from storage.store import MemoryStore

#: Status-bar lines are cut here, at a word, never mid-word.
SHORT_LINE = 60

GENERIC_ADVICE = (
    "Try again. If it keeps happening, use “Copy details” and include the text in a bug report."
)

#: What to do, by the kind of error (the first class in the exception's MRO that is listed).
ADVICE: tuple[tuple[type[BaseException], str], ...] = (
    (StoreLocked, "Close the other Engram (or the command that uses the same data folder), "
     "then restart Engram; or set ENGRAM_HOME to another folder."),
    (StoreCorrupt, "Move the database file aside and restart Engram to start afresh, or "
     "restore your memories from an export with “engram import”."),
    (VaultKeyMissing, "Restore the vault key file from your backup; without it the saved "
     "secrets cannot be read."),
    (ModelUnavailable, "Open File → Settings and choose another model, or run "
     "scripts/setup.sh to install the chosen one."),
    (ModelTimeout, "The model is slow on this machine: choose a smaller model in File → "
     "Settings, or raise the model call timeout."),
    (ModelError, "Check the model in File → Settings (for a model server: that it is "
     "running and reachable). The memory agents try again on their own."),
    (BatchFailed, "Nothing was lost: the events wait in the queue and the agents try again."),
    (SettingsError, "Correct the value shown and save again; nothing was changed."),
    (CaptureError, "Check that a screen is available (an X11 session) and that tesseract is "
     "installed; capture can be started again from the Capture tab."),
    (ImportFailed, "Choose a folder written by “Export memories…” or “engram export”."),
    (InvalidText, "Write some text and save again."),
    (NotFound, "It was removed meanwhile; the view refreshes on its own."),
    (PermissionError, "Check that Engram may read and write its data folder."),
    (OSError, "Check the disk has space and the folder exists, then try again."),
)  # fmt: skip


def advice_for(error: BaseException | None) -> str:
    if error is not None:
        for kind, advice in ADVICE:
            if isinstance(error, kind):
                return advice
    return GENERIC_ADVICE


def short_line(text: str, width: int = SHORT_LINE) -> str:
    """The first line of `text`, cut at a word (never mid-word) with an ellipsis if too long."""
    line = " ".join(text.strip().splitlines()[0].split()) if text.strip() else ""
    if len(line) <= width:
        return line
    head = line[: width - 1]
    cut = head.rsplit(" ", 1)[0] if " " in head else head
    return cut.rstrip(" ,;:") + "…"


@dataclass(frozen=True)
class Problem:
    """One condition that went wrong, in words for a person."""

    key: str
    #: "Saving exclusions failed": the status bar's one line.
    title: str
    #: What happened, in full.
    message: str
    #: What to do about it.
    advice: str
    #: Type and traceback for a bug report (behind "Copy details").
    technical: str = ""
    first_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    last_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    times: int = 1

    def line(self) -> str:
        return short_line(self.title)

    def details(self) -> str:
        """Everything, as "Copy details" puts it on the clipboard."""
        when = self.first_at.astimezone().strftime("%Y-%m-%d %H:%M:%S")
        again = f" (happened {self.times} times, last at {self.last_at.astimezone():%H:%M:%S})"
        lines = [
            self.title,
            f"When: {when}" + (again if self.times > 1 else ""),
            f"What happened: {self.message}",
            f"What to do: {self.advice}",
        ]
        return "\n".join(lines + ([self.technical] if self.technical else []))


def problem_from(key: str, error: BaseException | str, *, title: str | None = None) -> Problem:
    """A problem for `key` ("Saving exclusions") from the exception (or message) it met."""
    exc = error if isinstance(error, BaseException) else None
    message = str(error) or (type(error).__name__ if exc is not None else "")
    technical = ""
    if exc is not None:
        technical = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return Problem(
        key=key,
        title=title or f"{key} failed",
        message=message,
        advice=advice_for(exc),
        technical=technical.strip(),
    )


class Problems:
    """The problems in force, newest last: raising one again updates it (never a second row);
    clearing its key ends it. Not thread-safe: the UI keeps it on the GUI thread."""

    def __init__(self) -> None:
        self._by_key: dict[str, Problem] = {}

    def raise_(self, problem: Problem) -> bool:
        """Record `problem`; True when it is new (not the same condition met again)."""
        old = self._by_key.pop(problem.key, None)
        if old is not None:
            problem = replace(
                problem, first_at=old.first_at, times=old.times + 1, last_at=problem.last_at
            )
        self._by_key[problem.key] = problem
        return old is None

    def clear(self, key: str) -> bool:
        """End the problem `key`; True when there was one."""
        return self._by_key.pop(key, None) is not None

    def active(self) -> list[Problem]:
        return list(self._by_key.values())

    def __len__(self) -> int:
        return len(self._by_key)


# ----- the agent backlog, one count for every view ---------------------------------------------


def waiting(counts: Mapping[str, int]) -> int:
    """Events the memory agents have still to turn into memories: queued and in progress.
    The status bar and the Capture tab both show this one number."""
    return int(counts.get("pending", 0)) + int(counts.get("claimed", 0))


def backlog_text(counts: Mapping[str, int]) -> str:
    failed = int(counts.get("failed", 0))
    return f"{waiting(counts)} waiting" + (f", {failed} failed" if failed else "")


# ----- the model's name -----------------------------------------------------------------------


def model_name(llm: LLMSettings, info: ModelInfo | None = None) -> str:
    """The configured chat model as a person knows it: "SmolLM2 135M", "Qwen2.5-Coder 1.5B",
    a picked GGUF by its catalogue name or file name, a server's model with its host; never the
    GGUF's internal run name."""
    if llm.openai_base_url:
        host = llm.openai_base_url.split("://", 1)[-1].split("/", 1)[0]
        named = llm.openai_model and llm.openai_model != "default"  # "default": whatever it serves
        return f"{llm.openai_model} at {host}" if named else f"the model server at {host}"
    if llm.model_path is not None:
        return file_model_name(llm.model_path)
    entry = CATALOGUE.get(llm.model)
    if entry is not None:
        return entry.name
    return info.name if info is not None else llm.model


def file_model_name(path: Path) -> str:
    for entry in CATALOGUE.values():
        if path.name == entry.file_name:
            return entry.name
    return path.stem


def model_details(llm: LLMSettings, info: ModelInfo | None) -> str:
    """The tooltip: backend, file or server, context size."""
    parts = [model_name(llm, info)]
    if info is not None:
        parts.append(f"{info.backend}, context {info.n_ctx:,} tokens")
        if info.gpu_offload:
            parts.append("layers on the GPU")
    if llm.openai_base_url:
        parts.append(llm.openai_base_url)
    elif llm.model_path is not None:
        parts.append(str(llm.model_path))
    elif llm.model in CATALOGUE:
        parts.append(CATALOGUE[llm.model].file_name)
    return "\n".join(parts)


# ----- the activity panel ---------------------------------------------------------------------


@dataclass(frozen=True)
class BatchSummary:
    """The last batch the memory agents finished: how much it wrote and what it turned down."""

    at: datetime
    events: int
    writes: int
    rejected: tuple[Rejection, ...]
    seconds: float
    warnings: tuple[str, ...] = ()

    @classmethod
    def of(cls, report: BatchReport, at: datetime | None = None) -> BatchSummary:
        return cls(
            at or datetime.now(UTC),
            len(report.event_ids),
            len(report.writes),
            tuple(report.rejected),
            report.seconds,
            tuple(report.warnings),
        )

    def line(self) -> str:
        return (
            f"{self.at.astimezone():%H:%M:%S}: {self.events} event(s), {self.writes} "
            f"write(s), {len(self.rejected)} rejected, {self.seconds:.1f} s"
        )


def rejection_text(rejection: Rejection) -> str:
    return f"{rejection.agent}: {rejection.operation} — {rejection.reason}: {rejection.detail}"


@dataclass(frozen=True)
class Activity:
    """The activity panel's figures (the backlog counts come from the same poll as the
    status bar's, so the two agree)."""

    counts: Mapping[str, int]
    events_per_minute: float
    memories_today: int

    @property
    def waiting(self) -> int:
        return waiting(self.counts)


#: Events per minute are averaged over this window.
RATE_WINDOW = timedelta(minutes=10)


def measure(
    store: MemoryStore, tz: tzinfo, now: datetime | None = None, window: timedelta = RATE_WINDOW
) -> Activity:
    """Blocking (a worker thread): the activity figures now."""
    now = now or datetime.now(UTC)
    recent = store.events.between(now - window, now + timedelta(seconds=1), limit=100_000)
    midnight = datetime.combine(now.astimezone(tz).date(), time.min, tzinfo=tz)
    return Activity(
        counts=store.events.counts(),
        events_per_minute=len(recent) / (window.total_seconds() / 60),
        memories_today=store.count_created(midnight),
    )


def rejected_lines(summary: BatchSummary | None, limit: int = 20) -> Sequence[str]:
    if summary is None:
        return []
    return [rejection_text(r) for r in summary.rejected[:limit]]
