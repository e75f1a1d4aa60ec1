"""Events per second through the whole memory-agent loop, and model calls per batch.

    python -m bench.ingest --json

Queues synthetic screen and chat events in a fresh store (real SQLite and Chroma, the embedded
MiniLM), then drains the queue through the meta manager and the memory agents with the
configured memory agents' model, exactly as the background worker does. `--models` drains
the same events through each built-in model in turn (as the agents' model), side by side.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench._setup import bench_runtime, emit, offline_environment, progress, reasons
from bench.retrieval import APPS, PEOPLE, PLACES, TOPICS, make_embedder
from storage.records import CoreBlock, Event, SemanticMemory
from storage.store import MemoryStore

SCREENS = [
    "Meeting notes: {person} and I {verb} the {topic}. Next step: send the summary to {person2}.",
    "Email from {person}: the {topic} for {place} is due on Friday. Call +1 555 01{n:02d}.",
    "How to deploy: 1. git pull 2. make build 3. scp dist to {place} server 4. restart service",
    "Reading '{topic} handbook.pdf', chapter 3: budgets, owners ({person}) and deadlines.",
    "Chat with {person}: I prefer tea over coffee and I live in {place}.",
    "Browser: booking a flight to {place} for the {topic} workshop next month.",
]
VERBS = ["reviewed", "planned", "postponed", "finished"]
#: What a user typed before the agents ran: none of it may change (`user_memories_changed`).
USER_CORE = "Name: Sam\nPrefers tea over coffee\nWorks as a backend engineer"
USER_FACTS = [
    (person, f"{person} leads the {topic} work; I meet them in {place}")
    for person, topic, place in zip(PEOPLE[:4], TOPICS[:4], PLACES[:4], strict=False)
]


def seed_user_memories(store: MemoryStore) -> dict[str, str]:
    """A handful of memories typed by the user; returns each one's stored row by id."""
    core = store.set_core("human", USER_CORE, actor="user")
    facts = store.add_many([SemanticMemory(name=n, summary=s) for n, s in USER_FACTS], actor="user")
    return {r.id: r.model_dump_json() for r in [core, *facts]}


def user_memories_changed(store: MemoryStore, seeded: dict[str, str]) -> int:
    """Seeded memories no longer byte-identical (the core block: its user lines)."""
    changed = 0
    for memory_id, before in seeded.items():
        now = store.get_many([memory_id])
        if not now:
            changed += 1
        elif isinstance(now[0], CoreBlock):
            lines = [x for x, origin in now[0].lines() if origin == "user"]
            changed += lines != USER_CORE.splitlines()
        elif now[0].model_dump_json() != before:
            changed += 1
    return changed


def synthetic_event(i: int, rng: random.Random) -> Event:
    text = SCREENS[i % len(SCREENS)].format(
        person=rng.choice(PEOPLE),
        person2=rng.choice(PEOPLE),
        topic=rng.choice(TOPICS),
        place=rng.choice(PLACES),
        verb=rng.choice(VERBS),
        n=i % 100,
    )
    return Event(
        text=text,
        source="chat" if "Chat with" in text else "screen",
        app=rng.choice(APPS),
        occurred_at=datetime(2026, 11, 2, 9, tzinfo=UTC) + timedelta(minutes=7 * i),
    )


def run_models(args: argparse.Namespace) -> dict[str, Any]:
    from bench.chat import loadavg

    out: dict[str, Any] = {}
    for key in [k.strip() for k in args.models.split(",") if k.strip()]:
        before = loadavg()
        out[key] = {**run(args, key), "loadavg_before": before, "loadavg_after": loadavg()}
        print(json.dumps({key: out[key]}), file=sys.stderr, flush=True)  # a long run
    return {"models": out}


def run(args: argparse.Namespace, agent_model: str | None = None) -> dict[str, Any]:
    rng = random.Random(args.seed)
    llm: dict[str, Any] = {"memory_batch_size": args.batch}
    if agent_model:  # the chat model is not used here: the tiny one, quick to load
        llm.update(agent_model=agent_model, model="smollm2", model_path=None)
    with (
        tempfile.TemporaryDirectory(prefix="engram-bench-ingest-") as tmp,
        bench_runtime(Path(tmp), llm, embedder=make_embedder(args.embedder)) as runtime,
    ):
        runtime.embedder().embed(["warm-up"])
        store, model = runtime.store(), runtime.agent_model()
        seeded = seed_user_memories(store)
        store.events.put_many([synthetic_event(i, rng) for i in range(args.events)])
        drained = runtime.drain(max_failures=args.events, on_batch=progress())
        counts = store.stats()["memories"]
        changed = user_memories_changed(store, seeded)
        suggestions = len(store.suggestions.pending())
        backlog = store.events.counts()
        info = model.info
    done = drained.events
    return {
        "events_per_s": round(done / drained.seconds, 3) if drained.seconds else 0.0,
        "llm_calls_per_batch": round(statistics.mean(r.llm_calls for r in drained.reports), 2)
        if drained.reports
        else 0.0,
        "events": args.events,
        "events_done": done,
        "batch_size": args.batch,
        "batches": len(drained.reports),
        "failed_batches": drained.failures,
        "seconds_per_batch_p50": round(statistics.median(r.seconds for r in drained.reports), 2)
        if drained.reports
        else None,
        "writes": drained.writes,
        "rejected_operations": len(drained.rejected),
        "rejection_reasons": reasons(drained.rejected),
        "memories": counts,
        "user_memories_changed": changed,
        "suggestions": suggestions,
        "backlog": backlog,
        "model": info.name,
        "backend": info.backend,
        "threads": info.threads,
        "seconds": round(drained.seconds, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=24)
    parser.add_argument("--batch", type=int, default=8, help="events per agent batch")
    parser.add_argument("--embedder", choices=["minilm", "hash"], default="minilm")
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--models", help="agent models to compare, e.g. qwen-0.5b,qwen-1.5b")
    parser.add_argument("--json", action="store_true", help="print JSON only")
    args = parser.parse_args(argv)
    offline_environment()
    emit(run_models(args) if args.models else run(args), args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
