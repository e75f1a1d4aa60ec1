"""Shared fixtures: every test gets its own data/config folders; nothing touches the real home."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from storage.fakes import HashEmbedder, MemoryVectorIndex
from storage.protocols import Embedder
from storage.store import MemoryStore


@pytest.fixture(autouse=True)
def engram_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "engram-home"
    monkeypatch.setenv("ENGRAM_HOME", str(home))
    monkeypatch.setenv("ENGRAM_KEYRING", "0")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    monkeypatch.setenv("ANONYMIZED_TELEMETRY", "False")
    return home


@pytest.fixture(scope="session")
def real_embedder() -> Embedder:
    """The embedded all-MiniLM-L6-v2, loaded once per test run (it takes seconds)."""
    from storage.embedder_st import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder()


@pytest.fixture
def fake_store(engram_home: Path) -> Iterator[MemoryStore]:
    """A store on real SQLite with a deterministic embedder and an in-memory vector index."""
    store = MemoryStore.open(engram_home, HashEmbedder(), lambda _p: MemoryVectorIndex())
    yield store
    store.close()


@pytest.fixture
def real_store(engram_home: Path, real_embedder: Embedder) -> Iterator[MemoryStore]:
    """A store on real SQLite, a real Chroma folder and the real embedding model."""
    from storage.vector_chroma import ChromaVectorIndex

    store = MemoryStore.open(engram_home, real_embedder, ChromaVectorIndex.persistent)
    yield store
    store.close()
