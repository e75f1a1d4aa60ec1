"""Chat through the real stack: SQLite + Chroma on disk + all-MiniLM-L6-v2 retrieval, and the
embedded SmolLM2 through llama.cpp, loaded lazily on the first question. Structure only: a
135M-parameter model's wording (and whether it cites) is not something to assert."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.llm_config import LLMSettings
from app.services import Services
from app.settings import Settings
from storage.protocols import Embedder
from storage.records import SemanticMemory
from storage.store import MemoryStore
from storage.vector_chroma import ChromaVectorIndex
from ui.app import EngramApp
from ui.chat import memory_url


@pytest.mark.real
def test_chat_streams_a_real_answer_from_real_memories(
    qtbot, engram_home: Path, real_embedder: Embedder
):
    def real_model(settings: Settings):
        from agents.llm.llamacpp import LlamaCppModel

        return LlamaCppModel(n_ctx=settings.llm.n_ctx, threads=2)

    settings = Settings(
        llm=LLMSettings(n_ctx=2048, answer_tokens=40, chat_context_tokens=200),
        first_run_done=True,  # consent given: no first-run page over the chat
    )
    services = Services(
        settings,
        store_opener=lambda _s: MemoryStore.open(
            engram_home, real_embedder, ChromaVectorIndex.persistent
        ),
        model_factory=real_model,
    )
    app = EngramApp(services, autostart_capture=False, load_model=False)
    qtbot.addWidget(app.window)
    with qtbot.waitSignal(app.controller.store_ready, timeout=60_000):
        app.start()
    try:
        cat = services.add(
            SemanticMemory(name="Miso", summary="The user's cat is called Miso, a grey tabby")
        ).record
        chat = app.window.chat
        chat.input.setText("What is my cat called?")
        chat.send()
        assert services.model_state != "ready"  # loaded on first need, off the GUI thread
        qtbot.waitUntil(lambda: chat.task is None, timeout=120_000)

        turn = chat.turns[-1]
        assert turn.state == "done", turn.error
        assert turn.result is not None and turn.tokens >= 1 and turn.answer
        assert cat.id in [item.record.id for item in turn.result.context.items]
        html = chat.transcript.toHtml()
        for citation in turn.citations:
            assert memory_url(citation.memory_id) in html
        assert services.model_state == "ready"
    finally:
        app.quit()
