"""The benchmark's vector cache: each text is embedded once per role, a cut keeps unit length."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import pytest

from bench.vector_cache import CachedEmbedder
from storage.fakes import HashEmbedder
from storage.protocols import Vector, embed_query


class Counting(HashEmbedder):
    """HashEmbedder with a query prompt of its own, counting what it embeds."""

    def __init__(self) -> None:
        super().__init__(dimension=32)
        self.seen: list[str] = []

    def embed(self, texts: Sequence[str]) -> list[Vector]:
        self.seen += texts
        return super().embed(texts)

    def embed_queries(self, texts: Sequence[str]) -> list[Vector]:
        return self.embed([f"query {t}" for t in texts])


def test_vectors_are_computed_once_and_kept_on_disk(tmp_path: Path) -> None:
    inner = Counting()
    cache = CachedEmbedder(inner, tmp_path / "v.sqlite")
    first = cache.embed(["a cat", "a dog"])
    assert cache.embed(["a dog", "a cat"]) == [first[1], first[0]]
    assert embed_query(cache, "a cat") == pytest.approx(inner.embed(["query a cat"])[0])
    assert inner.seen == ["a cat", "a dog", "query a cat", "query a cat"]
    cache.close()
    again = CachedEmbedder(Counting(), tmp_path / "v.sqlite")
    assert again.embed(["a cat"])[0] == pytest.approx(first[0])
    assert again.computed == 0 and again.name == inner.name and again.dimension == 32


def test_a_matryoshka_cut_is_the_first_dimensions_at_unit_length(tmp_path: Path) -> None:
    full = CachedEmbedder(Counting(), tmp_path / "v.sqlite").embed(["a cat sat on the mat"])[0]
    cut = CachedEmbedder(Counting(), tmp_path / "v.sqlite", dims=8)
    (short,) = cut.embed(["a cat sat on the mat"])
    assert len(short) == 8 and cut.dimension == 8 and cut.name.endswith("@8")
    assert math.isclose(sum(x * x for x in short), 1.0, rel_tol=1e-6)
    norm = math.sqrt(sum(x * x for x in full[:8]))
    assert short == pytest.approx([x / norm for x in full[:8]])
