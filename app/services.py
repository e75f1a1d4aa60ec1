"""What the desktop app asks of Engram, in one Qt-free place: blocking calls, safe from any thread.

The UI runs every one of these on its task manager's worker threads, never on the GUI thread.
The parts come from the `Runtime` (store, model, agents, capture: each built on first need,
once), so the window can appear before the store or the model is ready. This facade adds what
only the app needs: the conversation so far, capture snapshots and the settings file. Keeping it
here rather than in ui/ keeps it strictly typed, testable without a display, and in the layer
that may know agents.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from agents.chat import ChatAgent, ChatReply, ChatResult, Citation
from agents.llm.port import ChatModel, Message, ModelInfo
from agents.loop import BatchReport
from agents.worker import Listener
from app import autostart
from app.chat_session import ChatSession
from app.runtime import CaptureFactory, ModelFactory, ModelState, Runtime, StoreOpener
from app.settings import Settings, SettingsError, save_settings
from capture.service import CaptureService, CaptureStatus
from storage.capture_log import CaptureGap
from storage.conversations import ChatTurn, Conversation
from storage.history import Change
from storage.records import EpisodicMemory, Event, MemoryType, Record
from storage.store import Hit, MemoryStore
from storage.suggestions import Suggestion

#: Human names of the settings a person edits, for validation messages.
FIELD_LABELS = {
    "data_dir": "Data folder",
    "chroma_url": "Chroma server URL",
    "embedding_model_path": "Embedding model folder",
    "embedder": "Embedding model",
    "llm.model": "Model",
    "llm.model_path": "Model file",
    "llm.openai_base_url": "OpenAI-compatible endpoint",
    "llm.openai_model": "Endpoint model name",
    "llm.n_gpu_layers": "GPU layers",
    "llm.n_ctx": "Context size",
    "llm.threads": "CPU threads",
    "llm.agent_model": "Memory agents' model",
    "llm.agent_threads": "Memory agents' CPU threads",
    "llm.unload_after_min": "Unload models after idle minutes",
    "llm.prompt_cache_mb": "Prompt cache (MB)",
    "capture.interval_s": "Capture interval",
    "capture.monitors": "Monitors",
    "capture.excluded_title_patterns": "Excluded window titles",
    "capture.excluded_apps": "Excluded applications",
}


def settings_with(base: Settings, changes: dict[str, Any]) -> Settings:
    """`base` with `changes` applied (nested dicts for `llm` and `capture`), validated.

    Raises SettingsError whose message names each bad field the way the settings dialog does."""
    data = base.model_dump()
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    folder = data.get("data_dir")
    if folder not in (None, ""):
        folder = Path(folder).expanduser()
        if not folder.is_absolute():
            raise SettingsError(f"Data folder: {folder} must be an absolute path")
        if folder.exists() and not folder.is_dir():
            raise SettingsError(f"Data folder: {folder} is a file, not a folder")
        data["data_dir"] = folder
    else:
        data["data_dir"] = None
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"])
            label = FIELD_LABELS.get(where, where or "Settings")
            lines.append(f"{label}: {err['msg'].removeprefix('Value error, ')}")
        raise SettingsError("\n".join(lines)) from None


def restart_needed(old: Settings, new: Settings) -> list[str]:
    """What of a settings change only takes effect after Engram restarts."""
    out = []
    if old.resolved_data_dir() != new.resolved_data_dir() or old.chroma_url != new.chroma_url:
        out.append("the data folder and Chroma server")
    if old.embedding_model_path != new.embedding_model_path or old.embedder != new.embedder:
        out.append("the embedding model")
    if old.llm != new.llm:
        out.append("the chat model")
    if old.keep_events_days != new.keep_events_days:
        out.append("how long captured events are kept")
    return out


@dataclass(frozen=True)
class Provenance:
    """Why Engram knows a memory: the source events found, those retention removed (the
    source expired; the memory stays), and ids that name no event (a chat turn or an imported
    conversation's id). An event's provenance is itself."""

    events: tuple[Event, ...]
    external: tuple[str, ...]
    expired: tuple[str, ...] = ()


@dataclass(frozen=True)
class Saved:
    """A memory the user saved (or, for a delete, the one removed), and what to tell them when
    it is stored but the vector index has not caught up (`warning`, else None)."""

    record: Record
    warning: str | None = None


@dataclass(frozen=True)
class DayTimeline:
    day: date
    memories: tuple[EpisodicMemory, ...]
    events: tuple[Event, ...]
    gaps: tuple[CaptureGap, ...]


@dataclass(frozen=True)
class CaptureSnapshot:
    """Capture status plus what the status alone does not say (paused while stopped)."""

    status: CaptureStatus
    paused: bool
    exclusions: tuple[tuple[str, ...], tuple[str, ...]]


class Services:
    def __init__(
        self,
        settings: Settings,
        *,
        store_opener: StoreOpener | None = None,
        model_factory: ModelFactory | None = None,
        capture_factory: CaptureFactory | None = None,
        save: Callable[[Settings], Path] = save_settings,
        serve: bool = False,
    ) -> None:
        # `serve` (the desktop app): the CLI and `engram mcp` run their commands here while
        # the app holds the store, and an `engram mcp` that held it first is asked to let go.
        self.runtime = Runtime(
            settings,
            store_opener=store_opener,
            model_factory=model_factory,
            capture_factory=capture_factory,
            serve=serve,
            claim=serve,
        )
        self._save = save
        self.chat = ChatSession(self.store, self.chat_agent)

    @property
    def settings(self) -> Settings:
        return self.runtime.settings

    @settings.setter
    def settings(self, new: Settings) -> None:
        self.runtime.settings = new

    # ----- the store and the model, opened on first need -------------------------------------

    def store(self) -> MemoryStore:
        return self.runtime.store()

    @property
    def store_is_open(self) -> bool:
        return self.runtime.store_is_open

    def model(self) -> ChatModel:
        """The chat model, loaded by the first caller (seconds); later callers wait for it."""
        return self.runtime.model()

    @property
    def model_state(self) -> ModelState:
        return self.runtime.model_state

    @property
    def model_error(self) -> str | None:
        return self.runtime.model_error

    @property
    def model_info(self) -> ModelInfo | None:
        return self.runtime.model_info

    # ----- chat ------------------------------------------------------------------------------

    def chat_agent(self) -> ChatAgent:
        return self.runtime.chat_agent()

    def history(self) -> tuple[Message, ...]:
        return self.chat.history()

    def new_conversation(self) -> None:
        self.chat.new()

    def conversations(self) -> list[Conversation]:
        return self.chat.conversations()

    def open_conversation(
        self, conversation_id: str
    ) -> list[tuple[ChatTurn, tuple[Citation, ...]]]:
        return self.chat.open(conversation_id)

    def delete_conversation(self, conversation_id: str) -> int:
        return self.chat.delete(conversation_id)

    def ask(
        self,
        question: str,
        on_token: Callable[[str], None],
        on_reply: Callable[[ChatReply], None] | None = None,
    ) -> ChatResult:
        """Answer `question` in the current conversation, calling `on_token` with each chunk.
        `on_reply` receives the reply first, so the caller can hook its `cancel()` to a button."""
        result = self.chat.ask(question, on_token, on_reply)
        self.runtime.wake_worker()  # the turn is an event for the memory agents
        return result

    # ----- the memory agents -----------------------------------------------------------------

    def start_memory_worker(self, on_batch: Listener | None = None) -> None:
        """Start draining the event queue through the agents (loads the model if needed), and
        warm the chat prompt's prefix in the background, now and after a batch that changed
        core memory (which is part of that prefix), so an answer does not wait for it."""

        def heard(report: BatchReport | None, error: BaseException | None) -> None:
            if report is not None and any(kind == "core" for _, kind, _ in report.writes):
                self._warm_chat()
            if on_batch is not None:
                on_batch(report, error)

        self.runtime.start_worker(heard)
        self._warm_chat()

    def _warm_chat(self) -> None:
        warm = threading.Thread(target=self.runtime.warm_chat, name="engram-warm-chat", daemon=True)
        warm.start()

    def backlog(self) -> dict[str, int]:
        return self.store().events.counts()

    # ----- memories --------------------------------------------------------------------------

    def search(
        self,
        query: str,
        types: Iterable[MemoryType] | None = None,
        k: int | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        events: bool | None = None,
    ) -> Sequence[Hit]:
        """Memories and, unless `events` is False (or types are named), raw events."""
        return self.store().search(
            query, types, k or self.settings.search_k, since, until, events=events
        )

    def browse(
        self,
        memory_type: MemoryType,
        since: datetime | None = None,
        limit: int = 500,
    ) -> list[Record]:
        return self.store().browse(memory_type, limit=limit, since=since)

    def get(self, memory_id: str) -> Record:
        return self.store().get(memory_id)

    def add(self, record: Record) -> Saved:
        return self._saved(self.store().add(record))

    def replace(self, record: Record) -> Saved:
        return self._saved(self.store().replace(record))

    def delete(self, memory_id: str) -> Saved:
        return self._saved(self.store().delete(memory_id))

    def suggestions(self, memory_id: str | None = None) -> list[Suggestion]:
        """Pending changes the agents suggest to memories the user wrote."""
        return self.store().suggestions.pending(memory_id)

    def accept(self, suggestion_id: str) -> Saved:
        return self._saved(self.store().accept(suggestion_id))

    def dismiss(self, suggestion_id: str) -> Suggestion:
        return self.store().dismiss(suggestion_id)

    def _saved(self, record: Record) -> Saved:
        return Saved(record, self.store().index_warning([record]))

    def undo(self, seq: int | None = None) -> Change:
        return self.store().undo(seq)

    def last_undoable(self) -> Change | None:
        """What "Undo last change" would revert now."""
        return self.store().last_undoable()

    def history_of(self, memory_id: str) -> list[Change]:
        return self.store().history(memory_id)

    def provenance(self, record: Record | Event) -> Provenance:
        ids = list(record.provenance)
        events = self.store().events.get_many(ids)
        expired = self.store().events.expired(ids)
        known = {e.id for e in events} | set(expired)
        return Provenance(tuple(events), tuple(i for i in ids if i not in known), tuple(expired))

    def retention_preview(self, keep_days: int | None = None) -> int:
        """How many raw events retention would remove now, keeping `keep_days` days (default:
        the setting's): shown before it runs."""
        days = self.settings.keep_events_days if keep_days is None else keep_days
        return self.store().expire_events(days, dry_run=True)

    def timeline(self, day: date, tz: tzinfo) -> DayTimeline:
        """Episodic memories, capture events and capture gaps of one local day."""
        since = datetime.combine(day, time.min, tzinfo=tz)
        until = since + timedelta(days=1)
        store = self.store()
        memories = [
            r
            for r in store.browse(
                MemoryType.EPISODIC, limit=1000, since=since, until=until, newest_first=False
            )
            if isinstance(r, EpisodicMemory)
        ]
        events = store.events.between(since, until, limit=2000)
        gaps = self.runtime.capture_log().gaps(since=since, until=until, limit=1000)
        return DayTimeline(day, tuple(memories), tuple(events), tuple(gaps))

    def reindex(self, progress: Callable[[int, int], None] | None = None) -> int:
        return self.store().reindex(progress)

    def import_folder(self, folder: Path) -> dict[str, int]:
        from storage.exchange import import_store

        return import_store(self.store(), folder)

    def export_folder(
        self, folder: Path, progress: Callable[[int, int], None] | None = None
    ) -> dict[str, int]:
        from storage.exchange import export_store

        return export_store(self.store(), folder, progress=progress)

    # ----- capture ---------------------------------------------------------------------------

    def capture(self) -> CaptureService:
        return self.runtime.capture()

    def start_capture(self) -> CaptureSnapshot:
        """Start capture because the user asked: that is their yes, kept for the next launch."""
        self.capture().start()
        if not self.settings.capture_consent:
            self.save_settings(self.settings.model_copy(update={"capture_consent": True}))
        return self.capture_snapshot()

    @property
    def capture_allowed(self) -> bool:
        """Whether the app may start capture by itself: the user said yes once."""
        return self.settings.capture_consent

    def finish_first_run(self, capture: bool, start_at_login: bool) -> Settings:
        """The first-run page's answer, saved (the page is not shown again)."""
        new = self.settings.model_copy(
            update={
                "first_run_done": True,
                "capture_consent": capture,
                "start_at_login": start_at_login,
            }
        )
        self.save_settings(new)
        return new

    def stop_capture(self) -> CaptureSnapshot:
        self.capture().stop()
        return self.capture_snapshot()

    def pause_capture(self, minutes: float | None = None) -> CaptureSnapshot:
        self.capture().pause(minutes)
        return self.capture_snapshot()

    def resume_capture(self) -> CaptureSnapshot:
        self.capture().resume()
        return self.capture_snapshot()

    def capture_snapshot(self) -> CaptureSnapshot:
        service = self.capture()
        rules = service.exclusions
        return CaptureSnapshot(
            service.status(),
            service.pipeline.pause.is_paused(),
            (rules.apps, rules.title_patterns),
        )

    def set_exclusions(self, apps: Sequence[str], patterns: Sequence[str]) -> Settings:
        """Validate, apply to running capture, and save to the settings file."""
        apps = [a.strip() for a in apps if a.strip()]
        patterns = [p.strip() for p in patterns if p.strip()]
        new = settings_with(
            self.settings,
            {"capture": {"excluded_apps": apps, "excluded_title_patterns": patterns}},
        )
        self.capture().set_exclusions(apps, patterns)
        self._save(new)
        self.settings = new
        return new

    # ----- settings --------------------------------------------------------------------------

    def save_settings(self, new: Settings) -> list[str]:
        """Save `new`; returns what needs a restart. Capture exclusions apply at once."""
        pending = restart_needed(self.settings, new)
        self._save(new)
        old, self.settings = self.settings, new
        if old.start_at_login != new.start_at_login:
            autostart.apply(new.start_at_login)
        capture = self.runtime.capture() if self.runtime.capture_is_open else None
        if capture is not None and old.capture != new.capture:
            capture.set_exclusions(new.capture.excluded_apps, new.capture.excluded_title_patterns)
            if (old.capture.interval_s, old.capture.monitors) != (
                new.capture.interval_s,
                new.capture.monitors,
            ):
                pending.append("the capture interval and monitors")
        return pending

    # ----- closing ---------------------------------------------------------------------------

    def close(self) -> None:
        """Stop the worker and capture, release the model and the store (in that order)."""
        self.runtime.close()
