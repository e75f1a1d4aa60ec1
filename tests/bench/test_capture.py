"""The capture benchmark's shape: one simulated minute prints the promised fields."""

from __future__ import annotations

import time


def test_benchmark_prints_the_promised_fields() -> None:
    from bench.capture import run

    started = time.monotonic()
    result = run(minutes=1, width=640, height=400)
    for key in ("unchanged_frame_ms", "changed_frame_ms", "ocr_ms_p50", "skip_ratio"):
        assert result[key] > 0, key
    assert 0 <= result["bytes_per_hour"] < 5_000_000  # page-granular: a minute may fit in 0 pages
    assert result["frames"] == 20 and result["events"] >= 1
    assert time.monotonic() - started < 60


def test_the_agents_drain_while_capture_goes_on(monkeypatch) -> None:
    """`--drain-every`: the agents (here the scripted model) take the queue as capture fills
    it; reads of one window coalesce, so they are shown no more events than they mark done."""
    from agents.llm.fakes import ScriptedChatModel
    from app import bootstrap
    from bench.capture import run

    scripted = ScriptedChatModel()
    monkeypatch.setattr(bootstrap, "make_chat_model", lambda _s: scripted)
    result = run(minutes=2, width=640, height=400, drain_every=1)
    drain = result["drain"]
    assert drain["batches"] >= 1 and drain["failed_batches"] == 0
    assert drain["events_done"] >= 1 and drain["events_shown"] <= drain["events_done"]
    assert scripted.calls and drain["model"] == "scripted"
    assert drain["keeps_up"] and drain["agent_s_per_hour"] >= drain["agent_s"]  # 2 min: x 30
