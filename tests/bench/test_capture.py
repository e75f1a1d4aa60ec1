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
