"""The fault-trial bench runs each fault once and finds nothing lost or applied twice; the
kills land (a kill that never happens would prove nothing)."""

from __future__ import annotations

import json

import pytest

from bench import crash


@pytest.mark.real
def test_one_trial_per_fault_loses_nothing_and_applies_nothing_twice(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert crash.main(["--trials", str(len(crash.FAULTS)), "--events", "9", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["trials"] == len(crash.FAULTS)
    assert result["by_fault"] == {fault: 1 for fault in crash.FAULTS}
    for key in (
        "events_lost",
        "applied_twice",
        "duplicate_memories",
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
