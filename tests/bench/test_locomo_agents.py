"""The LoCoMo agents-mode harness on a tiny conversation, with the scripted model: memories made
by the loop map back to dialogue ids through provenance, and answers are scored by token F1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agents.llm.fakes import ScriptedChatModel
from agents.llm.port import Request
from app import bootstrap
from bench import locomo
from bench.locomo_answer import answer_f1
from storage.fakes import HashEmbedder

CONVERSATION = {
    "sample_id": "conv-t",
    "conversation": {
        "speaker_a": "Ann",
        "speaker_b": "Bob",
        "session_1_date_time": "1:56 pm on 8 May, 2023",
        "session_1": [
            {"speaker": "Ann", "dia_id": "D1:1", "text": "I adopted a cat called Miso."},
            {"speaker": "Bob", "dia_id": "D1:2", "text": "Lovely! I am training for a marathon."},
        ],
        "session_2_date_time": "10:00 am on 9 June, 2023",
        "session_2": [
            {"speaker": "Ann", "dia_id": "D2:1", "text": "Miso learnt to open doors."},
            {"speaker": "Bob", "dia_id": "D2:2", "text": "I ran the Lyon marathon in 3 hours."},
        ],
    },
    "qa": [
        {"question": "What is the name of Ann's cat?", "answer": "Miso", "evidence": ["D1:1"],
         "category": 4},
        {"question": "How long did Bob's marathon take?", "answer": "3 hours",
         "evidence": ["D2:2"], "category": 1},
        {"question": "What did Ann's cat learn?", "answer": "x", "evidence": ["D2:1"],
         "category": 5},
    ],
}  # fmt: skip


def respond(request: Request) -> str:
    """Meta: episodic. Episodic agent: one memory per event shown. Chat: echo the first memory."""
    system, user = request.messages[0].content, request.messages[-1].content
    if "meta memory manager" in system:
        return json.dumps({"types": ["episodic"]})
    if request.schema is not None:
        lines = user.split("New observations:\n")[1].split("\n\n")[0].splitlines()
        ops = [
            {"op": "insert", "actor": "x", "event_type": "chat", "summary": line.split("] ")[1]}
            for line in lines
        ]
        return json.dumps({"operations": ops})
    return user.split("[M1] ")[1].splitlines()[0] if "[M1] " in user else "I do not remember."


@pytest.fixture
def scripted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, ScriptedChatModel]:
    """The tiny conversation's file, and the scripted model (and hash embedder) the app's
    runtime gets in its place."""
    data = tmp_path / "locomo.json"
    data.write_text(json.dumps([CONVERSATION]))
    model = ScriptedChatModel(default=respond)
    monkeypatch.setattr(bootstrap, "make_embedder", lambda _s: HashEmbedder())
    monkeypatch.setattr(bootstrap, "make_chat_model", lambda _s: model)
    return data, model


def test_agents_mode_scores_retrieval_and_answers(
    scripted: tuple[Path, ScriptedChatModel], capsys: pytest.CaptureFixture[str]
) -> None:
    data, _ = scripted
    code = locomo.main(
        ["--data", str(data), "--mode", "agents", "--k", "2", "--index", "memory", "--batch", "1",
         "--answer", "--json"]
    )  # fmt: skip
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["mode"] == "agents" and out["questions"] == 2  # category 5 is not scored
    # each question's evidence turn is reached through a memory's provenance
    assert {c: v["frac_at_k"] for c, v in out["by_category"].items()} == {"1": 100.0, "4": 100.0}
    # the memories alone reach them too; `frac_at_k` also counts the raw events search returns
    assert out["frac_at_k"] == out["frac_at_k_memories_only"] == 100.0
    assert 0 < out["answer_f1"] <= 100 and out["answer_questions"] == 2
    assert set(out["answer_f1_by_category"]) == {"1", "4"}
    [conv] = out["conversations"]
    assert conv["batches"] == 4 and conv["memories"]["episodic"] == 4
    assert conv["writes"] == 4 and conv["rejected_operations"] == 0


def test_answer_f1() -> None:
    assert answer_f1("The answer is Miso.", "Miso") == pytest.approx(2 * (1 / 3) / (1 + 1 / 3))
    assert answer_f1("3 hours", "3 hours") == 1.0
    assert answer_f1("no idea", "Miso") == 0.0


def test_a_kept_store_is_scored_again_without_running_the_agents(
    scripted: tuple[Path, ScriptedChatModel],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    data, model = scripted
    argv = ["--data", str(data), "--mode", "agents", "--k", "2", "--index", "memory", "--batch",
            "1", "--keep-stores", str(tmp_path / "kept"), "--json"]  # fmt: skip
    assert locomo.main(argv) == 0
    first = json.loads(capsys.readouterr().out)
    calls = len(model.calls)
    assert calls > 0 and (tmp_path / "kept" / "conv-t").is_dir()
    assert locomo.main(argv) == 0
    again = json.loads(capsys.readouterr().out)
    assert len(model.calls) == calls  # the agents did not run again
    assert again["frac_at_k"] == first["frac_at_k"] == 100.0
    assert again["conversations"] == first["conversations"]
    # a store built with another batch size is refused, not scored as if it matched
    with pytest.raises(SystemExit, match="was built with"):
        locomo.main([("2" if a == "1" else a) for a in argv])  # --batch 2


class Killed(BaseException):
    """Stands in for a kill: not an `Exception`, so nothing on the way catches it."""


def test_a_kept_store_killed_half_way_resumes_where_it_stopped(
    scripted: tuple[Path, ScriptedChatModel],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data, _ = scripted
    batches = 0

    def dies_on_the_third_batch(request: Request) -> str:
        nonlocal batches
        if "meta memory manager" in request.messages[0].content:
            batches += 1
            if batches == 3:
                raise Killed
        return respond(request)

    model = ScriptedChatModel(default=dies_on_the_third_batch)
    monkeypatch.setattr(bootstrap, "make_chat_model", lambda _s: model)
    argv = ["--data", str(data), "--mode", "agents", "--k", "2", "--index", "memory", "--batch",
            "1", "--keep-stores", str(tmp_path / "kept"), "--json"]  # fmt: skip
    with pytest.raises(Killed):
        locomo.main(argv)
    kept = tmp_path / "kept" / "conv-t"
    assert json.loads((kept / "bench-partial.json").read_text())["batches"] == 2
    assert not (kept / "bench-ingested.json").exists()
    capsys.readouterr()
    assert locomo.main(argv) == 0
    printed = capsys.readouterr()
    assert "resuming after 2 batches" in printed.err
    # ... and ends as an uninterrupted run would: four batches, each applied once
    [conv] = json.loads(printed.out)["conversations"]
    assert conv["batches"] == 4 and conv["writes"] == 4 and conv["failed_batches"] == 0
    assert conv["memories"]["episodic"] == 4
    # a store begun with another batch size is refused, not resumed
    (kept / "bench-ingested.json").unlink()
    with pytest.raises(SystemExit, match="built otherwise"):
        locomo.main([("2" if a == "1" else a) for a in argv])


def test_events_mode_scores_the_turns_as_captured_events_without_agents(
    scripted: tuple[Path, ScriptedChatModel], capsys: pytest.CaptureFixture[str]
) -> None:
    data, model = scripted
    code = locomo.main(["--data", str(data), "--mode", "events", "--k", "2", "--index", "memory",
                        "--json"])  # fmt: skip
    assert code == 0 and model.calls == []  # no agent ran
    out = json.loads(capsys.readouterr().out)
    assert out["mode"] == "events" and out["questions"] == 2
    # each evidence turn is among the two best of four, by its own words
    assert out["frac_at_k"] == 100.0 and set(out["by_half"]) == {"0-4"}
