"""The composition root: picks the concrete adapters for the settings and opens the store."""

from __future__ import annotations

import os
from pathlib import Path

from agents.model import ChatModel
from app.model_files import model_path
from app.settings import Settings
from storage.embedder_st import SentenceTransformerEmbedder
from storage.protocols import Embedder, VectorIndex
from storage.store import MemoryStore


def make_embedder(settings: Settings) -> Embedder:
    return SentenceTransformerEmbedder(settings.embedding_model_path)


def open_store(settings: Settings, embedder: Embedder | None = None) -> MemoryStore:
    data_dir = settings.resolved_data_dir()
    factory = None
    if settings.chroma_url:
        url = settings.chroma_url

        def factory(_path: Path) -> VectorIndex:
            from storage.vector_chroma import ChromaVectorIndex

            return ChromaVectorIndex.http(url)

    return MemoryStore.open(data_dir, embedder or make_embedder(settings), factory)


def make_chat_model(settings: Settings) -> ChatModel:
    """The configured chat model: an OpenAI-compatible server when one is set, else llama.cpp
    in-process (the chosen built-in model, or the GGUF file picked). Loading takes seconds."""
    llm = settings.llm
    if llm.openai_base_url:
        from agents.llm_openai import OpenAICompatibleModel

        return OpenAICompatibleModel(
            llm.openai_base_url,
            model=llm.openai_model,
            api_key=os.environ.get("ENGRAM_OPENAI_API_KEY"),
            n_ctx=llm.n_ctx,
            timeout_s=llm.call_timeout_s,
        )
    from agents.llm_llamacpp import LlamaCppModel

    path = llm.model_path or model_path(llm.model)
    return LlamaCppModel(path, n_ctx=llm.n_ctx, n_gpu_layers=llm.n_gpu_layers, threads=llm.threads)
