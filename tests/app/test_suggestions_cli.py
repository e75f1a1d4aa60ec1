from __future__ import annotations

import json

import pytest

from app import bootstrap
from app.cli import main
from app.runtime import Runtime
from app.settings import load_settings
from storage.protocols import Embedder
from storage.records import MemoryType, SemanticMemory
from storage.suggestions import Suggestion


@pytest.fixture(autouse=True)
def shared_embedder(monkeypatch: pytest.MonkeyPatch, real_embedder: Embedder) -> None:
    monkeypatch.setattr(bootstrap, "make_embedder", lambda settings: real_embedder)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main(list(argv)) == 0
    return capsys.readouterr().out


@pytest.mark.real
def test_list_accept_and_dismiss_suggestions(capsys: pytest.CaptureFixture[str]) -> None:
    with Runtime(load_settings()) as runtime:
        store = runtime.store()
        memory = store.add(SemanticMemory(name="Priya", summary="Priya leads the data team"))
        change = Suggestion(
            memory_id=memory.id,
            memory_type=MemoryType.SEMANTIC,
            op="update",
            fields={"summary": "Priya leads the platform team"},
            agent="semantic",
        )
        drop = Suggestion(memory_id=memory.id, memory_type=MemoryType.SEMANTIC, op="delete",
                          agent="semantic")  # fmt: skip
        store.apply([], "agents:b_1", suggest=[change, drop])
    listed = json.loads(run(capsys, "suggestions", "--json"))
    assert [(s["id"], s["memory_id"], s["op"]) for s in listed] == [
        (change.id, memory.id, "update"), (drop.id, memory.id, "delete")
    ]  # fmt: skip
    assert json.loads(run(capsys, "accept", change.id)) == {
        "accepted": change.id, "memory_id": memory.id
    }  # fmt: skip
    assert json.loads(run(capsys, "dismiss", drop.id)) == {"dismissed": drop.id}
    assert "no suggestions" in run(capsys, "suggestions")
    with Runtime(load_settings()) as runtime:
        store = runtime.store()
        now = store.get(memory.id)
        assert isinstance(now, SemanticMemory) and now.summary == "Priya leads the platform team"
        assert now.origin == "user" and store.history(memory.id)[0].actor == "user"
        assert store.suggestions.known(drop)  # dismissed: not made again
