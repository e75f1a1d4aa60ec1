"""Grounding: what an agent writes must come from the batch it was shown (or the memories it
changes), so a small model cannot overwrite, invent or delete memories on a whim."""

from __future__ import annotations

import json

import pytest

from agents.grounding import Observations, Ungrounded
from agents.llm.fakes import ScriptedChatModel
from agents.loop import MemoryLoop
from agents.memory_agent import CallOptions
from agents.memory_episodic import EpisodicAgent
from agents.memory_semantic import SemanticAgent
from agents.memory_vault import VaultAgent
from storage.records import MemoryType, SemanticMemory
from storage.store import MemoryStore
from tests.agents.conftest import aliases_in, make_events

BATCH = make_events(
    "Caroline: I went to an LGBTQ support group yesterday and it was so powerful.",
    "Melanie: Wow! My locker code at the gym is 4471-B, by the way.",
)


def test_words_from_the_batch_ground_a_summary_even_when_inflected() -> None:
    seen = Observations(BATCH)
    fields = {"actor": "Caroline", "event_type": "meeting",
              "summary": "Caroline attended a powerful LGBTQ support group"}  # fmt: skip
    seen.check_written(fields, EpisodicAgent.fields)  # "went" is missing: 5 of 6 words found
    # a name the batch does say, inside a sentence, grounds as any other word
    seen.check_written({"name": "gym", "summary": "At the gym, Melanie has a locker"},
                       SemanticAgent.fields)  # fmt: skip


@pytest.mark.parametrize(
    ("fields", "why", "reason"),
    [
        ({"name": "Update", "summary": "Update: update the new observations"}, "not in the obs",
         "ungrounded"),
        ({"name": "Caroline", "summary": "2023-05-25 13:14"}, "only numbers or symbols",
         "no-words"),
        ({"name": "Caroline", "summary": "Kyoto 2023-05-25 13:14"}, "not in the obs",
         "ungrounded"),
        ({"name": "👌👌👌", "summary": "13:14"}, "only numbers or symbols", "no-words"),
        ({"name": "Remembrances", "summary": "Remembrances (insert), (update)"}, "not in the",
         "ungrounded"),
        # the prompt's one-shot example copied over the batch's people: half its words are
        # the batch's, but the batch never names Acme
        ({"name": "Melanie", "summary": "Melanie, Caroline's brother, works at the gym Acme"},
         "names Acme, which the batch does not", "unknown-name"),
    ],
)  # fmt: skip
def test_made_up_text_is_ungrounded(fields: dict[str, str], why: str, reason: str) -> None:
    with pytest.raises(Ungrounded, match=why) as caught:
        Observations(BATCH).check_written(fields, SemanticAgent.fields)
    assert caught.value.reason == reason


def test_a_secret_must_be_copied_word_for_word() -> None:
    seen = Observations(BATCH)
    good = {"entry_type": "code", "caption": "locker code at the gym", "secret_value": "4471-B",
            "sensitivity": "medium"}  # fmt: skip
    seen.check_written(good, VaultAgent.fields)
    with pytest.raises(Ungrounded, match="secret_value does not appear") as caught:
        seen.check_written({**good, "secret_value": "4471-C"}, VaultAgent.fields)
    assert "4471" not in str(caught.value)  # the error never repeats a value
    assert caught.value.reason == "not-verbatim"


def test_an_update_may_keep_words_of_the_memory_it_changes() -> None:
    seen = Observations(BATCH)
    fields = {"name": "Melanie", "summary": "Melanie trains at the Northside climbing gym downtown"}
    with pytest.raises(Ungrounded):
        seen.check_written(fields, SemanticAgent.fields)
    seen.check_written(fields, SemanticAgent.fields, also=["Climbing: Northside, downtown"])


def test_a_delete_must_name_a_memory_the_batch_talks_about() -> None:
    seen = Observations(BATCH)
    seen.check_mentioned("Caroline's support group meets on Mondays")
    with pytest.raises(Ungrounded, match="do not mention") as caught:
        seen.check_mentioned("Kyoto trip planned for May")
    assert caught.value.reason == "unmentioned"


def test_the_loop_rejects_each_ungrounded_operation_and_keeps_the_rest(
    fake_store: MemoryStore,
) -> None:
    kyoto, dana = fake_store.add_many(
        [SemanticMemory(name="Kyoto", summary="Kyoto trip planned for May"),
         SemanticMemory(name="Dana", summary="Dana works in sales")]
    )  # fmt: skip
    model = ScriptedChatModel(
        {"types": ["semantic", "episodic"]},
        lambda req: _ops(req.messages[1].content),
        {"operations": [{"op": "insert", "actor": "Caroline", "event_type": "meeting",
                         "summary": "Caroline went to an LGBTQ support group"}]},
    )  # fmt: skip
    loop = MemoryLoop(fake_store, model, options=CallOptions(timeout_s=2.0))
    report = loop.process(BATCH)
    assert [w[:2] for w in report.writes] == [("insert", "episodic")]
    reasons = "\n".join(map(str, report.rejected))
    assert len(report.rejected) == 3, reasons
    assert {(r.agent, r.operation, r.reason) for r in report.rejected} == {
        ("semantic", "update", "ungrounded"),
        ("semantic", "delete", "unmentioned"),
        ("semantic", "merge", "unrelated-merge"),
    }, reasons
    assert "update rejected: summary: most of it is not in the observations" in reasons
    assert "delete rejected: the observations do not mention" in reasons
    assert "merge rejected: it merges memories that are not about one thing" in reasons
    assert fake_store.get(kyoto.id) == kyoto and fake_store.get(dana.id) == dana
    assert fake_store.count(MemoryType.SEMANTIC) == 2
    assert "support group" in fake_store.browse(MemoryType.EPISODIC)[0].index_text()


def _ops(prompt: str) -> str:
    alias = aliases_in(prompt)
    return json.dumps({"operations": [
        {"op": "update", "id": alias["Dana"], "name": "Dana", "summary": "Update: the new ones"},
        {"op": "delete", "id": alias["Kyoto"]},
        {"op": "merge", "ids": [alias["Dana"], alias["Kyoto"]], "name": "Dana",
         "summary": "Dana works in sales"},
    ]})  # fmt: skip
