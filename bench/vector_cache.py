"""Vectors a benchmark already computed, kept on disk: trying a slow embedder (EmbeddingGemma at
about 5 documents/s on one loaded core) on LoCoMo's 5,900 turns costs its embedding time once,
and every later run (another half, another fusion weight, a Matryoshka cut) reuses them.

`CachedEmbedder` wraps any embedder; the cache is an SQLite file keyed by the model's name, the
role (document or query) and the text. `dims` cuts each vector to its first `dims` numbers and
scales it back to unit length, which is what sentence-transformers' `truncate_dim` does, so one
cache of 768-dimension EmbeddingGemma vectors also serves the 256-dimension trial.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from storage.protocols import Embedder, Vector


class CachedEmbedder:
    """`inner`'s vectors, computed once per text and role and kept in the SQLite file `path`."""

    def __init__(self, inner: Embedder, path: Path, dims: int | None = None) -> None:
        self._inner = inner
        self._dims = dims
        self._db = sqlite3.connect(path, check_same_thread=False)
        self._db.execute("CREATE TABLE IF NOT EXISTS vectors (key TEXT PRIMARY KEY, vec BLOB)")
        self._lock = threading.Lock()
        self.computed = 0  # texts the inner embedder had to embed (the rest came from the file)

    @property
    def name(self) -> str:
        return f"{self._inner.name}@{self._dims}" if self._dims else self._inner.name

    @property
    def dimension(self) -> int:
        return self._dims or self._inner.dimension

    def embed(self, texts: Sequence[str]) -> list[Vector]:
        return self._cached(texts, "document", self._inner.embed)

    def embed_queries(self, texts: Sequence[str]) -> list[Vector]:
        compute = getattr(self._inner, "embed_queries", self._inner.embed)
        return self._cached(texts, "query", compute)

    def close(self) -> None:
        self._db.close()

    def _key(self, role: str, text: str) -> str:
        return hashlib.sha256(f"{self._inner.name}\0{role}\0{text}".encode()).hexdigest()

    def _cached(
        self, texts: Sequence[str], role: str, compute: Callable[[Sequence[str]], list[Vector]]
    ) -> list[Vector]:
        keys = [self._key(role, t) for t in texts]
        with self._lock:
            found: dict[str, np.ndarray] = {}
            for start in range(0, len(keys), 500):
                chunk = keys[start : start + 500]
                marks = ",".join("?" * len(chunk))
                for key, blob in self._db.execute(
                    f"SELECT key, vec FROM vectors WHERE key IN ({marks})",
                    chunk,
                ):
                    found[key] = np.frombuffer(blob, dtype=np.float32)
        todo = sorted({i for i, key in enumerate(keys) if key not in found})
        if todo:
            fresh = compute([texts[i] for i in todo])
            rows = []
            for i, vec in zip(todo, fresh, strict=True):
                arr = np.asarray(vec, dtype=np.float32)
                found[keys[i]] = arr
                rows.append((keys[i], arr.tobytes()))
            with self._lock, self._db:
                self._db.executemany("INSERT OR REPLACE INTO vectors VALUES (?, ?)", rows)
            self.computed += len(todo)
        return [self._cut(found[key]) for key in keys]

    def _cut(self, vec: np.ndarray) -> Vector:
        if self._dims:
            vec = vec[: self._dims]
            vec = vec / max(float(np.linalg.norm(vec)), 1e-12)
        out: Vector = vec.astype(float).tolist()
        return out
