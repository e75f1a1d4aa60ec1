"""The chat-model port: one streaming call, optionally constrained by a JSON schema.

Every backend (llama.cpp in-process, an OpenAI-compatible server, the scripted fake) implements
`ChatModel`; helpers such as `complete` and `complete_json` are free functions built on it, so a
backend stays two members wide and a test double needs nothing more. What a backend can do is
said by flags on its `ModelInfo`, which callers ask instead of guessing by class or name.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol, runtime_checkable

from storage.errors import EngramError

Role = Literal["system", "user", "assistant"]
JsonSchema = dict[str, Any]


class ModelError(EngramError):
    """A chat model failed to produce an answer (it crashed, or its server said no)."""


class ModelTimeout(ModelError):
    """A chat model took longer than allowed; whatever it was doing was abandoned."""


class Cancelled(ModelError):
    """The caller cancelled the generation (a `threading.Event` was set)."""


class Preempted(ModelError):
    """Background work gave way to a chat request; the caller may retry it later."""


class InvalidOutput(ModelError):
    """The model's answer did not parse as the JSON the schema asked for."""

    def __init__(self, message: str, text: str = "") -> None:
        super().__init__(message)
        self.text = text  # what the model said, for salvage and for the log


@dataclass(frozen=True)
class Message:
    role: Role
    content: str


@dataclass(frozen=True)
class Request:
    """One generation. `background` marks memory work: behind the scheduler
    (agents/llm/scheduler.py) it yields to chat and may be preempted by it, raising `Preempted`,
    so memory upkeep never makes the user wait."""

    messages: tuple[Message, ...]
    schema: JsonSchema | None = None
    max_tokens: int = 256
    temperature: float = 0.0
    background: bool = False
    stop: tuple[str, ...] = ()


@dataclass(frozen=True)
class ModelInfo:
    """What `engram doctor` and the prompt budget need to know about a loaded model, and what it
    can do (flags in the style of simonw/llm's `can_stream`/`supports_schema`):

    - `supports_schema`: a `Request.schema` constrains the output (a grammar, `response_format`);
      without it the schema is only a wish the prompt states.
    - `preemptible`: chat goes first: background generations wait behind chat requests and one
      in progress is stopped between chunks when chat arrives (`Preempted`). The scheduler
      gives every backend this; a bare backend runs requests in the order they come.
    - `gpu_offload`: layers run on a GPU in this process (a remote server's hardware is not
      known here, so False for it).
    - `caches_prefix`: a prompt that starts like the previous one evaluates only what is new
      (llama.cpp's KV cache), so evaluating a fixed prefix ahead of time (`ChatAgent.warm`)
      takes that time off the first answer.
    """

    name: str
    backend: str
    n_ctx: int
    chat_template: str = ""
    supports_schema: bool = False
    preemptible: bool = False
    gpu_offload: bool = False
    caches_prefix: bool = False
    threads: int = 0
    details: dict[str, Any] = field(default_factory=dict)

    def capabilities(self) -> dict[str, bool]:
        """The flags by name, for `engram doctor` and the benchmarks' JSON."""
        return {
            "supports_schema": self.supports_schema,
            "preemptible": self.preemptible,
            "gpu_offload": self.gpu_offload,
            "caches_prefix": self.caches_prefix,
        }


@runtime_checkable
class ChatModel(Protocol):
    """Streams the text of one reply, chunk by chunk (a chunk is about one token).

    `stream` checks `cancel` between tokens and raises `Cancelled` once it is set; closing the
    iterator early also stops the generation. A backend never crashes on a prompt that is too
    long for its context window: it trims the longest messages to fit. A backend may be called
    from several threads; the scheduler in front of it lets one generation through at a time.
    """

    @property
    def info(self) -> ModelInfo: ...

    def stream(self, request: Request, cancel: threading.Event | None = None) -> Iterator[str]: ...

    def close(self) -> None:
        """Release the model (a worker thread, memory); the model is unusable afterwards."""
        ...


def scrubbed(request: Request, scrub: Callable[[str], str]) -> Request:
    """`request` with `scrub` applied to every message (vault secrets withheld from a prompt,
    whatever memory or event carries them)."""
    shown = tuple(Message(m.role, scrub(m.content)) for m in request.messages)
    return request if shown == request.messages else replace(request, messages=shown)


def messages(system: str, user: str) -> tuple[Message, ...]:
    return (Message("system", system), Message("user", user))


def complete(
    model: ChatModel,
    request: Request,
    cancel: threading.Event | None = None,
    timeout_s: float | None = None,
    runaway_chars: int | None = None,
) -> str:
    """The whole reply as one string. Past `timeout_s` (queueing included) the generation is
    stopped through the cancel path and `ModelTimeout` raised, even if no token ever came.
    With `runaway_chars`, a reply whose last that many characters are one or two characters
    repeated ("👌👌👌…", "0000…", endless spaces) is a small model looping: generation stops
    there instead of burning the rest of its token budget."""
    if cancel is not None and cancel.is_set():
        raise Cancelled("the request was cancelled before it started")
    inner = threading.Event()
    timer = None
    if timeout_s is not None:
        timer = threading.Timer(timeout_s, inner.set)
        timer.daemon = True
        timer.start()
    parts: list[str] = []
    chunks = model.stream(request, either(cancel, inner))
    tail = ""
    try:
        for chunk in chunks:
            parts.append(chunk)
            if inner.is_set():
                raise Cancelled("timed out")
            if runaway_chars:
                tail = (tail + chunk)[-runaway_chars:]
                if len(tail) == runaway_chars and len(set(tail)) <= 2:
                    break
    except Cancelled:
        if inner.is_set() and not (cancel is not None and cancel.is_set()):
            raise ModelTimeout(f"the model took over {timeout_s:.0f} s; stopped it") from None
        raise
    finally:
        if timer is not None:
            timer.cancel()
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
    return "".join(parts)


def complete_json(
    model: ChatModel,
    request: Request,
    cancel: threading.Event | None = None,
    timeout_s: float | None = None,
) -> Any:
    """The reply parsed as JSON (the request should carry a schema). Raises `InvalidOutput`
    with the text that failed, so a log shows what the model said (and `salvage_json` can
    keep what was whole of it)."""
    text = complete(model, request, cancel, timeout_s, runaway_chars=RUNAWAY_CHARS)
    return parse_json(text)


#: A JSON answer that ends in this many characters of one or two repeated is cut off there.
RUNAWAY_CHARS = 48


_FENCE = re.compile(r"^```(?:json)?\s*|\s*```$", re.MULTILINE)


def parse_json(text: str) -> Any:
    cleaned = _FENCE.sub("", text.strip())
    try:
        return json.loads(cleaned)
    except json.JSONDecodeError as exc:
        shown = text if len(text) < 200 else text[:200] + "…"
        raise InvalidOutput(
            f"the model's answer is not valid JSON ({exc.msg}): {shown!r}", cleaned
        ) from exc


def salvage_json(text: str) -> Any | None:
    """An answer cut off mid-way (a runaway string, the token limit), closed after its last
    complete list element: `{"operations": [{…}, {…}, {"summary": "👌👌…` keeps the two
    whole operations. None when no element was complete."""
    stack: list[str] = []
    in_string = escaped = False
    best: tuple[int, str] | None = None
    for at, ch in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
                if stack and stack[-1] == "[":
                    best = (at + 1, "".join(stack))
            continue
        if ch == '"':
            in_string = True
        elif ch in "{[":
            stack.append(ch)
        elif ch in "}]":
            if not stack or stack.pop() != ("{" if ch == "}" else "["):
                return None
            if stack and stack[-1] == "[":
                best = (at + 1, "".join(stack))
    if best is None:
        return None
    end, still_open = best
    closing = "".join("}" if c == "{" else "]" for c in reversed(still_open))
    try:
        return json.loads(text[:end] + closing)
    except json.JSONDecodeError:
        return None


_PIECE = re.compile(r"\d|[^\W\d_]+|[^\w\s]|_", re.UNICODE)


def approx_tokens(text: str) -> int:
    """A token estimate for budgeting prompts before a model sees them (backends re-check
    exactly). BPE vocabularies split digits and punctuation one a token and long or non-ASCII
    words into pieces, so counting characters misjudges dates and ids by half; this counts
    those pieces and adds 15 %. Within about 10 % of SmolLM2's tokenizer on prose, memory lines,
    code and French."""
    count = 0
    for piece in _PIECE.findall(text):
        if piece[0].isalpha():
            count += -(-len(piece) // (7 if piece.isascii() else 3))
        else:
            count += 1
    return (count * 115 + 99) // 100


class _LinkedEvent(threading.Event):
    """Set when either of two events is; lets `complete` add its own timeout (and the scheduler
    its preemption) to a caller's cancel event without touching it."""

    def __init__(self, a: threading.Event, b: threading.Event) -> None:
        super().__init__()
        self._a, self._b = a, b

    def is_set(self) -> bool:
        return self._a.is_set() or self._b.is_set()


def either(cancel: threading.Event | None, inner: threading.Event) -> threading.Event:
    """An event that reads as set when the caller's `cancel` or our own `inner` is."""
    return inner if cancel is None else _LinkedEvent(cancel, inner)


def trim_to_fit(
    msgs: Sequence[Message], budget: int, count: Any = approx_tokens
) -> tuple[Message, ...]:
    """Shorten the longest messages (from their end, keeping their start) until the estimated
    total fits `budget` tokens. The context-window guard every backend applies last."""
    out = list(msgs)
    sizes = [count(m.content) + 4 for m in out]
    for _ in range(64):
        excess = sum(sizes) - budget
        if excess <= 0:
            break
        i = max(range(len(out)), key=lambda j: sizes[j])
        text = out[i].content
        keep_tokens = max(sizes[i] - excess - 8, 1)
        keep_chars = max(int(len(text) * keep_tokens / max(sizes[i], 1)), 1)
        if keep_chars >= len(text):
            keep_chars = len(text) - max(len(text) // 8, 1)
        out[i] = Message(out[i].role, text[:keep_chars].rstrip() + " …")
        sizes[i] = count(out[i].content) + 4
        if keep_chars <= 1:
            break
    return tuple(out)


@dataclass(frozen=True)
class Speed:
    ttft_ms: float
    tokens: int
    tokens_per_s: float  # generation only: from the first token to the last


def measure_speed(model: ChatModel, request: Request | None = None) -> Speed:
    """Time one generation (for `engram doctor` and the benchmarks)."""
    request = request or Request(
        messages("You are terse.", "Count from one to forty, in words."), max_tokens=48
    )
    started = time.perf_counter()
    first = last = started
    tokens = 0
    for _ in model.stream(request):
        last = time.perf_counter()
        if tokens == 0:
            first = last
        tokens += 1
    rate = (tokens - 1) / (last - first) if tokens > 1 and last > first else 0.0
    return Speed((first - started) * 1000, tokens, rate)


def template_family(template: str) -> str:
    """A readable name for a GGUF chat template (the full Jinja text is long)."""
    markers = [
        ("<|im_start|>", "chatml"),
        ("<|start_header_id|>", "llama-3"),
        ("<start_of_turn>", "gemma"),
        ("[INST]", "mistral/llama-2"),
        ("<|user|>", "zephyr/phi"),
    ]
    for marker, name in markers:
        if marker in template:
            return name
    return "custom" if template else "none (llama.cpp's fallback)"
