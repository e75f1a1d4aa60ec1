"""The import and MCP benchmarks' shape: small runs print the promised fields."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


@pytest.mark.parametrize("fmt", ["jsonl", "whatsapp", "chatgpt"])
def test_import_benchmark(tmp_path: Path, fmt: str) -> None:
    from bench.imports import run

    result = run(120, fmt, "hash", tmp_path, seed=3)
    assert result["first_import"]["new"] == 120 and result["events_per_s"] > 0
    assert result["first_import"]["redacted"] > 0
    assert (result["second_import_new"], result["second_import_duplicates"]) == (0, 120)
    assert result["events_queued_for_agents"] == 120
    assert result["secret_in_search_results"] is False
    assert result["peak_rss_mb_after_import"] >= result["peak_rss_mb_before_import"] > 0


@pytest.mark.slow
def test_mcp_benchmark(capfd: pytest.CaptureFixture[str]) -> None:
    from bench.mcp import main

    assert main(["--memories", "60", "--calls", "5", "--embedder", "hash", "--json"]) == 0
    result = json.loads(capfd.readouterr().out)
    assert result["tools_listed"] == ["get_memory", "recent_activity", "search_memories"]
    assert result["search_calls"] == 5 and result["search_round_trip_p50_ms"] > 0
    assert result["results_per_call_mean"] > 0
