"""The composition root: picks the concrete adapters for the settings and opens the store."""

from __future__ import annotations

from pathlib import Path

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
