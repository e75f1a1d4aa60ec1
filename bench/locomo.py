"""LoCoMo retrieval benchmark: does hybrid search find the dialogue turns a question is about?

`python -m bench.locomo --data locomo10.json --mode raw --k 10 --json`

Raw mode stores every dialogue turn as one episodic memory (provenance = its `dia_id`, time = its
session's date), one store per conversation, then searches every question of categories 1-4 and
scores the top k against the gold evidence ids. frac@k is the LoCoMo paper's "recall accuracy" (the
mean fraction of evidence turns retrieved); hit@k asks for any evidence turn, all@k for every one.
A turn's memory holds what a chat capture would have: the speaker, the words, BLIP's caption of a
shared photo, and the two turns before it (see `turn_memory`); the data set's image-search `query`
field is not used, since no capture would know it. search_p50_ms includes embedding the question.
`--mode agents` hands over to `bench.locomo_agents.run`, which reuses the loading, cleaning and
scoring functions here.
"""

from __future__ import annotations

import argparse
import calendar
import json
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.retrieval import percentile
from storage.protocols import Embedder, VectorIndex
from storage.records import EpisodicMemory, MemoryType

CATEGORIES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop", 5: "adversarial"}
#: Adversarial questions (5) have no answer in the conversation, so retrieval is not scored on them.
SCORED_CATEGORIES = (1, 2, 3, 4)

_DATE = re.compile(
    r"^\s*(\d{1,2}):(\d{2})\s*([ap]m)\s+on\s+(\d{1,2})\s+([A-Za-z]+),?\s+(\d{4})\s*$", re.I
)
_MONTHS = {m.lower(): i for i, m in enumerate(calendar.month_name) if m}
_EVIDENCE = re.compile(r"D\s*:?\s*(\d+)\s*:\s*(\d+)", re.I)


class BadData(ValueError):
    """The data file is not LoCoMo as this benchmark knows it."""


@dataclass(frozen=True)
class Turn:
    dia_id: str
    session: int
    speaker: str
    text: str
    at: datetime
    caption: str = ""  # BLIP's caption of a photo the speaker shared


@dataclass(frozen=True)
class Question:
    text: str
    category: int
    evidence: tuple[str, ...]
    answer: str = ""


@dataclass(frozen=True)
class Conversation:
    sample_id: str
    speakers: tuple[str, str]
    turns: tuple[Turn, ...]
    questions: tuple[Question, ...]


@dataclass(frozen=True)
class Score:
    frac: float  # share of the evidence turns found
    hit: bool  # at least one found
    all: bool  # every one found


# ----- parsing ---------------------------------------------------------------------------------


def parse_session_date(text: str) -> datetime:
    """'1:56 pm on 8 May, 2023' as an aware UTC datetime (LoCoMo gives no zone; UTC is a choice)."""
    m = _DATE.match(text)
    if not m:
        raise BadData(f"unrecognised LoCoMo session date {text!r}")
    hour, minute, half, day, month_name, year = m.groups()
    month = _MONTHS.get(month_name.lower())
    if month is None:
        raise BadData(f"unknown month {month_name!r} in {text!r}")
    h = int(hour) % 12 + (12 if half.lower() == "pm" else 0)
    return datetime(int(year), month, int(day), h, int(minute), tzinfo=UTC)


def clean_evidence(raw: Sequence[str]) -> tuple[str, ...]:
    """Canonical dialogue ids from LoCoMo's evidence strings, which hold several ids in one string
    ('D8:6; D9:17', 'D9:1 D4:4'), zero-padded numbers ('D30:05'), a stray colon ('D:11:26') or
    nothing usable ('D'). Order kept, duplicates dropped."""
    ids: list[str] = []
    for item in raw:
        for session, turn in _EVIDENCE.findall(str(item)):
            ids.append(f"D{int(session)}:{int(turn)}")
    return tuple(dict.fromkeys(ids))


def load(path: Path) -> list[Conversation]:
    """The conversations of a LoCoMo JSON file. Evidence ids naming no turn of their conversation
    (a few annotation slips) are dropped so they cannot count as misses no retriever could avoid."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise BadData(f"cannot read LoCoMo data from {path}: {exc}") from exc
    if not isinstance(data, list):
        raise BadData(f"{path}: expected a JSON list of conversations")
    return [_conversation(item) for item in data]


def _conversation(item: dict[str, Any]) -> Conversation:
    conv = item["conversation"]
    turns: list[Turn] = []
    session = 1
    while f"session_{session}" in conv:
        at = parse_session_date(conv[f"session_{session}_date_time"])
        for t in conv[f"session_{session}"]:
            turns.append(
                Turn(
                    dia_id=clean_evidence([t["dia_id"]])[0],
                    session=session,
                    speaker=str(t["speaker"]),
                    text=str(t.get("text", "")),
                    at=at,
                    caption=str(t.get("blip_caption", "") or ""),
                )
            )
        session += 1
    known = {t.dia_id for t in turns}
    questions = tuple(
        Question(
            text=str(q["question"]),
            category=int(q["category"]),
            evidence=tuple(e for e in clean_evidence(q.get("evidence", [])) if e in known),
            answer=str(q.get("answer", q.get("adversarial_answer", ""))),
        )
        for q in item.get("qa", [])
    )
    return Conversation(
        sample_id=str(item.get("sample_id", "")),
        speakers=(str(conv["speaker_a"]), str(conv["speaker_b"])),
        turns=tuple(turns),
        questions=questions,
    )


# ----- scoring ---------------------------------------------------------------------------------


def score_question(retrieved: Sequence[str], evidence: Sequence[str]) -> Score:
    """Score the retrieved dialogue ids (already cut to k) against the gold evidence ids."""
    gold = set(evidence)
    if not gold:
        raise ValueError("a question without evidence cannot be scored")
    found = gold & set(retrieved)
    return Score(len(found) / len(gold), bool(found), found == gold)


def summarise(scores: Sequence[tuple[int, Score]]) -> dict[str, Any]:
    """frac/hit/all at k, in percent, overall and per category."""

    def pct(group: Sequence[Score]) -> dict[str, float]:
        n = len(group) or 1
        return {
            "frac_at_k": round(100 * sum(s.frac for s in group) / n, 2),
            "hit_at_k": round(100 * sum(s.hit for s in group) / n, 2),
            "all_at_k": round(100 * sum(s.all for s in group) / n, 2),
        }

    out: dict[str, Any] = {**pct([s for _, s in scores]), "questions": len(scores)}
    by_cat: dict[str, Any] = {}
    for cat in sorted({c for c, _ in scores}):
        group = [s for c, s in scores if c == cat]
        by_cat[str(cat)] = {"name": CATEGORIES.get(cat, "?"), **pct(group), "questions": len(group)}
    out["by_category"] = by_cat
    return out


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


IndexFactory = Callable[[Path], VectorIndex]


def run_raw(
    conversations: Sequence[Conversation],
    embedder: Embedder,
    k: int,
    index_factory: IndexFactory | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """One fresh store per conversation; every scored question searched once, top k scored."""
    from bench._setup import bench_runtime

    scores: list[tuple[int, Score]] = []
    latencies: list[float] = []
    insert_s = 0.0
    skipped = 0
    for conv in conversations:
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
                hits = store.search(q.text, [MemoryType.EPISODIC], k)
                latencies.append((time.perf_counter() - t0) * 1000)
                retrieved = [p for h in hits for p in h.record.provenance]
                scores.append((q.category, score_question(retrieved, q.evidence)))
        if progress:
            progress(f"{conv.sample_id}: {len(conv.turns)} turns, {len(scores)} questions so far")
    turns = sum(len(c.turns) for c in conversations)
    return {
        "mode": "raw",
        "k": k,
        **summarise(scores),
        "skipped_no_evidence": skipped,
        "conversations": len(conversations),
        "turns": turns,
        "embedder": embedder.name,
        "insert_per_s": round(turns / insert_s, 1) if insert_s else None,
        "search_p50_ms": round(statistics.median(latencies), 2) if latencies else None,
        "search_p95_ms": round(percentile(latencies, 95), 2) if latencies else None,
    }


# ----- command line ----------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.locomo", description=__doc__)
    p.add_argument("--data", type=Path, required=True, help="path to locomo10.json")
    p.add_argument("--mode", choices=("raw", "agents"), default="raw")
    p.add_argument("--k", type=int, default=10, help="how many memories each search returns")
    p.add_argument("--conversations", type=int, default=None, help="only the first N")
    p.add_argument(
        "--index",
        choices=("chroma", "memory"),
        default="chroma",
        help="vector index: a real Chroma folder (default) or the in-memory one, for quick trials",
    )
    agents = p.add_argument_group("agents mode (a quicker run)")
    agents.add_argument("--batch", type=int, default=8, help="events per agent batch")
    agents.add_argument(
        "--max-turns",
        type=int,
        help="ingest only the first N turns, and score only the questions they answer",
    )
    agents.add_argument("--max-questions", type=int, help="score only the first N questions")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    return p.parse_args(argv)


def prepare(args: argparse.Namespace) -> tuple[list[Conversation], IndexFactory | None]:
    """The conversations to run (raises `BadData`) and the vector index to run them on
    (None: a real Chroma folder per conversation)."""
    conversations = load(args.data)
    if args.conversations is not None:
        conversations = conversations[: args.conversations]
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
    if args.k <= 0 or args.batch <= 0:
        print("--k and --batch must be at least 1", file=sys.stderr)
        return 2
    try:
        conversations, factory = prepare(args)
    except BadData as exc:
        print(exc, file=sys.stderr)
        return 2
    if args.mode == "agents":
        from bench import locomo_agents

        emit(locomo_agents.run(args, conversations, factory), args.json)
        return 0
    from app.runtime import Runtime
    from bench._setup import bench_settings

    def say(line: str) -> None:
        print(line, file=sys.stderr)

    embedder = Runtime(bench_settings()).embedder()  # one for every conversation's store
    embedder.embed(["warm-up"])  # loading the model is not insert time
    out = run_raw(conversations, embedder, args.k, factory, say)
    out["index"] = args.index
    emit(out, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
