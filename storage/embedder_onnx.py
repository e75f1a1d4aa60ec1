"""The ONNX adapter: the only module that imports onnxruntime and tokenizers.

A sentence-embedding model exported to ONNX runs without torch: an int8 all-MiniLM-L6-v2 costs
about a third of the CPU the torch model does, for the same vectors to within rounding. The
model file and a BERT `tokenizer.json` are local files (assembled and checked by
`app.model_files`); nothing is downloaded. Loaded lazily, so `import storage` stays fast.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from storage.errors import ModelUnavailable
from storage.protocols import Vector


class OnnxEmbedder:
    """Mean-pooled, unit-length token embeddings of an ONNX sentence encoder."""

    def __init__(
        self,
        model_path: Path,
        tokenizer_path: Path,
        name: str,
        max_tokens: int = 256,
        threads: int = 1,
        batch_size: int = 32,
    ) -> None:
        self._model_path = model_path
        self._tokenizer_path = tokenizer_path
        self._name = name
        self._max_tokens = max_tokens
        self._threads = threads
        self._batch_size = batch_size
        self._session: Any = None
        self._tokenizer: Any = None
        self._inputs: set[str] = set()
        self._output = ""
        self._dimension = 0
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return f"onnx:{self._name}"

    @property
    def dimension(self) -> int:
        self._load()
        return self._dimension

    def _load(self) -> None:
        with self._lock:
            if self._session is not None:
                return
            for path in (self._model_path, self._tokenizer_path):
                if not path.is_file():
                    raise ModelUnavailable(f"embedding model file {path} is missing")
            import onnxruntime
            from tokenizers import Tokenizer

            options = onnxruntime.SessionOptions()
            # One thread: a query is a handful of tokens, and the other core belongs to the
            # chat model and the UI (the same choice as the torch adapter's small batches).
            options.intra_op_num_threads = self._threads
            options.inter_op_num_threads = 1
            options.log_severity_level = 3
            try:
                session = onnxruntime.InferenceSession(
                    str(self._model_path), options, providers=["CPUExecutionProvider"]
                )
                tokenizer = Tokenizer.from_file(str(self._tokenizer_path))
            except Exception as exc:
                raise ModelUnavailable(
                    f"cannot load embedding model {self._model_path}: {exc}"
                ) from exc
            tokenizer.enable_truncation(self._max_tokens)
            tokenizer.no_padding()
            self._inputs = {i.name for i in session.get_inputs()}
            # The token embeddings: the first output of shape (batch, tokens, dimension); some
            # exports list pooled or auxiliary outputs first.
            token_outputs = [o for o in session.get_outputs() if len(o.shape) == 3]
            if not token_outputs:
                raise ModelUnavailable(f"{self._model_path} has no token-embedding output")
            self._output = token_outputs[0].name
            self._tokenizer = tokenizer
            hidden = token_outputs[0].shape[-1]
            self._session = session
            self._dimension = (
                int(hidden) if isinstance(hidden, int) else len(self._embed_batch(["probe"])[0])
            )

    def embed(self, texts: Sequence[str]) -> list[Vector]:
        if not texts:
            return []
        self._load()
        # Similar lengths together: padding a short text to a long one's length is wasted work.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out: list[Vector] = [[] for _ in texts]
        for start in range(0, len(order), self._batch_size):
            chunk = order[start : start + self._batch_size]
            for i, row in zip(chunk, self._embed_batch([texts[i] for i in chunk]), strict=True):
                out[i] = row.tolist()
        return out

    def _embed_batch(self, texts: Sequence[str]) -> np.ndarray:
        encodings = self._tokenizer.encode_batch(list(texts))
        width = max(len(e.ids) for e in encodings)
        ids = np.zeros((len(texts), width), dtype=np.int64)
        mask = np.zeros((len(texts), width), dtype=np.int64)
        for row, enc in enumerate(encodings):
            ids[row, : len(enc.ids)] = enc.ids
            mask[row, : len(enc.ids)] = 1
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feeds["token_type_ids"] = np.zeros_like(ids)
        hidden = self._session.run([self._output], feeds)[0]
        weights = mask[:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        result: np.ndarray = pooled / np.maximum(norms, 1e-12)
        return result
