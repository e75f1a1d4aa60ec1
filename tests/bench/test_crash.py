"""The fault-trial bench runs each fault once and finds nothing lost or applied twice; the
kills land (a kill that never happens would prove nothing)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench import crash

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.real
def test_one_trial_per_fault_loses_nothing_and_applies_nothing_twice(tmp_path: Path) -> None:
    # A process of its own, as `python -m bench.crash` runs: the bench forks its children, and
    # a test process that has opened Chroma (any earlier test) must not be forked (its Rust
    # runtime's threads do not survive a fork: the child hangs).
    out = subprocess.run(
        [sys.executable, "-m", "bench.crash", "--trials", str(len(crash.FAULTS)), "--events",
         "9", "--json"],
        cwd=ROOT, capture_output=True, text=True, timeout=900, check=False,
        env={k: v for k, v in os.environ.items() if k != "ENGRAM_HOME"} | {"TMPDIR": str(tmp_path)},
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout)
    assert result["trials"] == len(crash.FAULTS)
    assert result["by_fault"] == {fault: 1 for fault in crash.FAULTS}
    assert result["model"] == "scripted"
    assert result["memories"] == 9 * len(crash.FAULTS)  # one per event: none lost, none twice
    for key in (
        "events_lost",
        "applied_twice",
        "duplicate_memories",
        "memories_written_twice",
        "untracked_history_rows",
        "integrity_failures",
        "chroma_disagreements",
        "left_unindexed",
        "recoveries_failed",
    ):
        assert result[key] == 0, (key, result)
    ended = result["phase1_ended"]
    assert ended["kill:model:killed"] == 1 and ended["kill:index:killed"] == 1
    assert ended["kill:commit:killed"] == 1
    assert "fault:disk:ok" not in ended or "fault:index:ok" not in ended  # faults did fire
    assert list(tmp_path.iterdir()) == []  # its home and trial folders are gone


def test_the_real_models_hook_runs_inside_each_call_after_its_first_chunk() -> None:
    # kill:model must land while the model generates: the hook sees the call's number once
    # a chunk has come and before the rest has.
    from agents.llm.fakes import ScriptedChatModel
    from agents.llm.port import Request, complete, messages

    seen: list[tuple[int, int]] = []
    inner = ScriptedChatModel("one two three", "four five")
    got: list[str] = []

    def on_call(n: int) -> None:
        seen.append((n, len(got)))

    model = crash.Hooked(inner, on_call)
    assert model.info is inner.info
    for chunk in model.stream(Request(messages("system", "first"))):
        got.append(chunk)
    assert complete(model, Request(messages("system", "second"))) == "four five"
    assert seen == [(1, 0), (2, 3)]  # call 1 before its second chunk was taken; then call 2
    assert got == ["one", " two", " three"]
