from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from app import bootstrap
from app.llm_config import LLMSettings
from app.settings import Settings, SettingsError, load_settings, save_settings, settings_path
from storage.fakes import HashEmbedder, MemoryVectorIndex
from storage.records import EpisodicMemory, MemoryType, SemanticMemory
from tests.storage.chroma_server import chroma_server


class CountingEmbedder(HashEmbedder):
    def __init__(self) -> None:
        super().__init__()
        self.texts = 0

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        self.texts += len(texts)
        return super().embed(texts)


def test_settings_round_trip_and_defaults(engram_home: Path) -> None:
    assert load_settings() == Settings()
    saved = Settings(chroma_url="http://127.0.0.1:8123", search_k=25)
    path = save_settings(saved)
    assert path == settings_path() and path.parent == engram_home / "config"
    assert load_settings() == saved


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "cannot be used"),
        ("[1, 2]", "expected a JSON object"),
        ('{"chroma_url": "ftp://x"}', "must start with http"),
        ('{"search_k": 0}', "greater than or equal to 1"),
        ('{"version": 99}', "newer Engram"),
        ('{"embedding_model_path": "/no/such/model"}', "does not exist"),
    ],
)
def test_bad_settings_get_clear_errors(content: str, message: str) -> None:
    settings_path().parent.mkdir(parents=True, exist_ok=True)
    settings_path().write_text(content)
    with pytest.raises(SettingsError, match=message):
        load_settings()
    assert settings_path().read_text() == content  # left untouched


def test_a_new_user_has_not_consented_to_capture() -> None:
    fresh = load_settings()
    assert not fresh.capture_consent and not fresh.first_run_done and not fresh.start_at_login


def test_a_version_1_user_keeps_capture_and_still_sees_the_first_run_page() -> None:
    """Version 1 started capture on every launch: the migration keeps it on (no silent
    change), and the first-run page still shows once, its capture box ticked."""
    settings_path().parent.mkdir(parents=True, exist_ok=True)
    settings_path().write_text('{"version": 1, "search_k": 12}')
    migrated = load_settings()
    assert migrated.version == 2 and migrated.search_k == 12
    assert migrated.capture_consent and not migrated.first_run_done
    settings_path().write_text('{"version": 2, "search_k": 12}')  # version 2 asks first
    assert not load_settings().capture_consent


def test_a_version_1_user_without_a_settings_file_is_known_by_their_screen_events(
    engram_home: Path,
) -> None:
    from storage.records import Event
    from storage.store import MemoryStore

    store = MemoryStore.open(engram_home, HashEmbedder(), lambda _p: MemoryVectorIndex())
    store.events.put(Event(source="chat", text="only a chat turn"))
    assert not load_settings().capture_consent  # a CLI or chat user never had capture on
    store.events.put(Event(source="screen", app="xterm", text="read from the screen"))
    store.close()
    assert load_settings().capture_consent and not load_settings().first_run_done
    assert not settings_path().exists()  # nothing written by loading


def test_engram_home_wins_over_a_configured_data_dir(engram_home: Path, tmp_path: Path) -> None:
    assert Settings(data_dir=tmp_path / "elsewhere").resolved_data_dir() == engram_home


@pytest.mark.real
def test_store_in_client_server_mode(tmp_path: Path, engram_home: Path) -> None:
    """chroma_url switches the vector index to a real `chroma run` server; SQLite stays local."""
    with chroma_server(tmp_path / "server-data") as url:
        settings = Settings(chroma_url=url)
        with bootstrap.open_store(settings, HashEmbedder()) as store:
            ep = store.add(EpisodicMemory(summary="renewed the passport at the town hall"))
            store.add(SemanticMemory(name="passport", summary="expires in 2036"))
            hits = store.search("passport renewal town hall", types=[MemoryType.EPISODIC])
            assert hits[0].record.id == ep.id and hits[0].ranks.get("vector") == 1
            store.delete(ep.id)
            assert ep.id not in {h.record.id for h in store.search("passport town hall")}
        assert not (engram_home / "chroma").exists()  # no local vectors in server mode
        counting = CountingEmbedder()
        with bootstrap.open_store(settings, counting) as store:  # reopen: still there
            assert counting.texts == 0  # nothing was re-embedded on open
            hit = store.search("passport expiry")[0]
            assert hit.record.kind is MemoryType.SEMANTIC and "vector" in hit.ranks


def test_only_a_model_known_to_loop_in_strings_gets_string_bounds() -> None:
    assert LLMSettings(model="smollm2", agent_model="chat").agents_bound_strings()
    assert LLMSettings(model="qwen-1.5b", agent_model="smollm2").agents_bound_strings()
    assert not LLMSettings(model="qwen-1.5b", agent_model="chat").agents_bound_strings()
    assert not LLMSettings(model="smollm2", agent_model="qwen-0.5b").agents_bound_strings()
    server = LLMSettings(model="qwen-0.5b", openai_base_url="http://localhost:8080")
    assert server.agents_bound_strings()  # a model not known: bounded, to be safe


@pytest.mark.parametrize(
    ("saved", "model", "agents"),
    [
        ({"model": "smollm2"}, "qwen-1.5b", "qwen-0.5b"),  # the old default: the new pairing
        ({}, "qwen-1.5b", "qwen-0.5b"),
        ({"model": "qwen-0.5b"}, "qwen-0.5b", "qwen-0.5b"),  # a choice stays
        ({"model": "smollm2", "model_path": "PICKED"}, "qwen-1.5b", "chat"),  # own file: agents too
    ],
)
def test_version_1_settings_move_to_the_measured_pairing(
    engram_home: Path, tmp_path: Path, saved: dict[str, str], model: str, agents: str
) -> None:
    import json

    picked = tmp_path / "own.gguf"
    picked.write_bytes(b"GGUF")
    llm = {k: str(picked) if v == "PICKED" else v for k, v in saved.items()}
    settings_path().parent.mkdir(parents=True, exist_ok=True)
    settings_path().write_text(json.dumps({"version": 1, "llm": llm}), encoding="utf-8")
    loaded = load_settings()
    assert loaded.version == 2
    assert (loaded.llm.model, loaded.llm.agent_model) == (model, agents)
    assert loaded.llm.model_path == (picked if "model_path" in saved else None)
