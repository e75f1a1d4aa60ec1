"""The MCP server as a host sees it: tools listed, and the round trip of a search.

    nice -n 10 python -m bench.mcp --memories 10000 --calls 100 --json

Fills a fresh store (real SQLite and Chroma, the embedded MiniLM by default) with synthetic
memories of every type, then starts `engram mcp` on it as a subprocess and drives it with the
official SDK's stdio client: one `tools/list`, a few warm-up searches, then `--calls` timed
`search_memories` calls (request to parsed reply, the host's view).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench._setup import bench_runtime, emit, offline_environment
from bench.retrieval import make_embedder, percentile, synthetic_query, synthetic_record
from storage.fakes import HashEmbedder


def fill(data_dir: Path, memories: int, embedder_name: str, seed: int) -> float:
    """`memories` synthetic memories in `data_dir`; returns the seconds it took."""
    rng = random.Random(seed)
    started = time.perf_counter()
    embedder = HashEmbedder() if embedder_name == "hash" else make_embedder(embedder_name)
    with bench_runtime(data_dir, embedder=embedder) as runtime:  # the server's own embedder
        store = runtime.store()
        for start in range(0, memories, 512):
            records = [synthetic_record(i, rng) for i in range(start, min(memories, start + 512))]
            store.add_many(records, actor="bench")
    return time.perf_counter() - started


async def drive(home: Path, calls: int, embedder_name: str, seed: int) -> dict[str, Any]:
    from mcp import ClientSession
    from mcp.client.stdio import StdioServerParameters, stdio_client

    root = Path(__file__).resolve().parents[1]
    module = "tests.helpers.engram_fast" if embedder_name == "hash" else "app"
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", module, "mcp"],
        env={**os.environ, "ENGRAM_HOME": str(home), "PYTHONPATH": str(root)},
        cwd=str(root),
    )
    rng = random.Random(seed)
    started = time.perf_counter()
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        ready_s = time.perf_counter() - started
        tools = sorted(t.name for t in (await session.list_tools()).tools)
        first = time.perf_counter()
        await session.call_tool("search_memories", {"query": "warm-up"})  # opens the store
        first_call_s = time.perf_counter() - first
        for _ in range(5):
            await session.call_tool("search_memories", {"query": synthetic_query(rng)})
        timings, results = [], []
        for _ in range(calls):
            query = synthetic_query(rng)
            t0 = time.perf_counter()
            reply = await session.call_tool("search_memories", {"query": query, "limit": 10})
            timings.append((time.perf_counter() - t0) * 1000)
            if reply.is_error or reply.structured_content is None:
                raise RuntimeError(f"search failed: {reply.content}")
            results.append(len(reply.structured_content["results"]))
    return {
        "tools_listed": tools,
        "server_ready_s": round(ready_s, 2),
        "first_call_s": round(first_call_s, 2),
        "search_calls": calls,
        "search_round_trip_p50_ms": round(statistics.median(timings), 2),
        "search_round_trip_p95_ms": round(percentile(timings, 95), 2),
        "results_per_call_mean": round(statistics.fmean(results), 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--memories", type=int, default=10_000)
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--embedder", choices=["minilm", "hash"], default="minilm")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", action="store_true", help="print JSON only")
    args = parser.parse_args(argv)
    offline_environment()
    with tempfile.TemporaryDirectory(prefix="engram-bench-mcp-") as tmp:
        home = Path(tmp)
        os.environ["ENGRAM_HOME"] = str(home)  # the store, and the server's settings
        (home / "config").mkdir()
        limits = {"mcp": {"calls_per_minute": 100_000}}  # the benchmark is not a runaway host
        (home / "config" / "settings.json").write_text(json.dumps(limits))
        fill_s = fill(home, args.memories, args.embedder, args.seed)
        result = asyncio.run(drive(home, args.calls, args.embedder, args.seed))
    emit({"memories": args.memories, "embedder": args.embedder, "fill_s": round(fill_s, 1),
          **result}, args.json)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
