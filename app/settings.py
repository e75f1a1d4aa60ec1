"""The one settings model, versioned, validated and saved as JSON in the config folder."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from app import paths
from app.llm_config import (
    DEFAULT_AGENT_MODEL,
    DEFAULT_CHAT_MODEL,
    SAME_AS_CHAT,
    LLMSettings,
    http_url,
)
from capture.config import CaptureSettings
from storage.errors import EngramError

SETTINGS_VERSION = 2


class SettingsError(EngramError):
    """A settings file or value that cannot be used."""


class McpSettings(BaseModel):
    """What other assistants may do over MCP (`engram mcp`): reading is on, writing is off
    until the user turns it on (then add/update/delete are listed, each undoable)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    writes_enabled: bool = False
    #: Tool calls one MCP client may make per minute; more are answered with an error.
    calls_per_minute: int = Field(default=120, ge=1, le=100_000)
    #: Results of one call at most (a host asking for more gets this many).
    max_results: int = Field(default=25, ge=1, le=200)
    #: Characters of text per result at most (the rest is cut, with an ellipsis).
    max_text_chars: int = Field(default=2000, ge=100, le=50_000)


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    version: int = SETTINGS_VERSION
    #: Overrides the platform data folder (ENGRAM_HOME still wins).
    data_dir: Path | None = None
    #: A sentence-transformers model folder; None means the built-in embedder below.
    embedding_model_path: Path | None = None
    #: The built-in embedder: "minilm" (all-MiniLM-L6-v2, Apache-2.0; fast, the default) or
    #: "gemma" (EmbeddingGemma-300M under the Gemma Terms of Use,
    #: https://ai.google.dev/gemma/terms: +2 LoCoMo frac@10 on conversations 0-1 and +1 on a
    #: sample of 5-9, but about 210 ms of one core per search and 0.8 s per memory indexed;
    #: set-up fetches it only when ENGRAM_EMBEDDERS=gemma). Without its files MiniLM is used.
    #: Switching re-embeds every memory once.
    embedder: Literal["minilm", "gemma"] = "minilm"
    #: http://host:port of a `chroma run` server; None keeps vectors in the data folder.
    chroma_url: str | None = None
    search_k: int = Field(default=10, ge=1, le=200)
    #: Days raw events (screen reads, chat turns, imports) are kept; 0 keeps them forever.
    #: Memories made from them stay when they go.
    keep_events_days: int = Field(default=90, ge=0)
    #: The chat model and the memory agents.
    llm: LLMSettings = Field(default_factory=LLMSettings)
    #: Screen capture: interval, monitors, exclusions, forced re-read, backlog bounds.
    capture: CaptureSettings = Field(default_factory=CaptureSettings)
    #: The user said yes to screen capture once (on the first-run page, or by starting it):
    #: the app never starts capture by itself before.
    capture_consent: bool = False
    #: The first-run page (what is captured, where data lives) was answered; it shows once.
    first_run_done: bool = False
    #: Start Engram in the tray at login: an XDG autostart entry (app/autostart.py).
    start_at_login: bool = False
    #: The MCP server for other assistants: writes off by default, bounds, rate limit.
    mcp: McpSettings = Field(default_factory=McpSettings)

    @field_validator("chroma_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return http_url(value, "chroma_url")

    @field_validator("embedding_model_path")
    @classmethod
    def _model_dir(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_dir():
            raise ValueError(f"embedding model folder {value} does not exist")
        return value

    def resolved_data_dir(self) -> Path:
        return paths.resolved_data_dir(self.data_dir)


def settings_path() -> Path:
    return paths.settings_file()


def _migrate(raw: dict[str, Any]) -> dict[str, Any]:
    version = int(raw.get("version", 1))
    if version > SETTINGS_VERSION:
        raise SettingsError(
            f"{settings_path()} was written by a newer Engram (version {version}); "
            "it was left untouched"
        )
    if version < 2:
        # Version 1 started capture on every launch, so an existing user keeps it running
        # (no silent change); the first-run page still shows once, with capture switched on.
        raw.setdefault("capture_consent", True)
        # Version 1 saved SmolLM2 as the model because it was the only built-in one: such a
        # file moves to the measured default pairing (the tiny model is one choice away).
        # One who picked a GGUF file or a server keeps it for the agents too.
        llm = raw.setdefault("llm", {})
        if isinstance(llm, dict) and llm.get("model", "smollm2") == "smollm2":
            llm["model"] = DEFAULT_CHAT_MODEL
        if isinstance(llm, dict) and "agent_model" not in llm:
            own = llm.get("model_path") or llm.get("openai_base_url")
            llm["agent_model"] = SAME_AS_CHAT if own else DEFAULT_AGENT_MODEL
    raw["version"] = SETTINGS_VERSION
    return raw


def load_settings() -> Settings:
    path = settings_path()
    if not path.exists():
        # No file: a new user, or one of version 1 who never saved settings (its app started
        # capture on every launch): screen events in the data folder tell them apart.
        return Settings(capture_consent=_captured_before(paths.data_dir()))
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(raw, dict):
            raise ValueError("expected a JSON object")
        return Settings.model_validate(_migrate(raw))
    except (ValueError, UnicodeDecodeError, ValidationError) as exc:
        raise SettingsError(f"{path} cannot be used: {exc}") from exc


def _captured_before(data_dir: Path) -> bool:
    """Whether the database in `data_dir` holds screen events (read-only, never created)."""
    db = data_dir / "engram.sqlite3"
    if not db.exists():
        return False
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            row = conn.execute("SELECT 1 FROM events WHERE source = 'screen' LIMIT 1").fetchone()
        finally:
            conn.close()
    except sqlite3.Error:
        return False
    return row is not None


def save_settings(settings: Settings) -> Path:
    path = settings_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(settings.model_dump_json(indent=2, exclude_none=True), encoding="utf-8")
    os.replace(tmp, path)
    return path
