"""Deterministic stand-ins for the engines, for unit tests and quick benchmarks.

They pass the same contract tests as the real adapters, so a test on a fake means something.
"""

from __future__ import annotations

import hashlib
import math
import threading
from collections.abc import Sequence

import numpy as np

from storage.protocols import Vector
from storage.text import words


class HashEmbedder:
    """Bag-of-words hashed into a fixed number of buckets: texts sharing words are close."""

    def __init__(self, dimension: int = 64) -> None:
        self._dimension = dimension

    @property
    def dimension(self) -> int:
        return self._dimension

    @property
    def name(self) -> str:
        return f"hash-{self._dimension}"

    def embed(self, texts: Sequence[str]) -> list[Vector]:
        return [self._one(t) for t in texts]

    def _one(self, text: str) -> Vector:
        vec = [0.0] * self._dimension
        for word in words(text):
            digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
            bucket = int.from_bytes(digest[:4], "little") % self._dimension
            vec[bucket] += 1.0 if digest[4] & 1 else -1.0
        norm = math.sqrt(sum(v * v for v in vec))
        if norm == 0.0:
            vec[0] = 1.0
            return vec
        return [v / norm for v in vec]


class MemoryVectorIndex:
    """Brute-force cosine search over numpy arrays kept in memory."""

    def __init__(self) -> None:
        self._data: dict[str, dict[str, np.ndarray]] = {}
        self._lock = threading.Lock()

    def upsert(self, collection: str, ids: Sequence[str], vectors: Sequence[Vector]) -> None:
        if len(ids) != len(vectors):
            raise ValueError("ids and vectors differ in length")
        with self._lock:
            coll = self._data.setdefault(collection, {})
            for id_, vec in zip(ids, vectors, strict=True):
                arr = np.asarray(vec, dtype=np.float32)
                coll[id_] = arr / (np.linalg.norm(arr) or 1.0)

    def query(self, collection: str, vector: Vector, k: int) -> list[tuple[str, float]]:
        with self._lock:
            coll = dict(self._data.get(collection, {}))
        if not coll or k <= 0:
            return []
        ids = list(coll)
        matrix = np.stack([coll[i] for i in ids])
        q = np.asarray(vector, dtype=np.float32)
        q = q / (np.linalg.norm(q) or 1.0)
        dist = 1.0 - matrix @ q
        order = np.argsort(dist, kind="stable")[:k]
        return [(ids[i], float(dist[i])) for i in order]

    def delete(self, collection: str, ids: Sequence[str]) -> None:
        with self._lock:
            coll = self._data.get(collection, {})
            for id_ in ids:
                coll.pop(id_, None)

    def ids(self, collection: str) -> set[str]:
        with self._lock:
            return set(self._data.get(collection, {}))

    def close(self) -> None:
        """Nothing to release. The data stays, as a folder on disk would across a restart."""
