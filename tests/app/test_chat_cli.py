"""`engram ask`, `engram digest` and the doctor's model check: the wiring on the scripted model,
and the doctor once more with the embedded SmolLM2."""

from __future__ import annotations

import json

import pytest

from agents.llm.fakes import ScriptedChatModel
from app import bootstrap
from app.cli import main
from app.doctor import check_chat_model
from app.settings import Settings, load_settings
from storage.fakes import HashEmbedder
from storage.records import SemanticMemory


@pytest.fixture
def model(monkeypatch: pytest.MonkeyPatch) -> ScriptedChatModel:
    """The CLI with a deterministic embedder and the scripted model in place of real ones."""
    scripted = ScriptedChatModel()
    monkeypatch.setattr(bootstrap, "make_embedder", lambda _s: HashEmbedder())
    monkeypatch.setattr(bootstrap, "make_chat_model", lambda _s: scripted)
    with bootstrap.open_store(load_settings()) as store:
        store.add(SemanticMemory(name="Dentist", summary="Dr Moreau is the dentist, in Lyon"))
    return scripted


def test_ask_streams_the_answer_then_its_sources(
    model: ScriptedChatModel, capsys: pytest.CaptureFixture[str]
) -> None:
    model.queue("Dr Moreau, in Lyon [M1].")
    assert main(["ask", "Who is my dentist?"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Dr Moreau, in Lyon [M1].\n")
    assert "Sources:\n  [M1] semantic: Dentist: Dr Moreau is the dentist" in out


def test_ask_json_and_the_turn_it_records(
    model: ScriptedChatModel, capsys: pytest.CaptureFixture[str]
) -> None:
    model.queue("Dr Moreau [M1].")
    assert main(["ask", "Who is my dentist?", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["answer"] == "Dr Moreau [M1]."
    assert [c["type"] for c in out["citations"]] == ["semantic"]
    assert out["event_id"] and out["ttft_ms"] is not None
    with bootstrap.open_store(load_settings()) as store:
        assert store.events.get(out["event_id"]).source == "chat"


def test_ask_no_record_leaves_the_queue_alone(
    model: ScriptedChatModel, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["ask", "Anything?", "--json", "--no-record"]) == 0
    assert json.loads(capsys.readouterr().out)["event_id"] is None


def test_digest_runs_the_agents_over_the_queue(
    model: ScriptedChatModel, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["ask", "Who is my dentist?", "--json"])
    capsys.readouterr()
    model.queue(
        {"types": ["episodic"]},
        {"operations": [{"op": "insert", "actor": "user", "event_type": "conversation",
                         "summary": "Asked Engram who the dentist is"},
                        {"op": "delete", "id": "m1"}]},
    )  # fmt: skip
    assert main(["digest", "--json"]) == 0
    out = capsys.readouterr()
    summary = json.loads(out.out)
    assert summary["batches"] == 1 and summary["writes"] == 1 and summary["llm_calls"] == 2
    assert summary["rejected"] == 1 and summary["rejection_reasons"] == {"not-allowed": 1}
    assert "rejected (not-allowed): episodic: delete rejected:" in out.err
    assert summary["backlog"]["pending"] == 0 and summary["backlog"]["done"] == 1


def test_empty_question_is_a_clear_error(
    model: ScriptedChatModel, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["ask", "  "]) == 2
    assert "the question is empty" in capsys.readouterr().err


def test_doctor_model_check_reports_what_the_issue_lists(model: ScriptedChatModel) -> None:
    result = check_chat_model()
    assert result.ok and result.name == "chat model"
    for key in ("model", "chat_template", "n_ctx", "gpu_offload", "threads", "tokens_per_s"):
        assert key in result.details
    assert result.details["supports_schema"] is True and result.details["preemptible"] is False
    assert "schema-constrained JSON yes" in result.summary
    assert "chat before memory work no" in result.summary


@pytest.mark.real
def test_doctor_with_the_default_chat_model() -> None:
    result = check_chat_model()
    assert result.ok, result.summary
    details = result.details
    assert details["backend"] == "llama.cpp" and details["chat_template"] == "chatml"
    assert details["n_ctx"] == Settings().llm.n_ctx and details["threads"] >= 1
    assert details["tokens_per_s"] > 0 and isinstance(details["gpu_offload"], bool)
    assert "GPU offload" in result.summary
    # the composition root puts the scheduler in front of every backend
    assert details["preemptible"] is True and details["supports_schema"] is True
    assert "chat before memory work yes" in result.summary
