"""LoCoMo answer quality: the chat agent answers each question from what it retrieves, and the
answer is scored against the gold one with LoCoMo's token F1, per category.

`python -m bench.locomo --data locomo10.json --mode raw --answer --questions 40 --json`

The scoring follows LoCoMo's evaluation (snap-research/locomo, task_eval/evaluation.py): the
text is lower-cased, commas, punctuation and the words "a", "an", "the" and "and" dropped, then
token F1; a multi-hop answer (category 1) is a comma-separated list, each gold part scored
against the best predicted part and the scores averaged; an open-domain gold answer (category 3)
counts up to its first ";". The chat agent's citation tags ("[M3]") are taken out of the answer
before it is scored: they are links for the reader, not words of the answer.
One deliberate difference: LoCoMo Porter-stems every token (NLTK), which this project does not
depend on, so an inflected word ("painted" for "painting") scores as a miss here and the
figures run a little below the official scorer's.

`--judge URL` also asks an OpenAI-compatible model whether each answer is right (LLM-as-judge
accuracy, the figure MIRIX and Mem0 report), with Mem0's generous rule: an answer that names the
same thing or the same date in other words is correct.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import string
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.locomo_data import CATEGORIES, SCORED_CATEGORIES, Conversation, Question

if TYPE_CHECKING:
    from agents.chat import ChatAgent
    from agents.llm.port import ChatModel
    from app.settings import Settings
    from storage.store import MemoryStore

_ARTICLES = re.compile(r"\b(a|an|the|and)\b")
#: The chat agent's citation tags ("[M3]"): links for the reader, not words of the answer.
_CITATION = re.compile(r"\s*\[M\d{1,3}\]")
_PUNCTUATION = str.maketrans("", "", string.punctuation)


# ----- scoring ---------------------------------------------------------------------------------


def normalise_answer(text: str) -> list[str]:
    """LoCoMo's (SQuAD's) normalisation, as tokens: lower case, no punctuation, no articles
    (nor "and"), single spaces."""
    text = text.replace(",", "").lower().translate(_PUNCTUATION)
    return _ARTICLES.sub(" ", text).split()


def answer_f1(prediction: str, gold: str) -> float:
    """Token F1 of one answer against one gold answer, in [0, 1]."""
    pred, ref = normalise_answer(prediction), normalise_answer(gold)
    if not pred or not ref:
        return float(pred == ref)
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def without_citations(answer: str) -> str:
    """The answer as scored: its citation tags ("[M3]") taken out."""
    return _CITATION.sub("", answer).strip()


def locomo_f1(prediction: str, gold: str, category: int) -> float:
    """F1 the way LoCoMo scores `category`: multi-hop gold answers are lists ("Paris, Rome"),
    each part matched with the best part of the prediction; an open-domain gold answer counts
    up to its first ";" (what follows is the annotators' reasoning)."""
    if category == 1:
        parts = [p for p in gold.split(",") if normalise_answer(p)] or [gold]
        guesses = prediction.split(",")
        return sum(max(answer_f1(g, p) for g in guesses) for p in parts) / len(parts)
    if category == 3:
        gold = gold.split(";")[0]
    return answer_f1(prediction, gold)


def spread(questions: Sequence[Question], n: int | None) -> list[Question]:
    """The scored questions (categories 1-4, with evidence), or `n` of them, taken a category
    at a time in turn (1, 2, 3, 4, 1, …; data order within each) and asked in that order, so a
    quick run, or one cut short, still covers every category."""
    scored = [q for q in questions if q.category in SCORED_CATEGORIES and q.evidence]
    if n is None or n >= len(scored):
        return scored
    queues = {c: [q for q in scored if q.category == c] for c in SCORED_CATEGORIES}
    chosen: list[Question] = []
    while len(chosen) < n:
        for cat in SCORED_CATEGORIES:
            if queues[cat] and len(chosen) < n:
                chosen.append(queues[cat].pop(0))
    return chosen


@dataclass(frozen=True)
class Answered:
    sample_id: str
    category: int
    question: str
    gold: str
    answer: str
    f1: float
    ttft_ms: float | None
    seconds: float
    judged: bool | None = None  # the judge's verdict, when there is one


def _pct(values: Sequence[float]) -> float | None:
    return round(100 * sum(values) / len(values), 2) if values else None


def _percentile(values: Sequence[float], pct: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))], 1)


def summarise_answers(answered: Sequence[Answered]) -> dict[str, Any]:
    """`answer_f1` over categories 1-4 together and per category (in percent, the mean of the
    per-question F1), time to first token, and the judge's accuracy when it judged."""
    scored = [a for a in answered if a.category in SCORED_CATEGORIES]
    by_cat: dict[str, Any] = {}
    for cat in sorted({a.category for a in scored}):
        group = [a for a in scored if a.category == cat]
        by_cat[str(cat)] = {
            "name": CATEGORIES.get(cat, "?"),
            "f1": _pct([a.f1 for a in group]),
            "questions": len(group),
        }
    ttft = [a.ttft_ms for a in scored if a.ttft_ms is not None]
    out: dict[str, Any] = {
        "answer_f1": _pct([a.f1 for a in scored]),
        "answer_f1_by_category": by_cat,
        "answer_questions": len(scored),
        "ttft_p50_ms": _percentile(ttft, 50),
        "ttft_p95_ms": _percentile(ttft, 95),
        "answer_s_p50": round(statistics.median(a.seconds for a in scored), 2) if scored else None,
    }
    judged = [a for a in scored if a.judged is not None]
    if judged:
        out["judge_accuracy"] = _pct([float(bool(a.judged)) for a in judged])
        out["judge_accuracy_by_category"] = {
            str(c): _pct([float(bool(a.judged)) for a in judged if a.category == c])
            for c in sorted({a.category for a in judged})
        }
    return out


# ----- the judge -------------------------------------------------------------------------------

JUDGE_PROMPT = """You grade answers to questions about a long conversation.
Question: {question}
Gold answer: {gold}
Generated answer: {answer}

Be generous: the generated answer is CORRECT if it refers to the same thing, person, place or
time as the gold answer, even in other words or at another length ("May 7th" for "7 May 2023"
is correct). It is WRONG if it names something else, misses the point or says it does not know.
Reply with JSON: {{"label": "CORRECT"}} or {{"label": "WRONG"}}."""

_JUDGE_SCHEMA = {
    "type": "object",
    "properties": {"label": {"type": "string", "enum": ["CORRECT", "WRONG"]}},
    "required": ["label"],
    "additionalProperties": False,
}


class Judge:
    """An OpenAI-compatible model at `url` that labels each answer CORRECT or WRONG."""

    def __init__(self, url: str, model: str = "default", timeout_s: float = 120.0) -> None:
        from agents.llm.openai_compat import OpenAICompatibleModel

        self.model: ChatModel = OpenAICompatibleModel(url, model, timeout_s=timeout_s)

    def __call__(self, question: str, gold: str, answer: str) -> bool:
        from agents.llm.port import Request, complete, messages

        prompt = JUDGE_PROMPT.format(question=question, gold=gold, answer=answer or "(none)")
        request = Request(messages("You are a strict, fair grader.", prompt), _JUDGE_SCHEMA, 24)
        reply = complete(self.model, request, timeout_s=120)
        try:
            label = str(json.loads(reply).get("label", ""))
        except (json.JSONDecodeError, AttributeError):
            label = reply
        return "CORRECT" in label.upper() and "WRONG" not in label.upper()


# ----- answering -------------------------------------------------------------------------------


def chat_agent(settings: Settings, store: MemoryStore, model: ChatModel) -> ChatAgent:
    """The app's own chat agent (the runtime's wiring and settings) over `store`, with a model
    shared by every conversation, turns not recorded."""
    from app.runtime import Runtime

    runtime = Runtime(settings, model=model, store_opener=lambda _s: store, record_turns=False)
    return runtime.chat_agent()  # not closed: the store and the model belong to the caller


def answer_all(
    agent: ChatAgent,
    conv: Conversation,
    questions: Sequence[Question],
    judge: Judge | None = None,
    log: Path | None = None,
) -> list[Answered]:
    """Each question asked afresh (no conversation history), scored; with `log`, one JSON line
    per answer is appended there (for reading the answers, not only the figure)."""
    out = []
    for q in questions:
        result = agent.ask(q.text).result
        item = Answered(
            conv.sample_id,
            q.category,
            q.text,
            q.answer,
            result.answer,
            locomo_f1(without_citations(result.answer), q.answer, q.category),
            result.ttft_ms,
            result.seconds,
            judge(q.text, q.answer, result.answer) if judge else None,
        )
        out.append(item)
        if log is not None:
            with log.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(asdict(item)) + "\n")
    return out


class Answerer:
    """What `--answer` adds to a run: one chat model for every conversation, the questions each
    conversation is asked, and the answers so far."""

    def __init__(self, args: argparse.Namespace) -> None:
        from bench._setup import bench_settings

        llm: dict[str, Any] = {"answer_tokens": args.answer_tokens}
        if args.chat_model:
            llm["model"] = args.chat_model
        if args.threads:
            llm["threads"] = args.threads
        if args.context_tokens:
            llm["chat_context_tokens"] = args.context_tokens
        self.settings = bench_settings(**llm)
        self.questions: int | None = args.questions
        self.judge = Judge(args.judge, args.judge_model) if args.judge else None
        self.log: Path | None = args.answers_log
        self._model: ChatModel | None = None
        self.answered: list[Answered] = []

    def model(self) -> ChatModel:
        if self._model is None:
            from app import bootstrap

            self._model = bootstrap.make_chat_model(self.settings)
        return self._model

    def run(self, store: MemoryStore, conv: Conversation, agent: ChatAgent | None = None) -> None:
        """Answer `conv`'s questions from `store`, by `agent` (agents mode passes its runtime's,
        on the model the memory agents used) or by the chat agent on this answerer's model."""
        agent = agent or chat_agent(self.settings, store, self.model())
        self.answered += answer_all(
            agent, conv, spread(conv.questions, self.questions), self.judge, self.log
        )

    def summary(self) -> dict[str, Any]:
        out = summarise_answers(self.answered)
        if self._model is not None:
            out["chat_model"] = self._model.info.name
            out["chat_context_tokens"] = self.settings.llm.chat_context_tokens
        return out

    def close(self) -> None:
        if self._model is not None:
            self._model.close()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("answers (--answer)")
    group.add_argument(
        "--answer",
        action="store_true",
        help="also have the chat agent answer each question, scored by LoCoMo's token F1",
    )
    group.add_argument(
        "--questions", type=int, help="answer only N questions per conversation (all categories)"
    )
    group.add_argument("--judge", help="URL of an OpenAI-compatible judge model (LLM-as-judge)")
    group.add_argument("--judge-model", default="default", help="the judge's model name")
    group.add_argument("--chat-model", help="built-in chat model (smollm2, qwen-0.5b, qwen-1.5b)")
    group.add_argument("--threads", type=int, help="CPU threads for the chat model")
    group.add_argument("--context-tokens", type=int, help="tokens of memories in the prompt")
    group.add_argument(
        "--answer-tokens", type=int, default=48, help="longest answer (LoCoMo's are short)"
    )
    group.add_argument("--answers-log", type=Path, help="append every answer here as JSON lines")
