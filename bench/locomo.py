"""LoCoMo retrieval benchmark: does hybrid search find the dialogue turns a question is about?

`python -m bench.locomo --data locomo10.json --mode raw --k 10 --json`

Raw mode stores every dialogue turn as one episodic memory (provenance = its `dia_id`, time = its
session's date), one store per conversation, then searches every question of categories 1-4 and
scores the top k against the gold evidence ids. frac@k is the LoCoMo paper's "recall accuracy" (the
mean fraction of evidence turns retrieved); hit@k asks for any evidence turn, all@k for every one.
A turn's memory holds what a chat capture would have: the speaker, the words, BLIP's caption of a
shared photo, and the two turns before it (see `turn_memory`); the data set's image-search `query`
field is not used, since no capture would know it. search_p50_ms and search_p95_ms include
embedding the question. `by_half` scores the conversations 0-4 and 5-9 of the file apart (tune on
the first half, `--conversations-from 5` checks on the second).
`--mode agents` hands over to `bench.locomo_agents.run`; both modes load and score with
`bench.locomo_data`.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench.locomo_answer import Answerer, add_arguments
from bench.locomo_data import (
    SCORED_CATEGORIES,
    BadData,
    Conversation,
    IndexFactory,
    Score,
    Turn,
    load,
    prefix,
    score_question,
    summarise,
)
from bench.retrieval import percentile
from storage.protocols import Embedder, VectorIndex, embed_query
from storage.records import EpisodicMemory, MemoryType
from storage.search import SearchOptions
from storage.store import SearchHit

# ----- raw mode --------------------------------------------------------------------------------


def turn_memory(turns: Sequence[Turn], i: int, context: int = 2) -> EpisodicMemory:
    """Turn `i` as the episodic memory a chat capture would store: the speaker as actor, the
    words (and the caption of a photo they shared) as summary, and the `context` turns before
    it in the same session as details, so a reply like "Yes, last Sunday!" still carries what
    it answers. One turn per memory: provenance is this turn's id alone."""
    turn = turns[i]
    summary = f"{turn.text} [shared {turn.caption}]".strip() if turn.caption else turn.text
    before = [t for t in turns[max(0, i - context) : i] if t.session == turn.session]
    return EpisodicMemory(
        occurred_at=turn.at,
        created_at=turn.at,
        updated_at=turn.at,
        actor=turn.speaker,
        event_type="conversation",
        summary=summary,
        details="\n".join(f"{t.speaker}: {t.text}" for t in before),
        provenance=(turn.dia_id,),
        tree_path=("locomo", f"session {turn.session}"),
    )


#: Conversations are split in halves by their place in the file: tune on "0-4", check on "5-9".
HALF = 5


def half_of(index: int) -> str:
    """The half ("0-4", "5-9", …) the conversation at `index` in the file belongs to."""
    lo = index // HALF * HALF
    return f"{lo}-{lo + HALF - 1}"


def run_raw(
    conversations: Sequence[Conversation],
    embedder: Embedder,
    k: int,
    index_factory: IndexFactory | None = None,
    progress: Callable[[str], None] | None = None,
    answerer: Answerer | None = None,
    first_index: int = 0,
    options: SearchOptions | None = None,
    rescore: Rescorer | None = None,
) -> dict[str, Any]:
    """One fresh store per conversation; every scored question searched once, top k scored;
    with an `answerer`, the chat agent then answers them from that store. `first_index` is the
    first conversation's place in the file, so `by_half` names the halves of the file whatever
    subset runs. `options`: the search's knobs (None: the plain search's defaults). `rescore`:
    a second stage that re-ranks the search's first `rescore.depth` hits."""
    from bench._setup import bench_runtime

    scores: list[tuple[int, Score]] = []
    halves: dict[str, list[tuple[int, Score]]] = {}
    latencies: list[float] = []
    insert_s = 0.0
    skipped = 0
    for n, conv in enumerate(conversations, start=first_index):
        half = halves.setdefault(half_of(n), [])
        with (
            tempfile.TemporaryDirectory(prefix="engram-locomo-") as tmp,
            bench_runtime(Path(tmp), embedder=embedder, index_factory=index_factory) as runtime,
        ):
            store = runtime.store()
            t0 = time.perf_counter()
            store.add_many([turn_memory(conv.turns, i) for i in range(len(conv.turns))])
            insert_s += time.perf_counter() - t0
            for q in conv.questions:
                if q.category not in SCORED_CATEGORIES:
                    continue
                if not q.evidence:
                    skipped += 1
                    continue
                t0 = time.perf_counter()
                depth = max(k, rescore.depth) if rescore else k
                hits = store.search(q.text, [MemoryType.EPISODIC], depth, options=options)
                if rescore is not None:
                    hits = rescore(q.text, hits)[:k]
                latencies.append((time.perf_counter() - t0) * 1000)
                retrieved = [p for h in hits for p in h.record.provenance]
                scores.append((q.category, score_question(retrieved, q.evidence)))
                half.append(scores[-1])
            if answerer is not None:
                answerer.run(store, conv)
        if progress:
            progress(f"{conv.sample_id}: {len(conv.turns)} turns, {len(scores)} questions so far")
    turns = sum(len(c.turns) for c in conversations)
    return {
        "mode": "raw",
        "k": k,
        **summarise(scores),
        "by_half": {name: summarise(group) for name, group in halves.items() if group},
        "skipped_no_evidence": skipped,
        "conversations": len(conversations),
        "turns": turns,
        "embedder": embedder.name,
        "search": "deep" if options is not None and options.expand_weight > 0 else "plain",
        "vector_weight": (options or SearchOptions()).vector_weight,
        "rescore": rescore.describe() if rescore else None,
        "insert_per_s": round(turns / insert_s, 1) if insert_s else None,
        "search_p50_ms": round(statistics.median(latencies), 2) if latencies else None,
        "search_p95_ms": round(percentile(latencies, 95), 2) if latencies else None,
    }


class Rescorer:
    """A deeper second stage: the first `depth` hits re-ranked by their fused score plus `weight`
    times a stronger embedder's cosine to the query, min-max scaled over those hits (the scale
    the fusion gives each ranking). The stronger vectors of stored texts would be computed at
    insert time; here they come from the embedder (behind the vector cache, computed once)."""

    def __init__(self, embedder: Embedder, weight: float, depth: int) -> None:
        self.embedder, self.weight, self.depth = embedder, weight, depth

    def describe(self) -> dict[str, Any]:
        return {"embedder": self.embedder.name, "weight": self.weight, "depth": self.depth}

    def __call__(self, query: str, hits: Sequence[SearchHit]) -> list[SearchHit]:
        if not hits:
            return []
        import numpy as np

        docs = np.array(self.embedder.embed([h.record.index_text() for h in hits]))
        sims = docs @ np.array(embed_query(self.embedder, query))
        lo, hi = float(sims.min()), float(sims.max())
        scaled = (sims - lo) / (hi - lo) if hi > lo else np.ones_like(sims)
        scores = [h.score + self.weight * float(s) for h, s in zip(hits, scaled, strict=True)]
        order = sorted(range(len(hits)), key=lambda i: -scores[i])
        return [hits[i] for i in order]


# ----- command line ----------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.locomo", description=__doc__)
    p.add_argument("--data", type=Path, required=True, help="path to locomo10.json")
    p.add_argument(
        "--mode",
        choices=("raw", "agents", "events"),
        default="raw",
        help="raw: each turn a memory; agents: memories made by the agents beside the turns'"
        " events; events: the turns' events alone, no agents",
    )
    p.add_argument("--k", type=int, default=10, help="how many memories each search returns")
    p.add_argument("--conversations", type=int, default=None, help="only the first N")
    p.add_argument(
        "--conversations-from",
        type=int,
        default=0,
        metavar="N",
        help="skip the first N conversations (with --conversations: N of those after them)",
    )
    p.add_argument(
        "--index",
        choices=("chroma", "memory"),
        default="chroma",
        help="vector index: a real Chroma folder (default) or the in-memory one, for quick trials",
    )
    agents = p.add_argument_group("a quicker run (--max-turns, --max-questions: both modes)")
    agents.add_argument("--batch", type=int, default=8, help="events per agent batch")
    agents.add_argument(
        "--max-turns",
        type=int,
        help="ingest only the first N turns, and score only the questions they answer",
    )
    agents.add_argument("--max-questions", type=int, help="score only the first N questions")
    agents.add_argument(
        "--keep-stores",
        type=Path,
        metavar="DIR",
        help="agents mode: keep each conversation's store in DIR and reuse it on the next run"
        " (scores retrieval again without running the agents again)",
    )
    add_arguments(p)
    p.add_argument(
        "--deep",
        action="store_true",
        help="raw mode: search as the chat agent does (agents.retrieval.DEEP_SEARCH)",
    )
    emb = p.add_argument_group("a candidate embedder (raw mode)")
    emb.add_argument(
        "--embedder",
        type=Path,
        metavar="FOLDER",
        help="a sentence-transformers model folder to search with (default: the app's embedder)",
    )
    emb.add_argument(
        "--truncate-dim", type=int, metavar="N", help="Matryoshka: keep the first N dimensions"
    )
    emb.add_argument(
        "--vector-cache",
        type=Path,
        metavar="FILE",
        help="keep computed vectors in this SQLite file and reuse them (bench.vector_cache)",
    )
    emb.add_argument(
        "--vector-weight", type=float, help="the fusion's vector weight (default: SearchOptions')"
    )
    emb.add_argument(
        "--rescore",
        type=Path,
        metavar="FOLDER",
        help="a second stage: re-rank the first --rescore-depth hits with this model folder",
    )
    emb.add_argument("--rescore-weight", type=float, default=1.0)
    emb.add_argument("--rescore-depth", type=int, default=40)
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    return p.parse_args(argv)


def make_embedder(args: argparse.Namespace, folder: Path | None) -> Embedder:
    """The app's embedder (`folder` None), or the sentence-transformers model in `folder` cut
    to `--truncate-dim`, behind the vector cache when `--vector-cache` names one."""
    if folder is None:
        from app.runtime import Runtime
        from bench._setup import bench_settings

        return Runtime(bench_settings()).embedder()
    from storage.embedder_st import SentenceTransformerEmbedder

    if args.vector_cache is None:
        return SentenceTransformerEmbedder(folder, truncate_dim=args.truncate_dim)
    from bench.vector_cache import CachedEmbedder

    full = SentenceTransformerEmbedder(folder)  # the cache keeps whole vectors and cuts them
    return CachedEmbedder(full, args.vector_cache, dims=args.truncate_dim)


def prepare(args: argparse.Namespace) -> tuple[list[Conversation], IndexFactory | None]:
    """The conversations to run (raises `BadData`) and the vector index to run them on
    (None: a real Chroma folder per conversation)."""
    conversations = load(args.data)[args.conversations_from :]
    if args.conversations is not None:
        conversations = conversations[: args.conversations]
    conversations = [prefix(c, args.max_turns, args.max_questions) for c in conversations]
    if args.index == "chroma":
        return conversations, None
    from storage.fakes import MemoryVectorIndex

    def factory(_path: Path) -> VectorIndex:
        return MemoryVectorIndex()

    return conversations, factory


def main(argv: Sequence[str] | None = None) -> int:
    from bench._setup import emit, offline_environment

    args = parse_args(argv)
    offline_environment()
    if args.k <= 0 or args.batch <= 0 or args.conversations_from < 0:
        print("--k, --batch: at least 1; --conversations-from: at least 0", file=sys.stderr)
        return 2
    try:
        conversations, factory = prepare(args)
    except BadData as exc:
        print(exc, file=sys.stderr)
        return 2
    if args.mode in ("agents", "events"):
        from bench import locomo_agents

        run = locomo_agents.run if args.mode == "agents" else locomo_agents.run_events
        emit(run(args, conversations, factory), args.json)
        return 0

    def say(line: str) -> None:
        print(line, file=sys.stderr)

    embedder = make_embedder(args, args.embedder)  # one for every conversation's store
    embedder.embed(["warm-up"])  # loading the model is not insert time
    answerer = Answerer(args) if args.answer else None
    options = None
    if args.deep:
        from agents.retrieval import DEEP_SEARCH

        options = DEEP_SEARCH
    if args.vector_weight is not None:
        options = replace(options or SearchOptions(), vector_weight=args.vector_weight)
    rescore = None
    if args.rescore is not None:
        second = make_embedder(args, args.rescore)
        second.embed(["warm-up"])
        rescore = Rescorer(second, args.rescore_weight, args.rescore_depth)
    out = run_raw(
        conversations,
        embedder,
        args.k,
        factory,
        say,
        answerer,
        first_index=args.conversations_from,
        options=options,
        rescore=rescore,
    )
    out["index"] = args.index
    if answerer is not None:
        out.update(answerer.summary())
        answerer.close()
    emit(out, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
