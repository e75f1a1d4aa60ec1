"""The Chroma adapter: the only module that imports chromadb.

We always pass our own vectors and never documents: Chroma's default embedding function would
download weights at run time, and text lives in SQLite, which is the source of truth (the vector
index can always be rebuilt from it). No `where` filters: they cost 50-130 ms at 100k vectors.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from storage.errors import StoreCorrupt
from storage.heap import wipe_freed_memory, writing
from storage.protocols import Vector

_COLLECTION_PREFIX = "engram_"


class ChromaVectorIndex:
    """Vectors in Chroma, on disk (`PersistentClient`) or on a server (`HttpClient`)."""

    def __init__(self, client: Any, namespace: str = "", *, fresh: bool = False) -> None:
        self._client = client
        self._namespace = namespace
        #: Made empty on opening: the folder held no Chroma database (never, or it was
        #: deleted), so the store re-embeds what it holds (storage/store.py `_open_index`).
        self.fresh = fresh
        self._collections: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._max_batch = int(getattr(client, "get_max_batch_size", lambda: 5000)())

    @classmethod
    def persistent(cls, path: Path) -> ChromaVectorIndex:
        import chromadb
        from chromadb.config import Settings

        path.mkdir(parents=True, exist_ok=True)
        wipe_freed_memory()
        fresh = not (path / "chroma.sqlite3").exists()
        try:
            with writing():
                client = chromadb.PersistentClient(
                    path=str(path),
                    settings=Settings(anonymized_telemetry=False, allow_reset=False),
                )
        except Exception as exc:  # chromadb raises assorted types for a damaged folder
            _forget_system(str(path))
            raise StoreCorrupt(f"the vector index at {path} cannot be opened: {exc}") from exc
        return cls(client, fresh=fresh)

    @classmethod
    def http(cls, url: str, namespace: str = "") -> ChromaVectorIndex:
        """Connect to `chroma run` at `url` (http://host:port). `namespace` keeps stores apart."""
        import chromadb
        from chromadb.config import Settings

        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"chroma_url must look like http://127.0.0.1:8000, not {url!r}")
        client = chromadb.HttpClient(
            host=parts.hostname,
            port=parts.port or (443 if parts.scheme == "https" else 8000),
            ssl=parts.scheme == "https",
            settings=Settings(anonymized_telemetry=False),
        )
        return cls(client, namespace=namespace)

    def _collection(self, name: str) -> Any:
        with self._lock:
            coll = self._collections.get(name)
            if coll is None:
                with writing():
                    coll = self._client.get_or_create_collection(
                        name=f"{_COLLECTION_PREFIX}{self._namespace}{name}",
                        embedding_function=None,
                        configuration={"hnsw": {"space": "cosine"}},
                    )
                self._collections[name] = coll
            return coll

    def upsert(self, collection: str, ids: Sequence[str], vectors: Sequence[Vector]) -> None:
        if len(ids) != len(vectors):
            raise ValueError("ids and vectors differ in length")
        coll = self._collection(collection)
        step = max(1, self._max_batch)
        for start in range(0, len(ids), step):
            with writing():
                coll.upsert(
                    ids=list(ids[start : start + step]),
                    embeddings=[list(v) for v in vectors[start : start + step]],
                )

    def query(self, collection: str, vector: Vector, k: int) -> list[tuple[str, float]]:
        if k <= 0:
            return []
        # No count() first: Chroma 1.x caps n_results itself, and a count costs a query's time.
        result = self._collection(collection).query(
            query_embeddings=[list(vector)], n_results=k, include=["distances"]
        )
        ids = result["ids"][0]
        distances = result["distances"][0] if result.get("distances") else [0.0] * len(ids)
        return [(i, float(d)) for i, d in zip(ids, distances, strict=True)]

    def delete(self, collection: str, ids: Sequence[str]) -> None:
        if ids:
            coll = self._collection(collection)
            step = max(1, self._max_batch)
            for start in range(0, len(ids), step):
                with writing():
                    coll.delete(ids=list(ids[start : start + step]))

    def ids(self, collection: str) -> set[str]:
        coll = self._collection(collection)
        out: set[str] = set()
        offset, page = 0, 10_000
        while True:
            got = coll.get(include=[], limit=page, offset=offset)["ids"]
            out.update(got)
            if len(got) < page:
                return out
            offset += page

    def close(self) -> None:
        with self._lock:
            self._collections.clear()
            # chromadb's sync HTTP client never closes its httpx session; do it, or sockets leak.
            for owner in (self._client, getattr(self._client, "_admin_client", None)):
                session = getattr(getattr(owner, "_server", None), "_session", None)
                if session is not None:
                    session.close()
            self._client.close()


def _forget_system(path: str) -> None:
    """Drop chromadb's process-wide cached system for `path` after a failed open. chromadb
    (1.5) caches one `System` per persist directory in `SharedSystemClient` *before* its
    server API has started; when that start fails the broken system stays cached, and every
    later client for the same path in this process gets it (`'RustBindingsAPI' object has no
    attribute 'bindings'`), so a damaged folder moved aside could not be rebuilt in place."""
    from chromadb.api.shared_system_client import SharedSystemClient

    with SharedSystemClient._refcount_lock:
        system = SharedSystemClient._identifier_to_system.pop(path, None)
        SharedSystemClient._identifier_to_refcount.pop(path, None)
    if system is not None:
        with contextlib.suppress(Exception):  # half-started: nothing of it is worth keeping
            system.stop()


def import_engine() -> None:
    """Import chromadb now (seconds): a parent that forks workers pays it once. Importing
    starts no thread; opening a client does."""
    import chromadb  # noqa: F401
