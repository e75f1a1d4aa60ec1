"""LoCoMo with memories made by the agents: `python -m bench.locomo --mode agents ...`.

Every dialogue turn becomes an event (time = its session's date) and the memory agents turn
batches of them into memories, as the desktop app does with screen reads. A memory's provenance
holds the events it came from, so each question's top-k memories map back to dialogue ids:
frac@k is scored on the first k distinct dialogue ids so reached (the same k turns raw mode
gets), and on all of them as a second figure. Search returns the raw events beside the memories
(an event hit is its own turn), so `frac_at_k` scores everything and `frac_at_k_memories_only`
the memories alone: how much the agents add to what capture already made searchable. With
`--answer` the chat agent then answers the questions of categories 1-4 on the model the agents
used, scored by LoCoMo's token F1 (bench/locomo_answer.py).
Honest numbers for the embedded 135M model are low; the harness is what a bigger GGUF needs.
`--batch` (events per agent batch, default 8), `--max-turns` (ingest only the first N turns, and
score only the questions whose evidence lies in them) and `--max-questions` (score only the first
N questions) make a quicker run.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agents.llm.port import ChatModel
from agents.loop import BatchReport
from bench._setup import bench_runtime, bench_settings, progress, reason_counts
from bench.locomo_answer import Answerer
from bench.locomo_data import (
    SCORED_CATEGORIES,
    Conversation,
    IndexFactory,
    Score,
    score_question,
    summarise,
)
from storage.protocols import Embedder
from storage.records import Event
from storage.store import EventHit, Hit, MemoryStore

if TYPE_CHECKING:
    from app.runtime import Runtime


def turn_events(conv: Conversation) -> tuple[list[Event], dict[str, str]]:
    events, dia_of = [], {}
    for turn in conv.turns:
        text = f"{turn.speaker}: {turn.text}"
        if turn.caption:
            text += f" [shares a photo: {turn.caption}]"
        event = Event(
            # The same id on every run, so a store kept by --keep-stores maps back to its turns.
            id="evt_" + hashlib.sha256(f"{conv.sample_id} {turn.dia_id}".encode()).hexdigest()[:32],
            text=text,
            source="import",
            app="locomo",
            window_title=f"session {turn.session}",
            occurred_at=turn.at,
            metadata={"dia_id": turn.dia_id, "speaker": turn.speaker},  # as import-chat does
        )
        events.append(event)
        dia_of[event.id] = turn.dia_id
    return events, dia_of


def ingest(runtime: Runtime, events: list[Event], folder: Path | None = None) -> dict[str, Any]:
    """Store `events` and drain them through the agents. With `folder` (`--keep-stores`) the
    running figures are saved after every batch, so a run killed half-way resumes where it
    stopped (the events are stored once by id; the store returns claimed ones on opening). A
    batch the kill ended between its commit and the save is done but not counted."""
    store = runtime.store()
    store.events.put_many(events)
    saved = folder / PARTIAL if folder is not None else None
    run: dict[str, Any] = {"batches": 0, "failed_batches": 0, "llm_calls": 0, "writes": 0}
    run |= {"rejection_reasons": {}, "ingest_s": 0.0}
    if saved is not None and saved.exists():
        run = json.loads(saved.read_text())
        print(f"{saved.parent.name}: resuming after {run['batches']} batches", file=sys.stderr)
    printed = progress()
    last = time.perf_counter()

    def on_batch(report: BatchReport | None, error: BaseException | None) -> None:
        nonlocal last
        printed(report, error)
        now = time.perf_counter()
        run["ingest_s"] = round(run["ingest_s"] + now - last, 1)
        last = now
        if report is None:
            run["failed_batches"] += 1
        else:
            run["batches"] += 1
            run["llm_calls"] += report.llm_calls
            run["writes"] += len(report.writes)
            why = Counter(run["rejection_reasons"]) + reason_counts(report.rejected)
            run["rejection_reasons"] = dict(why)
        if saved is not None:
            saved.write_text(json.dumps(run))

    runtime.drain(max_failures=len(events), on_batch=on_batch)
    store.index_events()  # the worker does this between batches; drain leaves it to us
    why = Counter(run["rejection_reasons"])
    return {
        **{k: run[k] for k in ("batches", "failed_batches", "llm_calls", "writes")},
        "rejected_operations": sum(why.values()),
        "rejection_reasons": dict(why.most_common(6)),
        "ingest_s": run["ingest_s"],
        "events_failed": store.events.counts()["failed"],
    }


def retrieved_dia_ids(
    store: MemoryStore, question: str, k: int, dia_of: dict[str, str], events: bool = True
) -> tuple[list[str], list[str]]:
    """The dialogue ids the hits reach, best first: an event is its own turn, a memory reaches
    the turns it cites. Returns the first k distinct turns, reading on past the k-th hit (up
    to 3k) when memories restate turns already reached, as raw mode's k events are k turns; and
    every turn the top k hits reach (the uncapped figure)."""
    hits = store.search(question, k=3 * k, events=events)

    def reached(some: Sequence[Hit]) -> list[str]:
        ids = [
            dia_of[p]
            for h in some
            for p in (h.event.provenance if isinstance(h, EventHit) else h.record.provenance)
            if p in dia_of
        ]
        return list(dict.fromkeys(ids))

    return reached(hits)[:k], reached(hits[:k])


#: What `--keep-stores` leaves in a conversation's folder once its agents have run.
INGESTED = "bench-ingested.json"
#: The running figures of a kept store's ingest, saved after every batch (see `ingest`).
PARTIAL = "bench-partial.json"
#: The limits a kept store was begun with, so a resumed run is refused other limits.
BEGUN = "bench-limits.json"


def limits(args: argparse.Namespace) -> dict[str, Any]:
    """What a kept store must have been built with to be scored again or resumed."""
    return {"batch": args.batch, "max_turns": args.max_turns}


def kept_ingest(folder: Path, args: argparse.Namespace) -> dict[str, Any] | None:
    """The ingest figures of a store `--keep-stores` kept, when it was built with the same
    batch size and prefix (None: build it, or resume a half-built one); a store built
    otherwise is refused."""
    marker = folder / INGESTED
    wanted = limits(args)
    if not marker.exists():
        started = folder / BEGUN
        if folder.exists() and any(folder.iterdir()):
            if not started.exists() or json.loads(started.read_text()) != wanted:
                raise SystemExit(f"{folder} holds a store built otherwise: remove it")
        else:
            folder.mkdir(parents=True, exist_ok=True)
            started.write_text(json.dumps(wanted))
        return None  # built, or resumed, by `ingest`
    kept = json.loads(marker.read_text())
    if kept["limits"] != wanted:
        raise SystemExit(f"{folder} was built with {kept['limits']}, not {wanted}: remove it")
    print(f"{folder.name}: reusing the kept store", file=sys.stderr)
    return dict(kept["stats"])


def run_conversation(
    conv: Conversation,
    embedder: Embedder,
    model: ChatModel,
    args: argparse.Namespace,
    factory: IndexFactory | None,
    answerer: Answerer | None = None,
    agent_model: ChatModel | None = None,
) -> dict[str, Any]:
    """One conversation through a fresh store: `model` answers, `agent_model` (default:
    `model`) runs the memory agents, both lent, as the app pairs them."""
    k = args.k  # a --max-turns prefix was cut by bench.locomo.prepare
    # A shared, busy machine makes calls slow: a batch the app would time out and retry is
    # given longer here, so the figures measure the memories, not the machine's load.
    llm = {"memory_batch_size": args.batch, "answer_tokens": 48, "call_timeout_s": 900.0}
    with contextlib.ExitStack() as stack:
        if args.keep_stores is None:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="engram-locomo-")))
        else:
            folder = args.keep_stores / conv.sample_id
        runtime = stack.enter_context(
            bench_runtime(
                folder,
                llm,
                embedder=embedder,
                index_factory=factory,
                model=model,
                agent_model=agent_model,
            )
        )
        events, dia_of = turn_events(conv)
        stats = kept_ingest(folder, args) if args.keep_stores is not None else None
        if stats is None:
            stats = ingest(runtime, events, folder if args.keep_stores is not None else None)
            if args.keep_stores is not None:
                kept = {"limits": limits(args), "stats": stats}
                (folder / INGESTED).write_text(json.dumps(kept))
        store = runtime.store()
        store.index_events()  # a kept store's events may wait for vectors (a schema step)
        stats["memories"] = store.stats()["memories"]
        capped: list[tuple[int, Score]] = []
        uncapped: list[tuple[int, Score]] = []
        memories_only: list[tuple[int, Score]] = []
        turns_reached: list[int] = []
        questions = [q for q in conv.questions if q.category in SCORED_CATEGORIES and q.evidence][
            : args.max_questions
        ]
        for q in questions:
            first_k, by_k_hits = retrieved_dia_ids(store, q.text, k, dia_of)
            turns_reached.append(len(by_k_hits))
            capped.append((q.category, score_question(first_k, q.evidence)))
            uncapped.append((q.category, score_question(by_k_hits, q.evidence)))
            alone, _ = retrieved_dia_ids(store, q.text, k, dia_of, events=False)
            memories_only.append((q.category, score_question(alone, q.evidence)))
        if answerer is not None:
            answerer.run(store, conv, runtime.chat_agent())
    return {
        "capped": capped,
        "uncapped": uncapped,
        "memories_only": memories_only,
        "turns_reached": turns_reached,
        "stats": stats,
    }


def run(
    args: argparse.Namespace,
    conversations: Sequence[Conversation],
    factory: IndexFactory | None,
) -> dict[str, Any]:
    from app.runtime import Runtime

    shared = Runtime(bench_settings())  # one embedder and one model for every conversation
    embedder = shared.embedder()
    embedder.embed(["warm-up"])  # loading the model is not ingest time
    model = shared.model()
    agent_model = shared.agent_model()  # the app's pairing: Qwen 0.5B for the agents by default
    answerer = Answerer(args) if args.answer else None
    started = time.perf_counter()
    capped: list[tuple[int, Score]] = []
    uncapped: list[tuple[int, Score]] = []
    memories_only: list[tuple[int, Score]] = []
    reached: list[int] = []
    per_conv = []
    with shared:
        for conv in conversations:
            print(f"{conv.sample_id}: {len(conv.turns)} turns", file=sys.stderr)
            out = run_conversation(conv, embedder, model, args, factory, answerer, agent_model)
            capped += out["capped"]
            uncapped += out["uncapped"]
            memories_only += out["memories_only"]
            reached += out["turns_reached"]
            per_conv.append({"sample_id": conv.sample_id, **out["stats"]})
        info = model.info
    return {
        "mode": "agents",
        "k": args.k,
        **summarise(capped),
        "frac_at_k_memories_only": summarise(memories_only)["frac_at_k"],
        "uncapped": {
            k: v
            for k, v in summarise(uncapped).items()
            if k in ("frac_at_k", "hit_at_k", "all_at_k")
        },
        "turns_reached_mean": round(sum(reached) / max(len(reached), 1), 1),
        **(answerer.summary() if answerer is not None else {}),
        "model": info.name,
        "agent_model": agent_model.info.name,
        "backend": info.backend,
        "conversations": per_conv,
        "limits": {
            "batch": args.batch,
            "max_turns": args.max_turns,
            "max_questions": args.max_questions,
        },
        "seconds": round(time.perf_counter() - started, 1),
    }


def run_events(
    args: argparse.Namespace,
    conversations: Sequence[Conversation],
    factory: IndexFactory | None,
) -> dict[str, Any]:
    """`--mode events`: every turn stored as a captured event (as `import-chat` stores one) and
    searched as events alone, with no agent run: how findable what capture and imports store is
    before any memory is made. The same k turns as raw mode, by half of the file."""
    from app.runtime import Runtime
    from bench.locomo import half_of

    embedder = Runtime(bench_settings()).embedder()
    embedder.embed(["warm-up"])
    halves: dict[str, list[tuple[int, Score]]] = {}
    started = time.perf_counter()
    for n, conv in enumerate(conversations, start=args.conversations_from):
        with (
            tempfile.TemporaryDirectory(prefix="engram-locomo-events-") as tmp,
            bench_runtime(Path(tmp), {}, embedder=embedder, index_factory=factory) as runtime,
        ):
            store = runtime.store()
            events, dia_of = turn_events(conv)
            store.events.put_many(events)
            store.index_events()
            for q in conv.questions:
                if q.category not in SCORED_CATEGORIES or not q.evidence:
                    continue
                hits = store.search(q.text, [], k=args.k, events=True)
                ids = [dia_of[h.event.id] for h in hits if isinstance(h, EventHit)]
                halves.setdefault(half_of(n), []).append(
                    (q.category, score_question(ids, q.evidence))
                )
    scored = [s for group in halves.values() for s in group]
    return {
        "mode": "events",
        "k": args.k,
        **summarise(scored),
        "by_half": {name: summarise(group) for name, group in sorted(halves.items())},
        "seconds": round(time.perf_counter() - started, 1),
    }
