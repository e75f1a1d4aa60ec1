"""A scripted chat model for unit tests: queued responses, a record of every call.

Passes the same contract tests as the real backends (tests/agents/llm/test_contract.py). When
its queue is empty it answers like pydantic-ai's TestModel: the smallest value a schema accepts,
or a fixed sentence without one (or asks a `default` responder), so a test scripts only the
calls it cares about.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from agents.llm.port import Cancelled, JsonSchema, ModelInfo, ModelTimeout, Request

Responder = Callable[[Request], str]


@dataclass(frozen=True)
class Stall:
    """A response that hangs (like a wedged server) until cancelled or `seconds` pass, then
    raises `ModelTimeout`."""

    seconds: float = 30.0


Scripted = str | BaseException | Responder | Stall | dict[str, Any] | list[Any]

DEFAULT_REPLY = "This is a scripted reply from the test model, long enough to stream."
_CHUNK = re.compile(r"\s*\S+|\s+")


class ScriptedChatModel:
    def __init__(
        self,
        *responses: Scripted,
        default: Responder | None = None,
        n_ctx: int = 4096,
        delay_s: float = 0.0,
        caches_prefix: bool = False,
    ) -> None:
        self._queue: deque[Scripted] = deque(responses)
        self._default = default
        self._lock = threading.Lock()
        self.calls: list[Request] = []
        self.delay_s = delay_s
        # Unscripted, it answers with a value the schema accepts, as a constrained model would.
        self._info = ModelInfo(
            name="scripted",
            backend="fake",
            n_ctx=n_ctx,
            supports_schema=True,
            caches_prefix=caches_prefix,
            threads=1,
        )

    @property
    def info(self) -> ModelInfo:
        return self._info

    def queue(self, *responses: Scripted) -> ScriptedChatModel:
        """Append responses; dicts and lists are sent as JSON text."""
        with self._lock:
            self._queue.extend(responses)
        return self

    @property
    def pending(self) -> int:
        return len(self._queue)

    def stream(self, request: Request, cancel: threading.Event | None = None) -> Iterator[str]:
        with self._lock:
            self.calls.append(request)
            if self._queue:
                item: Scripted = self._queue.popleft()
            else:
                item = self._default(request) if self._default else _default(request)
        return self._play(item, request, cancel)

    def _play(
        self, item: Scripted, request: Request, cancel: threading.Event | None
    ) -> Iterator[str]:
        if isinstance(item, Stall):
            deadline = time.monotonic() + item.seconds
            while time.monotonic() < deadline:
                if cancel is not None and cancel.is_set():
                    raise Cancelled("generation cancelled")
                time.sleep(0.005)
            raise ModelTimeout(f"the scripted model stalled for {item.seconds} s")
        if isinstance(item, BaseException):
            raise item
        if isinstance(item, dict | list):
            text = json.dumps(item)
        elif isinstance(item, str):
            text = item
        else:
            text = item(request)
        for stop in request.stop:
            if stop and stop in text:
                text = text[: text.index(stop)]
        for n, chunk in enumerate(_CHUNK.findall(text)):
            if n >= request.max_tokens:
                return
            if cancel is not None and cancel.is_set():
                raise Cancelled("generation cancelled")
            if self.delay_s:
                time.sleep(self.delay_s)
            yield chunk

    def close(self) -> None:
        """Nothing to release; present so code can close any backend."""


def _default(request: Request) -> str:
    if request.schema is None:
        return DEFAULT_REPLY
    return json.dumps(minimal_instance(request.schema))


def minimal_instance(schema: JsonSchema) -> Any:
    """The smallest JSON value `schema` accepts (first choice of enums and unions)."""
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return minimal_instance(schema[key][0])
    kind = schema.get("type", "object")
    if isinstance(kind, list):
        kind = kind[0]
    if kind == "object":
        props: dict[str, JsonSchema] = schema.get("properties", {})
        return {k: minimal_instance(props[k]) for k in schema.get("required", []) if k in props}
    if kind == "array":
        items = schema.get("items", {"type": "string"})
        return [minimal_instance(items) for _ in range(int(schema.get("minItems", 0)))]
    if kind == "string":
        return "x" * max(int(schema.get("minLength", 0)), 2) if schema.get("minLength") else "ok"
    if kind in ("integer", "number"):
        return int(schema.get("minimum", 0))
    if kind == "boolean":
        return False
    return None
