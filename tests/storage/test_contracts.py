"""One contract, every implementation: the fakes used by unit tests behave like the engines."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pytest

from storage.fakes import HashEmbedder, MemoryVectorIndex
from storage.protocols import Embedder, VectorIndex, embed_query
from tests.storage.chroma_server import chroma_server


@pytest.fixture(scope="module")
def chroma_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with chroma_server(tmp_path_factory.mktemp("chroma-server") / "data") as url:
        yield url


@pytest.fixture(params=["fake", "chroma-disk", "chroma-server"])
def index(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[VectorIndex]:
    from storage.vector_chroma import ChromaVectorIndex

    made: VectorIndex
    if request.param == "fake":
        made = MemoryVectorIndex()
    elif request.param == "chroma-disk":
        made = ChromaVectorIndex.persistent(tmp_path / "chroma")
    else:
        url = request.getfixturevalue("chroma_url")
        made = ChromaVectorIndex.http(url, namespace=f"t{abs(hash(tmp_path)) % 10**8}_")
    yield made
    made.close()


def _unit(*xs: float) -> list[float]:
    n = math.sqrt(sum(x * x for x in xs))
    return [x / n for x in xs]


def test_query_returns_nearest_first(index: VectorIndex) -> None:
    index.upsert("c", ["a", "b", "c"], [_unit(1, 0, 0), _unit(0, 1, 0), _unit(1, 1, 0)])
    hits = index.query("c", _unit(1, 0.1, 0), k=2)
    assert [h[0] for h in hits] == ["a", "c"]
    assert hits[0][1] < hits[1][1]
    assert hits[0][1] == pytest.approx(1 - _unit(1, 0.1, 0)[0], abs=1e-3)


def test_upsert_replaces_and_delete_removes(index: VectorIndex) -> None:
    index.upsert("c", ["a", "b"], [_unit(1, 0, 0), _unit(0, 1, 0)])
    index.upsert("c", ["a"], [_unit(0, 0, 1)])
    assert index.query("c", _unit(0, 0, 1), k=1)[0][0] == "a"
    index.delete("c", ["a", "never-existed"])
    assert index.ids("c") == {"b"}
    assert [h[0] for h in index.query("c", _unit(0, 0, 1), k=5)] == ["b"]


def test_collections_are_separate_and_empty_ones_answer(index: VectorIndex) -> None:
    index.upsert("one", ["x"], [_unit(1, 0, 0)])
    assert index.query("two", _unit(1, 0, 0), k=3) == []
    assert index.ids("two") == set()
    assert index.query("one", _unit(1, 0, 0), k=0) == []


def test_mismatched_lengths_are_rejected(index: VectorIndex) -> None:
    with pytest.raises(ValueError):
        index.upsert("c", ["a", "b"], [_unit(1, 0, 0)])


def test_many_ids_round_trip(index: VectorIndex) -> None:
    ids = [f"id{i}" for i in range(300)]
    vectors = [_unit(1, i / 300, (i % 7) / 7) for i in range(300)]
    index.upsert("many", ids, vectors)
    assert index.ids("many") == set(ids)
    assert len(index.query("many", vectors[17], k=10)) == 10


@pytest.fixture(params=["hash", "sentence-transformers", "onnx"])
def embedder(request: pytest.FixtureRequest) -> Embedder:
    if request.param == "hash":
        return HashEmbedder()
    name = "real_embedder" if request.param == "sentence-transformers" else "onnx_embedder"
    return request.getfixturevalue(name)  # type: ignore[no-any-return]


def test_embedder_contract(embedder: Embedder) -> None:
    texts = ["the cat sat on the mat", "a cat sat on a mat", "quarterly tax filing deadline"]
    vectors = embedder.embed(texts)
    assert len(vectors) == 3
    assert all(len(v) == embedder.dimension for v in vectors)
    assert all(math.isclose(sum(x * x for x in v), 1.0, rel_tol=1e-3) for v in vectors)
    assert embedder.embed(texts[:1])[0] == pytest.approx(vectors[0], abs=1e-5)  # deterministic
    assert embedder.embed([]) == []

    def cos(a: list[float], b: list[float]) -> float:
        return sum(x * y for x, y in zip(a, b, strict=True))

    assert cos(vectors[0], vectors[1]) > cos(vectors[0], vectors[2])
    assert embedder.name
    query = embed_query(embedder, "where did the cat sit")  # the query prompt, if it has one
    assert len(query) == embedder.dimension
    assert math.isclose(sum(x * x for x in query), 1.0, rel_tol=1e-3)
    assert cos(query, vectors[0]) > cos(query, vectors[2])


@pytest.mark.real
def test_the_onnx_embedder_gives_the_torch_models_vectors(
    real_embedder: Embedder, onnx_embedder: Embedder
) -> None:
    """The int8 export is the same model: switching re-embeds, but search means the same."""
    texts = ["Melanie: I signed up for a pottery class yesterday.", "What does Melanie do?", "ok"]
    long = " ".join(["a very long turn about camping by the lake"] * 80)  # past 256 tokens
    torch_vectors, onnx_vectors = (
        real_embedder.embed([*texts, long]),
        onnx_embedder.embed([*texts, long]),
    )
    for a, b in zip(torch_vectors, onnx_vectors, strict=True):
        assert sum(x * y for x, y in zip(a, b, strict=True)) > 0.99
    assert onnx_embedder.dimension == real_embedder.dimension == 384
    assert onnx_embedder.name != real_embedder.name


def test_the_torch_embedder_uses_the_models_prompts_and_matryoshka_cut() -> None:
    """EmbeddingGemma names a "query" and a "document" prompt in its config: queries and stored
    texts are embedded with their own; `truncate_dim` keeps the first dimensions, unit length."""
    from storage.embedder_st import SentenceTransformerEmbedder, default_model_path
    from storage.protocols import QueryEmbedder

    plain = SentenceTransformerEmbedder(default_model_path())
    cut = SentenceTransformerEmbedder(default_model_path(), truncate_dim=128)
    assert isinstance(plain, QueryEmbedder)
    text = "Melanie signed up for a pottery class"
    same = plain.embed_queries([text])[0]
    assert same == pytest.approx(plain.embed([text])[0], abs=1e-6)  # MiniLM has no prompts
    model = plain._load()
    model.prompts = {"query": "task: search result | query: ", "document": "title: none | text: "}
    query, document = plain.embed_queries([text])[0], plain.embed([text])[0]
    assert query != pytest.approx(document, abs=1e-3)
    expected = model.encode(["title: none | text: " + text], normalize_embeddings=True)[0]
    assert document == pytest.approx(expected.tolist(), abs=1e-5)
    short = cut.embed([text])[0]
    assert cut.dimension == 128 and len(short) == 128 and cut.name.endswith("@128")
    assert math.isclose(sum(x * x for x in short), 1.0, rel_tol=1e-3)
