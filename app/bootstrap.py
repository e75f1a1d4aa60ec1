"""The composition root: picks the concrete adapters for the settings (the runtime in
`app.runtime` builds the house from them)."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

from agents.llm.port import ChatModel
from agents.llm.scheduler import ScheduledChatModel
from app.embedder_files import ONNX_MINILM_NAME, onnx_model_path
from app.embedder_folders import GEMMA, folder_path
from app.model_files import model_path
from app.settings import Settings
from storage.embedder_onnx import OnnxEmbedder
from storage.embedder_st import SentenceTransformerEmbedder, default_model_path
from storage.protocols import Embedder, VectorIndex
from storage.store import MemoryStore

log = logging.getLogger(__name__)


def make_embedder(settings: Settings, models_folder: Path | None = None) -> Embedder:
    """A folder the user names; else EmbeddingGemma when chosen and set up; else the int8
    ONNX all-MiniLM-L6-v2 when set-up has put it in place (a third of the CPU per query and
    per insert), else the torch MiniLM."""
    if settings.embedding_model_path is not None:
        return SentenceTransformerEmbedder(settings.embedding_model_path)
    if settings.embedder == "gemma":
        folder = folder_path(GEMMA, models_folder)
        if folder is not None:
            return SentenceTransformerEmbedder(folder)
        log.warning(
            "%s is chosen but not set up (run scripts/setup.sh with ENGRAM_EMBEDDERS=gemma); "
            "searching with all-MiniLM-L6-v2",
            GEMMA.name,
        )
    path = onnx_model_path(models_folder)
    if path is not None:
        return OnnxEmbedder(path, default_model_path() / "tokenizer.json", ONNX_MINILM_NAME)
    return SentenceTransformerEmbedder()


def make_index_factory(settings: Settings) -> Callable[[Path], VectorIndex]:
    """Where the vectors live: a Chroma folder in the data folder, or the configured
    `chroma run` server (SQLite stays local either way)."""
    from storage.vector_chroma import ChromaVectorIndex

    url = settings.chroma_url
    if url:
        return lambda _path: ChromaVectorIndex.http(url)
    return ChromaVectorIndex.persistent


def open_store(
    settings: Settings,
    embedder: Embedder | None = None,
    *,
    data_dir: Path | None = None,
    index_factory: Callable[[Path], VectorIndex] | None = None,
) -> MemoryStore:
    """The store of `settings` (or in `data_dir`, a benchmark's fresh folder), with the
    configured embedder and vector index unless others are given."""
    return MemoryStore.open(
        data_dir or settings.resolved_data_dir(),
        embedder or make_embedder(settings),
        index_factory or make_index_factory(settings),
    )


def make_chat_model(settings: Settings) -> ScheduledChatModel:
    """The configured chat model: an OpenAI-compatible server when one is set, else llama.cpp
    in-process (the chosen built-in model, or the GGUF file picked). Loading takes seconds.
    Either way behind the scheduler, so chat goes before memory work."""
    llm = settings.llm
    backend: ChatModel
    if llm.openai_base_url:
        from agents.llm.openai_compat import OpenAICompatibleModel

        backend = OpenAICompatibleModel(
            llm.openai_base_url,
            model=llm.openai_model,
            api_key=os.environ.get("ENGRAM_OPENAI_API_KEY"),
            n_ctx=llm.n_ctx,
            timeout_s=llm.call_timeout_s,
        )
    else:
        from agents.llm.llamacpp import LlamaCppModel

        path = llm.model_path or model_path(llm.model)
        backend = LlamaCppModel(
            path,
            n_ctx=llm.n_ctx,
            n_gpu_layers=llm.n_gpu_layers,
            threads=llm.threads,
            idle_unload_s=llm.unload_after_min * 60 or None,
        )  # no RAM cache: chat's one prompt reuses its prefix in place, and saving the state
        # after each answer cost 0.6 s before the stream ended (measured on Qwen 0.5B)
    return ScheduledChatModel(backend)


def make_agent_model(settings: Settings, chat: ScheduledChatModel) -> ScheduledChatModel:
    """The memory agents' model. A server serves both through `chat`'s scheduler (chat
    preempts memory work there). In-process, the agents get a llama.cpp instance of their own
    (its own threads, its own prompt cache: the chat prompt's cached prefix survives memory
    work), whose background calls wait out chat at the next call boundary."""
    llm = settings.llm
    if llm.openai_base_url:
        return chat
    from agents.llm.llamacpp import LlamaCppModel, agent_threads

    key = llm.agents_builtin()
    path = model_path(key) if key else llm.model_path or model_path(llm.model)
    backend = LlamaCppModel(
        path,
        n_ctx=llm.n_ctx,
        n_gpu_layers=llm.n_gpu_layers,
        threads=llm.agent_threads or agent_threads(),
        idle_unload_s=llm.unload_after_min * 60 or None,
        lane="agents",
        prompt_cache_mb=llm.prompt_cache_mb,
    )
    return ScheduledChatModel(backend, yield_to=chat)
