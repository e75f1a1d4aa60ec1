"""LoCoMo data and scoring, shared by both modes of the benchmark: loading and cleaning the
JSON (sessions, turns, questions, evidence ids), and scoring retrieved ids against the evidence.
Its own module so `bench.locomo` (raw mode, the command line) and `bench.locomo_agents` both
import it and neither imports the other at load time."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from storage.dates import UnknownDateFormat, parse_when
from storage.protocols import VectorIndex

CATEGORIES = {1: "multi-hop", 2: "temporal", 3: "open-domain", 4: "single-hop", 5: "adversarial"}
#: Adversarial questions (5) have no answer in the conversation, so retrieval is not scored on them.
SCORED_CATEGORIES = (1, 2, 3, 4)

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


def prefix(conv: Conversation, max_turns: int | None, max_questions: int | None) -> Conversation:
    """The first `max_turns` turns and the scored questions they answer (the first
    `max_questions` of them): the quicker run, the same for raw and agents mode so their
    figures compare."""
    if max_turns is None and max_questions is None:
        return conv
    kept = conv.turns[:max_turns]
    known = {t.dia_id for t in kept}
    questions = [
        q
        for q in conv.questions
        if q.category in SCORED_CATEGORIES and q.evidence and set(q.evidence) <= known
    ]
    return Conversation(conv.sample_id, conv.speakers, kept, tuple(questions[:max_questions]))


# ----- parsing ---------------------------------------------------------------------------------


def parse_session_date(text: str) -> datetime:
    """A session's date as an aware datetime, in any format `storage.dates` reads: LoCoMo's
    '1:56 pm on 8 May, 2023', and the '29.12.2023, 22:42:04' of other real chat exports (no
    zone is given; UTC is a choice)."""
    try:
        return parse_when(text, tz=UTC)
    except UnknownDateFormat as exc:
        raise BadData(f"unrecognised session date {text!r}: {exc}") from exc


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


IndexFactory = Callable[[Path], VectorIndex]
