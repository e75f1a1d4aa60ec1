"""Shared fixtures: every test gets its own data/config folders; nothing touches the real home.
A real X screen with real Tk windows for the capture and app tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from storage.fakes import HashEmbedder, MemoryVectorIndex
from storage.protocols import Embedder
from storage.store import MemoryStore
from tests.helpers.xscreen import TkWindow, Xvfb


@pytest.fixture(autouse=True)
def engram_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "engram-home"
    monkeypatch.setenv("ENGRAM_HOME", str(home))
    monkeypatch.setenv("ENGRAM_KEYRING", "0")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))  # autostart entries
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    monkeypatch.setenv("ANONYMIZED_TELEMETRY", "False")
    return home


@pytest.fixture(scope="session")
def real_embedder() -> Embedder:
    """The embedded all-MiniLM-L6-v2, loaded once per test run (it takes seconds)."""
    from storage.embedder_st import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder()


@pytest.fixture(scope="session")
def onnx_embedder() -> Embedder:
    """The int8 ONNX all-MiniLM-L6-v2 as set-up assembles it (skipped where it has not)."""
    from app.embedder_files import ONNX_MINILM_NAME, onnx_model_path
    from storage.embedder_onnx import OnnxEmbedder
    from storage.embedder_st import default_model_path

    path = onnx_model_path()
    if path is None:
        pytest.skip("the ONNX embedding model is not assembled: run scripts/setup.sh")
    return OnnxEmbedder(path, default_model_path() / "tokenizer.json", ONNX_MINILM_NAME)


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


@pytest.fixture
def xvfb() -> Iterator[Xvfb]:
    """A fresh 800x600 X screen on a free display number, stopped after the test."""
    with Xvfb(800, 600) as screen:
        yield screen


@pytest.fixture
def show(xvfb: Xvfb) -> Iterator[Callable[..., TkWindow]]:
    """show(text, app=..., title=..., active=True, x=, y=, width=, height=) -> a real window."""
    windows: list[TkWindow] = []

    def _show(text: str, *, active: bool = True, **kwargs: Any) -> TkWindow:
        window = TkWindow(xvfb.display, text, **kwargs)
        windows.append(window)
        if active:
            xvfb.set_active(window.id)
        return window

    yield _show
    for window in windows:
        window.close()
