"""Status that explains itself: problems with advice, shown once and cleared; one backlog count;
the model by its friendly name; the activity figures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from agents.loop import BatchReport
from agents.operations import Rejection
from app.llm_config import LLMSettings
from app.status import (
    GENERIC_ADVICE,
    BatchSummary,
    Problems,
    backlog_text,
    measure,
    model_name,
    problem_from,
    short_line,
    waiting,
)
from storage.errors import StoreLocked
from storage.records import Event, SemanticMemory
from storage.store import MemoryStore


def test_a_problem_says_what_happened_and_what_to_do() -> None:
    try:
        raise StoreLocked("the data folder /x is in use by another process (pid 42)")
    except StoreLocked as exc:
        problem = problem_from("Opening memories", exc)
    assert problem.line() == "Opening memories failed"
    assert "pid 42" in problem.message
    assert "Close the other Engram" in problem.advice
    details = problem.details()
    assert "What happened: the data folder" in details and "What to do: Close" in details
    assert "StoreLocked" in details  # the traceback, for a bug report
    assert problem_from("Saving", "disk said no").advice == GENERIC_ADVICE


def test_the_same_problem_is_kept_once_and_cleared_when_it_ends() -> None:
    problems = Problems()
    assert problems.raise_(problem_from("Memory agents", RuntimeError("model crashed")))
    assert not problems.raise_(problem_from("Memory agents", RuntimeError("model crashed")))
    (only,) = problems.active()
    assert only.times == 2 and "happened 2 times" in only.details()
    assert problems.clear("Memory agents") and len(problems) == 0
    assert not problems.clear("Memory agents")


def test_a_long_line_is_cut_at_a_word() -> None:
    line = short_line("word " * 40, width=30)
    assert len(line) <= 30 and line.endswith("…") and not line.endswith("wor…")
    assert short_line("first line\nsecond") == "first line"


def test_one_backlog_count_for_every_view() -> None:
    counts = {"pending": 30, "claimed": 8, "done": 5, "failed": 1}
    assert waiting(counts) == 38
    assert backlog_text(counts) == "38 waiting, 1 failed"


def test_the_model_is_named_as_a_person_knows_it(tmp_path: Path) -> None:
    assert model_name(LLMSettings()) == "Qwen2.5-Coder 1.5B"  # the default chat model
    assert model_name(LLMSettings(model="smollm2")) == "SmolLM2 135M"
    assert model_name(LLMSettings(model="qwen-1.5b")) == "Qwen2.5-Coder 1.5B"
    picked = tmp_path / "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
    picked.write_bytes(b"GGUF")
    assert model_name(LLMSettings(model_path=picked)) == "Qwen2.5-Coder 0.5B"
    other = tmp_path / "mistral-7b.Q4.gguf"
    other.write_bytes(b"GGUF")
    assert model_name(LLMSettings(model_path=other)) == "mistral-7b.Q4"
    server = LLMSettings(openai_base_url="http://127.0.0.1:8080/v1", openai_model="llama3")
    assert model_name(server) == "llama3 at 127.0.0.1:8080"
    unnamed = LLMSettings(openai_base_url="http://127.0.0.1:9")
    assert model_name(unnamed) == "the model server at 127.0.0.1:9"


def test_the_last_batch_keeps_its_rejections_with_reasons() -> None:
    report = BatchReport(
        "b_1",
        ("evt_1", "evt_2"),
        writes=[("insert", "semantic", "sem_1")],
        rejected=[Rejection("episodic", "update", "not-found", "no memory epi_9")],
        seconds=2.5,
    )
    summary = BatchSummary.of(report, datetime(2026, 3, 2, 12, tzinfo=UTC))
    assert (summary.events, summary.writes, len(summary.rejected)) == (2, 1, 1)
    assert "1 rejected" in summary.line()


def test_activity_figures_from_the_store(fake_store: MemoryStore) -> None:
    now = datetime.now(UTC)
    for minutes in (1, 2, 3, 4, 30):  # the last one is outside the 10-minute window
        fake_store.events.put(
            Event(text=f"read {minutes}", occurred_at=now - timedelta(minutes=minutes))
        )
    fake_store.add(SemanticMemory(name="a", summary="b"))
    activity = measure(fake_store, UTC, now)
    assert activity.events_per_minute == 0.4
    assert activity.memories_today == 1
    assert activity.waiting == 5
