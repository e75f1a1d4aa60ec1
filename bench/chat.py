"""Chat latency and streaming speed over a store of 10k memories.

    python -m bench.chat --json

Fills a fresh store (real SQLite and Chroma, the embedded MiniLM) with synthetic memories of
every type, then asks questions through the chat agent with the configured model. Reports the
median time to first token (retrieval + prompt evaluation), the median retrieval time, and
generation speed through the agent next to llama.cpp alone on the very same prompt
(`raw_tokens_per_s`). Both speeds are timed the same way: from the first chunk the caller gets
to the last (the end of a stream comes one decode after its last token, the one that finds the
end-of-text token, and is no part of either). Target (issue 11) on this 2-core CPU with the
default chat model: ttft_ms_p50 <= 1500 and tokens_per_s >= 0.9 x raw_tokens_per_s.

As the app does when the model loads, the fixed prompt prefix (system prompt, core memory) is
evaluated first (`Runtime.warm_chat`); `first_ttft_ms` is the first question's time after it.
For llama.cpp the time to first token is split with its own counters: `prompt_eval_tokens_p50`
(what was new in each prompt; the cached prefix is not paid again), `prompt_eval_ms_p50` and
`prompt_tokens_per_s` (llama.cpp's prompt speed), and `decode_tokens_per_s` (its generation
speed without any Python around it).

`--models smollm2,qwen-0.5b,qwen-1.5b` measures several built-in models side by side in one
run (one after another, the load average beside each), with ratios to the first; `--rss` also
loads the memory agents' model (`--agent-model`) and reports the process's resident memory
with both loaded. `prompt_eval_tokens_p50` is what llama.cpp evaluated of each prompt: the
cached prefix (the system prompt) is not paid again.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from agents.llm.port import ChatModel, Request
from bench._setup import bench_runtime, emit, offline_environment
from bench.retrieval import make_embedder, percentile, synthetic_query, synthetic_record
from storage.store import MemoryStore


def fill(store: MemoryStore, memories: int, rng: random.Random) -> float:
    started = time.perf_counter()
    for start in range(0, memories, 512):
        batch = [synthetic_record(i, rng) for i in range(start, min(memories, start + 512))]
        store.add_many(batch, actor="bench")
    store.set_core("human", "Name is Sam. Works as a product manager in Lisbon.")
    store.set_core("persona", "Engram answers briefly and cites its memories.")
    return time.perf_counter() - started


def raw_speed(model: ChatModel, request: Request) -> float:
    """Tokens/s of the backend alone on `request`, past the scheduler: for llama.cpp,
    `create_chat_completion` called directly on the model's own thread; otherwise the backend's
    plain stream."""
    inner: ChatModel = getattr(model, "inner", model)
    call = getattr(inner, "call", None)
    if call is None:
        return _rate(inner.stream(request))
    msgs = [{"role": m.role, "content": m.content} for m in request.messages]

    def run(llm: Any) -> float:
        chunks = llm.create_chat_completion(
            messages=msgs,
            max_tokens=request.max_tokens,
            temperature=request.temperature,
            stream=True,
        )
        return _rate(c["choices"][0]["delta"].get("content") for c in chunks)

    rate: float = call(run)
    return rate


def _rate(chunks: Any) -> float:
    """Chunks per second from the first chunk's arrival to the last's."""
    first = last = 0.0
    n = 0
    for chunk in chunks:
        if not chunk:
            continue
        last = time.perf_counter()
        if n == 0:
            first = last
        n += 1
    return (n - 1) / (last - first) if n > 1 and last > first else 0.0


def loadavg() -> str:
    try:
        return Path("/proc/loadavg").read_text().strip()
    except OSError:
        return ""


def rss_mb() -> dict[str, float]:
    """Resident memory of this process now and at its peak (Linux)."""
    out = {}
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = round(int(value.split()[0]) / 1024, 1)
    except OSError:
        pass
    return out


def _timings(model: ChatModel) -> dict[str, float]:
    """llama.cpp's counters for the model's last generation (empty for another backend)."""
    inner = getattr(model, "inner", model)
    value = getattr(inner, "last_timings", None)
    return dict(value) if isinstance(value, dict) else {}


def _median(values: list[float], digits: int = 1) -> float | None:
    return round(statistics.median(values), digits) if values else None


def run_models(args: argparse.Namespace) -> dict[str, Any]:
    """Each model of `--models` in turn, with ratios of its figures to the first one's."""
    keys = [k.strip() for k in args.models.split(",") if k.strip()]
    results: dict[str, Any] = {}
    for key in keys:
        before = loadavg()
        results[key] = {**run(args, key), "loadavg_before": before, "loadavg_after": loadavg()}
        print(json.dumps({key: results[key]}), file=sys.stderr, flush=True)  # a long run
    first = results[keys[0]]
    for key in keys[1:]:
        results[key]["vs_" + keys[0]] = {
            name: round(results[key][name] / first[name], 2)
            for name in ("ttft_ms_p50", "tokens_per_s")
            if first.get(name)
        }
    return {"models": results}


def run(args: argparse.Namespace, model_key: str | None = None) -> dict[str, Any]:
    rng = random.Random(args.seed)
    llm: dict[str, Any] = {"answer_tokens": args.answer_tokens}
    if model_key:
        llm["model"] = model_key
    if args.agent_model:
        llm["agent_model"] = args.agent_model
    if args.context_tokens:
        llm["chat_context_tokens"] = args.context_tokens
    with (
        tempfile.TemporaryDirectory(prefix="engram-bench-chat-") as tmp,
        bench_runtime(Path(tmp), llm, embedder=make_embedder(args.embedder)) as runtime,
    ):
        embedder = runtime.embedder()
        embedder.embed(["warm-up"])
        store, model = runtime.store(), runtime.model()
        fill_s = fill(store, args.memories, rng)
        agent = runtime.chat_agent()
        runtime.warm_chat()  # what the app does when the model loads
        first = agent.ask(synthetic_query(rng)).result  # first-call costs are not latency
        assert first.tokens > 0, "the model produced nothing"
        ttft, retrieval, rates, raws, prompt_tokens = [], [], [], [], []
        evaluated, prompt_ms, prompt_rates, decode_rates = [], [], [], []
        for _ in range(args.questions):
            question = synthetic_query(rng)
            reply = agent.ask(question)
            rate = _rate(reply)  # timed as raw_speed times llama.cpp alone
            result = reply.result
            if result.ttft_ms is None:
                continue
            timings = _timings(model)
            if timings:
                evaluated.append(timings["prompt_tokens"])
                prompt_ms.append(timings["prompt_ms"])
                if timings["prompt_ms"] > 0:
                    prompt_rates.append(timings["prompt_tokens"] / timings["prompt_ms"] * 1000)
                if timings["tokens"] > 1 and timings["generate_ms"] > 0:
                    decode_rates.append(timings["tokens"] / timings["generate_ms"] * 1000)
            ttft.append(result.ttft_ms)
            retrieval.append(result.context.retrieval_ms)
            if rate > 0:
                rates.append(rate)
            request = agent.request(question, (), result.context)
            raws.append(raw_speed(model, request))
            prompt_tokens.append(sum(len(m.content) for m in request.messages) / 3.2)
        info = model.info
        memory: dict[str, Any] = {}
        if args.rss:  # both models loaded and used once, as in the app
            from agents.llm.port import Request, complete, messages

            agents = runtime.agent_model()
            say = Request(messages("Be brief.", "Say hi."), max_tokens=4, background=True)
            complete(agents, say)
            memory = {
                "rss_mb_both_loaded": rss_mb(),
                "agent_model": agents.info.name,
                "agent_threads": agents.info.threads,
            }
    return {
        "ttft_ms_p50": round(statistics.median(ttft), 1),
        "retrieval_ms_p50": round(statistics.median(retrieval), 2),
        "retrieval_ms_p95": round(percentile(retrieval, 95), 2),
        "tokens_per_s": round(statistics.median(rates), 1),
        "raw_tokens_per_s": round(statistics.median(raws), 1),
        "ttft_ms_p95": round(sorted(ttft)[-(-len(ttft) * 95 // 100) - 1], 1),  # nearest rank
        "first_ttft_ms": round(first.ttft_ms, 1) if first.ttft_ms is not None else None,
        "questions": len(ttft),
        "memories": args.memories,
        "fill_s": round(fill_s, 1),
        "prompt_tokens_est_p50": round(statistics.median(prompt_tokens)),
        "prompt_eval_tokens_p50": round(statistics.median(evaluated)) if evaluated else None,
        "prompt_eval_ms_p50": _median(prompt_ms),
        "prompt_tokens_per_s": _median(prompt_rates),
        "decode_tokens_per_s": _median(decode_rates),
        "model": info.name,
        "backend": info.backend,
        "gpu_offload": info.gpu_offload,
        "threads": info.threads,
        "embedder": embedder.name,
        **memory,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--memories", type=int, default=10_000)
    parser.add_argument("--questions", type=int, default=10)
    parser.add_argument("--answer-tokens", type=int, default=64)
    parser.add_argument("--context-tokens", type=int, help="memory budget (default: settings)")
    parser.add_argument("--embedder", choices=["minilm", "hash"], default="minilm")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--models", help="built-in models to compare, e.g. smollm2,qwen-1.5b")
    parser.add_argument("--agent-model", help="the memory agents' model (with --rss)")
    parser.add_argument("--rss", action="store_true", help="resident memory, both loaded")
    parser.add_argument("--json", action="store_true", help="print JSON only")
    args = parser.parse_args(argv)
    offline_environment()
    emit(run_models(args) if args.models else run(args), args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
