"""The real Chroma adapter with its writes failing on demand: what a store meets when the Chroma
server goes down or the `chroma/` folder's disk fills up after SQLite has committed."""

from __future__ import annotations

import errno
from collections.abc import Sequence
from pathlib import Path

from storage.fakes import HashEmbedder
from storage.protocols import Embedder, Vector
from storage.store import MemoryStore
from storage.vector_chroma import ChromaVectorIndex


class FailingWrites:
    """Wraps a real `ChromaVectorIndex`: while `failing` is set, upserts and deletes raise the
    error a full disk gives (after nothing reached Chroma); queries and `ids` still work."""

    def __init__(self, inner: ChromaVectorIndex) -> None:
        self.inner = inner
        self.failing = True
        self.failed = 0  # writes refused so far

    def _refuse(self) -> None:
        if self.failing:
            self.failed += 1
            raise OSError(errno.ENOSPC, "No space left on device", "chroma")

    def upsert(self, collection: str, ids: Sequence[str], vectors: Sequence[Vector]) -> None:
        self._refuse()
        self.inner.upsert(collection, ids, vectors)

    def query(self, collection: str, vector: Vector, k: int) -> list[tuple[str, float]]:
        return self.inner.query(collection, vector, k)

    def delete(self, collection: str, ids: Sequence[str]) -> None:
        self._refuse()
        self.inner.delete(collection, ids)

    def ids(self, collection: str) -> set[str]:
        return self.inner.ids(collection)

    def close(self) -> None:
        self.inner.close()


def open_failing(
    home: Path, embedder: Embedder | None = None, failing: bool = True
) -> tuple[MemoryStore, FailingWrites]:
    """A store in `home` on real SQLite and a real Chroma folder whose writes fail from the
    moment the store is open (so the repair at open has nothing left to do)."""
    made: list[FailingWrites] = []

    def factory(path: Path) -> FailingWrites:
        made.append(FailingWrites(ChromaVectorIndex.persistent(path)))
        made[-1].failing = False
        return made[-1]

    store = MemoryStore.open(home, embedder or HashEmbedder(), factory)
    made[0].failing = failing
    return store, made[0]
