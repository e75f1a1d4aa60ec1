"""The helpers every agent's JSON goes through: salvaging a cut-off answer, and stopping a
generation that has started to loop."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from agents.llm.port import (
    RUNAWAY_CHARS,
    InvalidOutput,
    ModelInfo,
    Request,
    complete,
    complete_json,
    messages,
    salvage_json,
)


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ('{"operations": [{"op": "noop"}, {"op": "insert", "summary": "👌👌👌',
         {"operations": [{"op": "noop"}]}),
        ('{"types": ["episodic", "sema', {"types": ["episodic"]}),
        ('{"a": [{"b": [1, 2]}, {"c": "x \\" } ] ', {"a": [{"b": [1, 2]}]}),
        ('{"operations": [{"op": "noop"}]} chatter', {"operations": [{"op": "noop"}]}),
    ],
)  # fmt: skip
def test_salvage_keeps_the_complete_elements(text: str, kept: Any) -> None:
    assert salvage_json(text) == kept


@pytest.mark.parametrize(
    "text",
    ["", "not json", '{"operations": [{"op": "ins', '{"a": [}]', '{"types": "episodic'],
)
def test_nothing_whole_is_nothing_salvaged(text: str) -> None:
    assert salvage_json(text) is None


class Looping:
    """A model that writes a little JSON and then one emoji forever, counting what it sent."""

    def __init__(self) -> None:
        self.sent = 0

    @property
    def info(self) -> ModelInfo:
        return ModelInfo(name="looping", backend="test", n_ctx=2048)

    def stream(self, request: Request, cancel: threading.Event | None = None) -> Iterator[str]:
        yield '{"operations": [{"op": "noop"}, {"summary": "'
        while True:
            self.sent += 1
            yield "👌"

    def close(self) -> None:
        pass


def test_a_looping_generation_is_stopped_and_its_whole_part_kept() -> None:
    model = Looping()
    request = Request(messages=messages("system", "user"), schema={"type": "object"})
    with pytest.raises(InvalidOutput) as caught:
        complete_json(model, request, timeout_s=10)
    # stopped once the tail was one or two characters (the quote and the emoji)
    assert RUNAWAY_CHARS - 2 <= model.sent <= RUNAWAY_CHARS
    assert salvage_json(caught.value.text) == {"operations": [{"op": "noop"}]}


def test_plain_completion_is_not_cut_for_repetition() -> None:
    class Dashes(Looping):
        def stream(self, request: Request, cancel: threading.Event | None = None) -> Iterator[str]:
            for _ in range(200):
                self.sent += 1
                yield "-"

    model = Dashes()
    text = complete(model, Request(messages=messages("system", "user")), timeout_s=10)
    assert text == "-" * 200
