"""The chat agent: answers a question from memory, streaming, and says which memories it used.

Per question: derive a search topic from the question and the last turns, retrieve across the
memory types with per-type caps, build a prompt of tagged sections within a token budget,
stream the answer, then resolve the tags it cites ("[M2]") to memory ids. Each finished (or
cancelled) turn is put on the event queue, so the memory agents learn from conversations too.

Whether memory holds anything on the question is decided here, from what retrieval found, not
left to the model: a small model shown unrelated memories guesses from them. When no memory
shares enough of the question's words (`support` below `ChatConfig.min_support`) the answer is
`NOTHING_FOUND`, without a model call. Answers are also freed of the "The answer is:" openers
small models put before the answer.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from agents import prompts
from agents.llm.port import (
    Cancelled,
    ChatModel,
    Message,
    ModelError,
    Request,
    approx_tokens,
    complete,
    complete_json,
    scrubbed,
)
from agents.retrieval import (
    DEFAULT_CAPS,
    Context,
    Retrieved,
    build_context,
    core_blocks,
    derive_topic,
    timed_retrieve,
)
from storage.conversations import turn_text
from storage.errors import InvalidText
from storage.fusion import Kind
from storage.records import Event, MemoryType, check_text
from storage.store import MemoryStore
from storage.text import clip, evidence_words, stems

_TAG = re.compile(r"\[?\bM(\d{1,3})\b\]?")
#: What the user reads when no memory bears on the question.
NOTHING_FOUND = "I don't have anything about that in my memories."
#: Openers small models put before the answer ("The answer is: …", "Answer: …"), dropped.
_OPENER = re.compile(
    r"^\s*(?:the\s+)?(?:short\s+|final\s+)?answer\b"
    r"(?:\s+to\s+(?:this|the|your)\s+question)?(?:\s+is\b\s*:?|\s*:)\s*",
    re.I,
)
_OPENERS = (
    "the answer is:",
    "the short answer is:",
    "the final answer is:",
    "the answer to this question is:",
    "the answer to the question is:",
    "the answer to your question is:",
    "answer:",
)


@dataclass(frozen=True)
class ChatConfig:
    #: Tokens of memory context in the prompt. Prompt evaluation dominates time-to-first-token
    #: on a CPU (about 300 tokens/s for the embedded model), so the default is small.
    context_tokens: int = 256
    answer_tokens: int = 256
    history_turns: int = 4
    caps: Mapping[MemoryType, int] = field(default_factory=lambda: dict(DEFAULT_CAPS))
    #: Ask the model for the search topic (better with a big model; costs a model call).
    topic_from_model: bool = False
    temperature: float = 0.0
    record_turns: bool = True
    #: Least `support` (share of the question's content stems that the best-matching memory
    #: shows) for the model to be asked; below it the answer is NOTHING_FOUND. Chosen with
    #: `python -m bench.chat_support` on LoCoMo (see its docstring for the figures).
    min_support: float = 0.3


@dataclass(frozen=True)
class Citation:
    tag: str
    memory_id: str  # a memory's id, or a raw event's
    memory_type: Kind  # "event" for an event
    headline: str
    explicit: bool  # the answer names the tag; else inferred from shared words


@dataclass(frozen=True)
class ChatResult:
    question: str
    answer: str
    citations: tuple[Citation, ...]
    context: Context
    ttft_ms: float | None
    tokens: int
    seconds: float
    cancelled: bool
    event_id: str | None


def find_citations(
    answer: str, items: Sequence[Retrieved], question: str = ""
) -> tuple[Citation, ...]:
    """Memories the answer cites by tag; when it names none, those it visibly draws on: two or
    more of the memory's words in the answer that the question did not already contain (a
    number or date counts double: "Friday at 3pm" is evidence, "dentist" repeated is not)."""
    by_tag = {r.tag: r for r in items}
    explicit = [by_tag[f"M{n}"] for n in dict.fromkeys(_TAG.findall(answer)) if f"M{n}" in by_tag]
    if explicit:
        return tuple(_citation(r, True) for r in explicit)
    said = evidence_words(answer) - evidence_words(question)
    inferred = []
    for item in items:
        shared = evidence_words(item.text or item.record.index_text()) & said
        weight = len(shared) + sum(any(ch.isdigit() for ch in w) for w in shared)
        if weight >= 2:
            inferred.append(item)
    return tuple(_citation(r, False) for r in inferred)


def support(topic: str, context: Context) -> float:
    """How much of the question memory speaks to: the largest share of the topic's content
    stems that one shown memory (or core block) contains. 1.0 for a topic with no content word
    ("hi", "thanks"): nothing to look up, so nothing to refuse."""
    wanted = stems(topic)
    if not wanted:
        return 1.0
    texts = [item.text or item.record.index_text() for item in context.items]
    texts += [block.value for block in context.core]
    return max((len(wanted & stems(t)) / len(wanted) for t in texts), default=0.0)


def drop_opener(text: str) -> str:
    """`text` without a leading "The answer is:" / "Answer:", its first letter capitalised."""
    rest = _OPENER.sub("", text, count=1)
    if rest is text or not rest:
        return text
    return rest[0].upper() + rest[1:]


def _without_opener(chunks: Iterator[str]) -> Iterator[str]:
    """The stream with `drop_opener` applied. Only while the text so far could still be an
    opener is it held back ("The" might start "The answer is:"), so an answer that starts any
    other way streams at once and time to first token is not spent waiting."""
    head: str | None = ""
    for chunk in chunks:
        if head is None:
            yield chunk
            continue
        head += chunk
        opener = _OPENER.match(head)
        said = re.sub(r"\s+", " ", head.lstrip().lower())
        if (opener and opener.end() == len(head)) or (
            not opener and any(o.startswith(said) for o in _OPENERS)
        ):
            continue  # still maybe an opener: wait for the next chunk
        yield drop_opener(head.lstrip())
        head = None
    if head:
        yield drop_opener(head.lstrip())


def _citation(item: Retrieved, explicit: bool) -> Citation:
    record = item.record
    return Citation(item.tag, record.id, record.kind, record.headline(), explicit)


class ChatReply:
    """A streaming answer: iterate it for text chunks; afterwards `result` holds the answer,
    the citations and timings. `cancel()` stops it between tokens."""

    def __init__(
        self,
        agent: ChatAgent,
        question: str,
        history: Sequence[Message],
        conversation_id: str | None = None,
    ) -> None:
        self._agent = agent
        self._question = question
        self._history = tuple(history)
        self._conversation_id = conversation_id
        self._cancel = threading.Event()
        self._started = time.perf_counter()
        self._result: ChatResult | None = None
        self._iter: Iterator[str] = self._run()

    def __iter__(self) -> Iterator[str]:
        return self._iter

    def __next__(self) -> str:
        return next(self._iter)

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def result(self) -> ChatResult:
        """The finished turn; consumes whatever is left of the stream first."""
        for _ in self._iter:
            pass
        assert self._result is not None
        return self._result

    def _run(self) -> Iterator[str]:
        agent = self._agent
        context = agent.context_for(self._question, self._history)
        parts: list[str] = []
        ttft: float | None = None
        cancelled = False
        if support(context.topic, context) < agent.config.min_support:
            stream: Iterator[str] = iter([NOTHING_FOUND])
        else:
            request = agent.request(self._question, self._history, context)
            stream = _without_opener(agent.model.stream(request, self._cancel))
        try:
            for chunk in stream:
                if ttft is None:
                    ttft = (time.perf_counter() - self._started) * 1000
                parts.append(chunk)
                yield chunk
        except Cancelled:
            cancelled = True
        finally:
            answer = "".join(parts).strip()
            cancelled = cancelled or self._cancel.is_set()
            self._result = agent.finish(
                self._question,
                answer,
                context,
                ttft,
                len(parts),
                self._started,
                cancelled,
                self._conversation_id,
            )


class ChatAgent:
    def __init__(
        self, store: MemoryStore, model: ChatModel, config: ChatConfig | None = None
    ) -> None:
        self.store = store
        self.model = model
        self.config = config or ChatConfig()

    def ask(
        self,
        question: str,
        history: Sequence[Message] = (),
        conversation_id: str | None = None,
    ) -> ChatReply:
        """Start answering `question` (after `history`, oldest first). Nothing runs until the
        reply is iterated; the model's worker does the generation. The recorded turn belongs
        to `conversation_id` (storage/conversations.py), if given."""
        question = question.strip()
        check_text(question, field="the question")
        return ChatReply(self, question, history, conversation_id)

    def budget(self, question: str) -> int:
        n_ctx = self.model.info.n_ctx
        room = n_ctx - self.config.answer_tokens - approx_tokens(question) - 200
        return max(min(self.config.context_tokens, room), 32)

    def topic(self, question: str, history: Sequence[Message]) -> str:
        if not self.config.topic_from_model or not history:
            return derive_topic(question, history)
        turns = "\n".join(f"{m.role}: {clip(m.content, 300)}" for m in history[-4:])
        request = Request(
            messages=(
                Message("system", prompts.load("topic")),
                Message("user", f"{turns}\nuser: {question}"),
            ),
            schema={
                "type": "object",
                "properties": {"topic": {"type": "string", "minLength": 1, "maxLength": 100}},
                "required": ["topic"],
                "additionalProperties": False,
            },
            max_tokens=48,
        )
        try:
            shown = scrubbed(request, self.store.secrets().scrub)
            data = complete_json(self.model, shown, timeout_s=30)
            topic = str(data.get("topic", "")).strip() if isinstance(data, dict) else ""
        except Exception:  # the heuristic topic is a fine fallback
            topic = ""
        return topic or derive_topic(question, history)

    def context_for(self, question: str, history: Sequence[Message]) -> Context:
        topic = self.topic(question, history)
        return timed_retrieve(self.store, topic, self.config.caps, self.budget(question))

    def request(self, question: str, history: Sequence[Message], context: Context) -> Request:
        """The fixed instructions and the core memory as the system prompt (the same from
        question to question, so llama.cpp reuses their evaluation from the previous turn, with
        or without history after it), the last turns, then one user message with the tagged
        memory sections and the question (small models heed the user turn most)."""
        turns = [
            Message(m.role, clip(m.content, 400))
            for m in history[-self.config.history_turns :]
            if m.role in ("user", "assistant")
        ]
        user = f"{context.text}\n\nQuestion: {question}"
        request = Request(
            messages=(self._system(context), *turns, Message("user", user)),
            max_tokens=self.config.answer_tokens,
            temperature=self.config.temperature,
        )
        # No vault secret reaches the model, whichever memory, turn or question carries it.
        secrets = self.store.secrets().plus(r.record for r in context.items)
        return scrubbed(request, secrets.scrub)

    @staticmethod
    def _system(context: Context) -> Message:
        instructions = prompts.load("chat")
        core = context.core_text
        return Message("system", f"{instructions}\n\n{core}" if core else instructions)

    def warm(self) -> bool:
        """Evaluate the prompt's fixed prefix (system prompt and core memory) now, for a model
        that keeps the last prompt's evaluation (`ModelInfo.caches_prefix`), so the first
        question pays only for its own part (on a CPU, seconds). Background work: a question
        asked meanwhile goes first. True when a warm-up ran."""
        if not self.model.info.caches_prefix:
            return False
        secrets = self.store.secrets()
        context = build_context(
            "", [], core_blocks(self.store), self.budget(""), 0.0, secrets.scrub
        )
        request = Request(
            messages=(self._system(context), Message("user", "Hello")),
            max_tokens=1,
            temperature=self.config.temperature,
            background=True,
        )
        try:
            complete(self.model, scrubbed(request, secrets.scrub), timeout_s=600)
        except ModelError:  # preempted by a question, or a failure the question will report
            return False
        return True

    def finish(
        self,
        question: str,
        answer: str,
        context: Context,
        ttft_ms: float | None,
        tokens: int,
        started: float,
        cancelled: bool,
        conversation_id: str | None = None,
    ) -> ChatResult:
        citations = find_citations(answer, context.items, question)
        event_id = None
        if self.config.record_turns:
            event_id = self._record_turn(question, answer, citations, cancelled, conversation_id)
        return ChatResult(
            question=question,
            answer=answer,
            citations=citations,
            context=context,
            ttft_ms=ttft_ms,
            tokens=tokens,
            seconds=time.perf_counter() - started,
            cancelled=cancelled,
            event_id=event_id,
        )

    def _record_turn(
        self,
        question: str,
        answer: str,
        citations: Sequence[Citation],
        cancelled: bool,
        conversation_id: str | None,
    ) -> str | None:
        metadata: dict[str, str | int | float | bool] = {
            "turn_id": f"turn_{uuid.uuid4().hex}",
            "cited": ",".join(c.memory_id for c in citations),
            "tags": ",".join(c.tag for c in citations),
            "cancelled": cancelled,
        }
        if conversation_id:
            metadata["conversation_id"] = conversation_id
        try:
            event = Event(
                source="chat", app="engram", text=turn_text(question, answer), metadata=metadata
            )
        except InvalidText:
            return None
        self.store.events.put(event)
        return event.id
