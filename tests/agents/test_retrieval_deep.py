"""The chat agent searches deeper than the plain search: a second keyword round on the words
its best hits share (tests/storage/test_ranking.py shows that round finding a second hop)."""

from __future__ import annotations

from typing import Any

import pytest

from agents.retrieval import DEEP_SEARCH, retrieve
from storage.records import EpisodicMemory, MemoryType
from storage.search import SearchOptions
from storage.store import MemoryStore


def test_the_chat_agent_searches_with_the_second_round(
    fake_store: MemoryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = fake_store.add(EpisodicMemory(actor="Ann", summary="My sister Zoe moved to Porto"))
    seen: list[SearchOptions | None] = []
    search = fake_store.search

    def spy(*args: Any, **kwargs: Any) -> Any:
        seen.append(kwargs.get("options"))
        return search(*args, **kwargs)

    monkeypatch.setattr(fake_store, "search", spy)
    found, _core = retrieve(fake_store, "Where did Ann's sister move?", {MemoryType.EPISODIC: 2})
    assert [item.id for item, _ in found] == [first.id]
    assert seen == [DEEP_SEARCH]
    assert DEEP_SEARCH.expand_weight > 0 == SearchOptions().expand_weight
    assert DEEP_SEARCH.actor_weight == SearchOptions().actor_weight > 0
