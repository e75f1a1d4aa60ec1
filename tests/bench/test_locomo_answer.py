"""bench.locomo_answer: LoCoMo's answer normalisation and F1 rules, the per-category summary,
the question spread of a quick run, a raw-mode `--answer` run through a real store with the
scripted model, and the LLM judge against a fake OpenAI-compatible server process."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from agents.llm.fakes import ScriptedChatModel
from agents.llm.port import Request
from app import bootstrap
from bench import locomo
from bench.locomo_answer import (
    Answered,
    Judge,
    answer_f1,
    locomo_f1,
    normalise_answer,
    spread,
    summarise_answers,
    without_citations,
)
from bench.locomo_data import Question
from storage.fakes import HashEmbedder
from tests.bench.test_locomo_agents import CONVERSATION
from tests.helpers.servers import local_server


def test_normalisation_drops_case_punctuation_articles_and_and() -> None:
    assert normalise_answer("The Sunday before 25 May, 2023.") == [
        "sunday",
        "before",
        "25",
        "may",
        "2023",
    ]
    assert normalise_answer("A cat, an owl and the dog!") == ["cat", "owl", "dog"]
    assert normalise_answer("Theatre; 'another' band") == ["theatre", "another", "band"]
    assert normalise_answer("  ...  ") == []


def test_token_f1() -> None:
    assert answer_f1("The answer is Miso.", "Miso") == pytest.approx(2 * (1 / 3) / (1 + 1 / 3))
    assert answer_f1("7 May 2023", "7 May, 2023") == 1.0
    assert answer_f1("May 2023", "7 May 2023") == pytest.approx(0.8)
    assert answer_f1("no idea", "Miso") == 0.0
    assert answer_f1("", "") == 1.0 and answer_f1("", "Miso") == 0.0


def test_category_rules() -> None:
    # multi-hop: each gold part against the best predicted part, averaged
    assert locomo_f1("pottery, camping", "camping, pottery", 1) == 1.0
    assert locomo_f1("pottery", "pottery, camping", 1) == pytest.approx(0.5)
    # open-domain: the gold answer up to its first ";"
    assert locomo_f1("Likely yes", "Likely yes; she said she loves it", 3) == 1.0
    assert locomo_f1("Likely yes", "Likely yes; she said she loves it", 4) < 1.0
    # the rest: plain token F1 (a comma in the answer is no list there)
    assert locomo_f1("pottery, camping", "camping pottery", 4) == 1.0


def test_citation_tags_are_not_scored() -> None:
    assert without_citations("7 May 2023 [M3].") == "7 May 2023."
    assert without_citations("Paris [M1], Rome [M12]") == "Paris, Rome"
    assert locomo_f1(without_citations("7 May 2023 [M3]"), "7 May 2023", 2) == 1.0


def test_spread_takes_categories_in_turn_in_data_order() -> None:
    qs = [Question(f"q{i}", c, ("D1:1",), "a") for i, c in enumerate([4, 4, 4, 1, 2, 2, 3, 5])]
    qs.append(Question("no evidence", 1, (), "a"))
    # one of each category in turn (1, 2, 3, 4), then the second temporal one (no second 1)
    assert [q.text for q in spread(qs, 5)] == ["q3", "q4", "q6", "q0", "q5"]
    assert [q.text for q in spread(qs, None)] == [f"q{i}" for i in range(7)]
    assert len(spread(qs, 100)) == 7  # category 5 and questions without evidence are not asked


def _answered(category: int, f1: float, ttft: float | None, judged: bool | None = None) -> Answered:
    return Answered("c", category, "q", "g", "a", f1, ttft, 1.0, judged)


def test_summary_per_category_and_together() -> None:
    out = summarise_answers(
        [
            _answered(1, 0.5, 100.0, True),
            _answered(1, 0.0, 300.0, False),
            _answered(4, 1.0, 200.0, True),
            _answered(5, 1.0, 50.0),  # never scored
        ]
    )
    assert out["answer_f1"] == 50.0  # the mean over the questions, not over the categories
    assert out["answer_f1_by_category"] == {
        "1": {"name": "multi-hop", "f1": 25.0, "questions": 2},
        "4": {"name": "single-hop", "f1": 100.0, "questions": 1},
    }
    assert out["answer_questions"] == 3
    assert out["ttft_p50_ms"] == 200.0 and out["ttft_p95_ms"] == 300.0
    assert out["judge_accuracy"] == pytest.approx(66.67)
    assert out["judge_accuracy_by_category"] == {"1": 50.0, "4": 100.0}
    assert "judge_accuracy" not in summarise_answers([_answered(2, 1.0, None)])
    assert summarise_answers([])["answer_f1"] is None


def _respond(request: Request) -> str:
    """Answers from the memories it is shown, when one holds what the question asks."""
    user = request.messages[-1].content
    if "cat?" in user and "cat called Miso" in user:
        return "Miso [M1]"
    return "3 hours" if "marathon take?" in user and "in 3 hours" in user else "?"


def test_raw_mode_answers_from_the_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "locomo.json"
    data.write_text(json.dumps([CONVERSATION]))
    model = ScriptedChatModel(default=_respond)
    monkeypatch.setattr(bootstrap, "make_embedder", lambda _s: HashEmbedder())
    monkeypatch.setattr(bootstrap, "make_chat_model", lambda _s: model)
    log = tmp_path / "answers.jsonl"
    argv = ["--data", str(data), "--index", "memory", "--k", "2", "--answer", "--json"]
    assert locomo.main([*argv, "--answers-log", str(log)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["mode"] == "raw" and out["frac_at_k"] > 0  # the retrieval keys stay
    assert out["answer_questions"] == 2 and out["answer_f1"] == 100.0
    assert set(out["answer_f1_by_category"]) == {"1", "4"}
    assert out["ttft_p50_ms"] is not None
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(a["question"], a["answer"]) for a in lines] == [
        ("What is the name of Ann's cat?", "Miso [M1]"),
        ("How long did Bob's marathon take?", "3 hours"),
    ]
    # each question asked afresh, the memory it needs in the prompt
    assert len(model.calls) == 2 and "cat called Miso" in model.calls[0].messages[-1].content
    # a quick run: one question
    assert locomo.main([*argv, "--questions", "1"]) == 0
    assert json.loads(capsys.readouterr().out)["answer_questions"] == 1


def test_judge_against_an_openai_compatible_server(tmp_path: Path) -> None:
    log = tmp_path / "requests.jsonl"

    def command(port: int) -> list[str]:
        return [sys.executable, "-m", "tests.helpers.fake_openai", str(port)]

    env = {**os.environ, "FAKE_OPENAI_LOG": str(log)}
    with local_server("fake judge", command, "/v1/models", 30, env=env) as url:
        judge = Judge(url)
        assert judge("When did Ann adopt Miso?", "8 May 2023", "On 8 May 2023, I think.")
        assert not judge("When did Ann adopt Miso?", "8 May 2023", "I do not remember.")
    sent = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(sent) == 2 and sent[0]["stream"] is True
    assert "Gold answer: 8 May 2023" in sent[0]["messages"][-1]["content"]


def test_chat_support_separates_own_questions_from_another_conversations(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from bench import chat_support

    other = json.loads(json.dumps(CONVERSATION).replace("Ann", "Zoe").replace("Bob", "Kai"))
    for qa in other["qa"]:
        qa["question"] = qa["question"].replace("cat", "violin").replace("marathon", "flight")
    data = tmp_path / "locomo.json"
    data.write_text(json.dumps([CONVERSATION, other]))
    monkeypatch.setattr(bootstrap, "make_embedder", lambda _s: HashEmbedder())
    assert chat_support.main(["--data", str(data), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["questions"] == {"answerable": 2, "adversarial": 1, "foreign": 2}
    chosen = out["thresholds"]["0.3"]
    assert chosen["answered_answerable"] == 100.0 and chosen["stopped_foreign"] == 100.0
    assert chat_support.main(["--data", str(data), "--conversation", "5"]) == 2
