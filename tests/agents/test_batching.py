"""Coalescing a batch's screen reads and leaving out text the agents were shown: fewer, shorter
prompts, the same provenance."""

from __future__ import annotations

from agents.batching import KnownText, coalesce
from agents.llm.fakes import ScriptedChatModel
from agents.loop import MemoryLoop
from agents.memory_agent import CallOptions
from storage.records import MemoryType
from storage.store import MemoryStore
from tests.agents.conftest import make_events


def test_consecutive_reads_of_one_window_become_one_with_every_line_once() -> None:
    reads = make_events(
        "Draft\nDear Ana,", "Draft\nDear Ana,\nthe launch moves", "Draft\nthe launch moves\nto May"
    )
    other = make_events("Inbox: 3 new", app="Thunderbird")
    chat = make_events("User asked: when is the launch?", source="chat")
    batch = [*reads, *other, *chat, *make_events("Draft\nto May\nBest, Sam")]
    out = coalesce(batch)
    assert len(out) == 4  # the three reads, the inbox, the chat turn, the later read alone
    merged = out[0]
    assert merged.text.splitlines() == ["Draft", "Dear Ana,", "the launch moves", "to May"]
    assert merged.occurred_at == reads[0].occurred_at
    assert merged.last_seen == reads[-1].occurred_at
    assert out[1:3] == [*other, *chat] and out[3].text == "Draft\nto May\nBest, Sam"


def test_lines_already_shown_from_a_window_are_left_out_and_empty_reads_dropped() -> None:
    known = KnownText()
    first = make_events("Budget 2027\nOwner: Ana")
    known.remember(first)
    again = make_events("Budget 2027\nOwner: Ana", "Budget 2027\nOwner:  ana\nDue: Friday")
    elsewhere = make_events("Budget 2027", app="Thunderbird")
    said = make_events("Budget 2027", source="chat")
    fresh = known.fresh([*again, *elsewhere, *said])
    assert [e.text for e in fresh] == ["Due: Friday", "Budget 2027", "Budget 2027"]


def test_the_loop_shows_one_read_cites_every_event_and_skips_nothing_new(
    fake_store: MemoryStore,
) -> None:
    model = ScriptedChatModel(
        {"types": ["semantic"]},
        {"operations": [{"op": "insert", "name": "Ana", "summary": "Ana owns the budget"}]},
    )
    loop = MemoryLoop(fake_store, model, options=CallOptions(timeout_s=2.0))
    reads = make_events("Budget\nOwner: Ana", "Budget\nOwner: Ana\nAna owns the budget")
    repeat = make_events("Budget\nOwner: Ana\nAna owns the budget")  # a forced re-read
    fake_store.events.put_many([*reads, *repeat])
    report = loop.process(reads)
    assert report.shown == 1 and len(model.calls) == 2
    prompt = model.calls[1].messages[-1].content
    assert prompt.count("Owner: Ana") == 1  # the page once, not once a read
    [fact] = fake_store.browse(MemoryType.SEMANTIC)
    assert set(fact.provenance) == {e.id for e in reads}

    skipped = loop.process(repeat)
    assert skipped.shown == 0 and skipped.llm_calls == 0 and len(model.calls) == 2
    assert fake_store.events.counts()["done"] == 3  # done all the same, searchable as events
