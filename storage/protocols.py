"""The two engine ports of storage. Each has one real adapter and one fake, both passing the
same contract tests (tests/storage/test_contracts.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

Vector = list[float]


@runtime_checkable
class Embedder(Protocol):
    """Turns a batch of texts into unit-length vectors of a fixed dimension."""

    @property
    def dimension(self) -> int: ...

    @property
    def name(self) -> str:
        """Identifies the model, so an index built with another model is noticed."""
        ...

    def embed(self, texts: Sequence[str]) -> list[Vector]: ...


@runtime_checkable
class VectorIndex(Protocol):
    """Vectors by id in named collections (one per memory type). Holds no text: SQLite does."""

    def upsert(self, collection: str, ids: Sequence[str], vectors: Sequence[Vector]) -> None: ...

    def query(self, collection: str, vector: Vector, k: int) -> list[tuple[str, float]]:
        """The k nearest ids with their cosine distance, nearest first."""
        ...

    def delete(self, collection: str, ids: Sequence[str]) -> None: ...

    def ids(self, collection: str) -> set[str]:
        """Every id in the collection; used to reconcile with SQLite after a crash."""
        ...

    def close(self) -> None:
        """Release files and connections; the index is unusable afterwards."""
        ...


@runtime_checkable
class QueryEmbedder(Embedder, Protocol):
    """An asymmetric embedder: queries get their own prompt (EmbeddingGemma's "task: search
    result | query: "), while `embed` is for the documents that are stored."""

    def embed_queries(self, texts: Sequence[str]) -> list[Vector]: ...


def embed_one(embedder: Embedder, text: str) -> Vector:
    return embedder.embed([text])[0]


def embed_query(embedder: Embedder, text: str) -> Vector:
    """The vector to search with: the query prompt where the embedder has one. (Not
    `isinstance(embedder, QueryEmbedder)`: on Python 3.11 that evaluates every property of the
    protocol, `dimension` included, on each search.)"""
    queries = getattr(embedder, "embed_queries", None)
    return queries([text])[0] if callable(queries) else embedder.embed([text])[0]
