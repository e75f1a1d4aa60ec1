"""Insert rate and hybrid-search latency across all six memory types.

    python -m bench.retrieval --memories 100000 --json

Builds a fresh store in a temporary folder (real SQLite, real Chroma, the embedded MiniLM by
default), fills it with synthetic but varied memories of every type, then times hybrid searches
across all types. Target on a 2-core laptop CPU at 100k: search_p95_ms <= 50.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench._setup import bench_runtime, emit, offline_environment
from storage.protocols import Embedder
from storage.records import (
    EpisodicMemory,
    ProceduralMemory,
    Record,
    ResourceMemory,
    SemanticMemory,
    VaultEntry,
)

PEOPLE = (
    "Ana Ben Chloe Dev Emil Farah Gus Hana Ivo Jun Kira Leo Mina Nils Omar Pia Raj Sol Tess Uma"
).split()
PLACES = (
    "Lisbon Berlin Osaka Lagos Quito Oslo Perth Delhi Austin Cairo Seoul Lima Porto Rome".split()
)
TOPICS = (
    "quarterly budget|release checklist|hiring plan|database migration|customer churn|"
    "design review|tax return|marathon training|kitchen renovation|sourdough recipe|"
    "flight booking|insurance claim|conference talk|onboarding guide|security audit|"
    "garden irrigation|piano practice|team offsite|invoice dispute|thesis draft|"
    "API rate limits|backup rotation|dentist appointment|school pickup|car service"
).split("|")
VERBS = "discussed|reviewed|planned|postponed|finished|argued about|sketched|summarised".split("|")
APPS = "Firefox|Slack|VS Code|Terminal|Thunderbird|LibreOffice|Obsidian|Zoom".split("|")


def synthetic_record(i: int, rng: random.Random) -> Record:
    person, place, topic = rng.choice(PEOPLE), rng.choice(PLACES), rng.choice(TOPICS)
    verb, app = rng.choice(VERBS), rng.choice(APPS)
    when = datetime(2025, 1, 1, tzinfo=UTC) + timedelta(minutes=rng.randrange(60 * 24 * 600))
    kind = i % 10
    tag = f"item {i}"
    if kind < 5:
        return EpisodicMemory(
            summary=f"{verb} the {topic} with {person} in {place} ({tag})",
            details=f"Seen in {app}; follow-up due {when:%A}.",
            occurred_at=when,
            actor=person,
        )
    if kind < 7:
        return SemanticMemory(
            name=f"{person} {topic}",
            summary=f"{person} owns the {topic}; based in {place}",
            details=f"Learnt while using {app} ({tag})",
        )
    if kind == 7:
        return ProceduralMemory(
            summary=f"How to handle the {topic} ({tag})",
            steps=(f"open {app}", f"ask {person}", f"file it under {place}"),
        )
    if kind == 8:
        return ResourceMemory(
            title=f"{topic} notes {i}.md",
            summary=f"Notes on the {topic} from {place}",
            content=f"{person} {verb} the {topic}. " * 3,
        )
    return VaultEntry(
        caption=f"{app} login for the {topic} ({tag})",
        secret_value=f"pw-{rng.getrandbits(48):x}",
        source=app,
    )


def synthetic_query(rng: random.Random) -> str:
    shapes = [
        "what did I decide about the {topic}",
        "when did I meet {person} in {place}",
        "{person} {topic}",
        "how do I handle the {topic}",
        "notes about {topic} from {place}",
        "login for {app}",
    ]
    return rng.choice(shapes).format(
        topic=rng.choice(TOPICS),
        person=rng.choice(PEOPLE),
        place=rng.choice(PLACES),
        app=rng.choice(APPS),
    )


def make_embedder(name: str) -> Embedder | None:
    """`hash`: a deterministic stand-in; `minilm`: None, the runtime's configured embedder
    (the embedded all-MiniLM-L6-v2 unless the settings name another)."""
    if name == "hash":
        from storage.fakes import HashEmbedder

        return HashEmbedder(384)
    return None


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def run(
    memories: int, queries: int, embedder_name: str, data_dir: Path, seed: int
) -> dict[str, object]:
    rng = random.Random(seed)
    with bench_runtime(data_dir, embedder=make_embedder(embedder_name)) as runtime:
        embedder = runtime.embedder()
        embedder.embed(["warm-up"])  # model load is not insert time
        store = runtime.store()
        started = time.perf_counter()
        batch = 512
        for start in range(0, memories, batch):
            recs = [synthetic_record(i, rng) for i in range(start, min(memories, start + batch))]
            store.add_many(recs, actor="bench")
            if sys.stderr.isatty():
                print(f"\rinserted {start + len(recs)}/{memories}", end="", file=sys.stderr)
        insert_s = time.perf_counter() - started
        for _ in range(5):
            store.search(synthetic_query(rng))
        timings = []
        for _ in range(queries):
            query = synthetic_query(rng)
            t0 = time.perf_counter()
            hits = store.search(query, k=10)
            timings.append((time.perf_counter() - t0) * 1000)
            assert hits, f"no hit for {query!r}"
        return {
            "memories": memories,
            "embedder": embedder.name,
            "insert_per_s": round(memories / insert_s, 1),
            "search_p50_ms": round(statistics.median(timings), 2),
            "search_p95_ms": round(percentile(timings, 95), 2),
            "search_max_ms": round(max(timings), 2),
            "queries": queries,
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--memories", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--embedder", choices=["minilm", "hash"], default="minilm")
    parser.add_argument("--data-dir", type=Path, help="keep the store here (default: temp)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", action="store_true", help="print JSON only")
    args = parser.parse_args(argv)
    offline_environment()
    with tempfile.TemporaryDirectory(prefix="engram-bench-") as tmp:
        result = run(
            args.memories, args.queries, args.embedder, args.data_dir or Path(tmp), args.seed
        )
    emit(result, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
