"""The chat model file a user picks: any GGUF loads through the settings, and a missing, wrong
or corrupt file is a clear error, never a crash."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from app.bootstrap import make_chat_model
from app.llm_config import LLMSettings
from app.settings import Settings
from storage.errors import ModelUnavailable


def test_settings_refuse_a_missing_or_non_gguf_file(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="does not exist"):
        LLMSettings(model_path=tmp_path / "nope.gguf")
    other = tmp_path / "weights.bin"
    other.write_bytes(b"\0" * 16)
    with pytest.raises(ValidationError, match="not a GGUF file"):
        LLMSettings(model_path=other)


def test_a_file_gone_since_the_settings_were_saved_is_model_unavailable(tmp_path: Path) -> None:
    from agents.llm.llamacpp import LlamaCppModel

    with pytest.raises(ModelUnavailable, match="does not exist"):
        LlamaCppModel(tmp_path / "deleted.gguf")


@pytest.mark.real
def test_a_corrupt_gguf_is_model_unavailable(tmp_path: Path) -> None:
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\x07" * 4096)
    with pytest.raises(ModelUnavailable, match="cannot load the chat model"):
        make_chat_model(Settings(llm=LLMSettings(model_path=broken, n_ctx=512)))


@pytest.mark.real
def test_any_gguf_the_user_picks_is_loaded_from_its_path(tmp_path: Path) -> None:
    from agents.llm.llamacpp import embedded_model_path
    from agents.llm.port import Request, complete, messages

    picked = tmp_path / "my-model.gguf"
    picked.symlink_to(embedded_model_path())
    model = make_chat_model(Settings(llm=LLMSettings(model_path=picked, n_ctx=512, threads=2)))
    try:
        assert model.inner.call(lambda llm: llm.model_path) == str(picked)  # type: ignore[attr-defined]
        assert model.info.backend == "llama.cpp" and model.info.n_ctx == 512
        assert model.info.preemptible and model.info.supports_schema
        reply = complete(model, Request(messages("Answer in one word.", "Say hi"), max_tokens=8))
        assert reply.strip()
    finally:
        model.close()
