"""How well `agents.chat.support` tells questions memory can answer from ones it cannot: the
measurement behind `ChatConfig.min_support`.

`python -m bench.chat_support --data locomo10.json --conversation 0 --json`

One conversation's turns are stored as raw mode stores them (bench.locomo.turn_memory); the chat
agent's own retrieval then runs for its questions of categories 1-4 (memory holds the answer:
they should be answered) and for the next conversation's questions, about other people's lives
(memory holds nothing on them: they should get "nothing found"). Adversarial questions
(category 5: about this conversation, but what they ask was never said) are reported too. For
each threshold: the share of answerable questions the model still gets, and the share of the
others stopped. No model is called (retrieval and scoring only).

Measured with MiniLM, Chroma and the 256-token default budget (answerable kept / foreign stopped):
conversation 0, where the threshold was chosen: 0.25 → 100 % / 62 %, 0.3 → 98.0 % / 80.2 %,
0.34 → 96.1 % / 92.6 %; conversation 5, held out: 0.3 → 99.2 % / 75.3 %. 0.3 it is. No threshold
stops adversarial questions (category 5): they are about this conversation's people and things,
so only the model can tell that what they ask was never said.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.locomo_data import SCORED_CATEGORIES, Conversation, Question, load

THRESHOLDS = (0.1, 0.15, 0.2, 0.25, 0.3, 0.34, 0.4, 0.5)


def supports(conv: Conversation, asked: Sequence[Question], data_dir: Path) -> list[float]:
    """`support` of each question in `asked` against a raw-mode store of `conv`."""
    from agents.chat import ChatAgent, ChatConfig, support
    from agents.llm.fakes import ScriptedChatModel
    from bench._setup import bench_runtime
    from bench.locomo import turn_memory

    with bench_runtime(data_dir) as runtime:
        store = runtime.store()
        store.add_many([turn_memory(conv.turns, i) for i in range(len(conv.turns))])
        llm = runtime.settings.llm
        config = ChatConfig(context_tokens=llm.chat_context_tokens, record_turns=False)
        # retrieval only: the model is never asked, it only lends its context size
        agent = ChatAgent(store, ScriptedChatModel(n_ctx=llm.n_ctx), config)
        out = []
        for q in asked:
            context = agent.context_for(q.text, ())
            out.append(support(context.topic, context))
        return out


def share(values: Sequence[float], keep: bool, threshold: float) -> float | None:
    """Percent of `values` at or above `threshold` (`keep`) or below it."""
    if not values:
        return None
    hit = [v for v in values if (v >= threshold) == keep]
    return round(100 * len(hit) / len(values), 1)


def run(conversations: Sequence[Conversation], index: int) -> dict[str, Any]:
    conv = conversations[index]
    other = conversations[(index + 1) % len(conversations)]
    own = [q for q in conv.questions if q.category in SCORED_CATEGORIES]
    adversarial = [q for q in conv.questions if q.category == 5]
    foreign = [q for q in other.questions if q.category in SCORED_CATEGORIES]
    with tempfile.TemporaryDirectory(prefix="engram-support-") as tmp:
        values = supports(conv, [*own, *adversarial, *foreign], Path(tmp))
    a, b = len(own), len(own) + len(adversarial)
    answerable, never_said, elsewhere = values[:a], values[a:b], values[b:]
    return {
        "conversation": conv.sample_id,
        "foreign_conversation": other.sample_id,
        "questions": {"answerable": a, "adversarial": b - a, "foreign": len(elsewhere)},
        "thresholds": {
            str(t): {
                "answered_answerable": share(answerable, True, t),
                "stopped_foreign": share(elsewhere, False, t),
                "stopped_adversarial": share(never_said, False, t),
            }
            for t in THRESHOLDS
        },
    }


def main(argv: Sequence[str] | None = None) -> int:
    from bench._setup import emit, offline_environment

    p = argparse.ArgumentParser(prog="python -m bench.chat_support", description=__doc__)
    p.add_argument("--data", type=Path, required=True, help="path to locomo10.json")
    p.add_argument("--conversation", type=int, default=0, help="which one (0-based)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    offline_environment()
    conversations = load(args.data)
    if not 0 <= args.conversation < len(conversations) or len(conversations) < 2:
        print("--conversation must name one of at least two conversations", file=sys.stderr)
        return 2
    emit(run(conversations, args.conversation), args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
