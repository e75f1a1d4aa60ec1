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


def test_the_drain_share_is_measured_and_extrapolated(monkeypatch) -> None:
    """`--drain`: the agents (here the scripted model) take a share of the queue; reads of one
    window coalesce, so they are shown fewer events than they mark done."""
    from agents.llm.fakes import ScriptedChatModel
    from app import bootstrap
    from bench.capture import run

    scripted = ScriptedChatModel()
    monkeypatch.setattr(bootstrap, "make_chat_model", lambda _s: scripted)
    result = run(minutes=2, width=640, height=400, drain=1)
    drain = result["drain"]
    assert drain["batches"] == 1 and drain["failed_batches"] == 0
    assert 1 <= drain["events_done"] <= drain["events_queued"] == result["events"]
    assert drain["events_shown"] <= drain["events_done"] and scripted.calls
    assert drain["projected_s"] >= drain["seconds"] and drain["model"] == "scripted"
