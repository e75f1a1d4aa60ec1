"""What the benchmark scripts share: an offline environment, how they print their JSON, and the
product's own runtime on a fresh folder (so a benchmark measures Engram's wiring, not a copy)."""

from __future__ import annotations

import json
import os
import sys
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # bench.retrieval needs none of the agents
    from agents.loop import BatchReport
    from agents.operations import Rejection
    from agents.worker import Listener
    from app.runtime import Runtime
    from app.settings import Settings


def offline_environment() -> None:
    """No keyring prompt, no hub download, no telemetry: a benchmark measures only Engram."""
    os.environ.setdefault("ENGRAM_KEYRING", "0")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")


def emit(result: dict[str, Any], as_json: bool) -> None:
    print(json.dumps(result) if as_json else json.dumps(result, indent=2))


def bench_settings(**llm: Any) -> Settings:
    """The user's settings with the `llm` knobs a benchmark turns (batch size, answer tokens),
    validated; vectors stay in the benchmark's folder, never on the user's Chroma server."""
    from app.settings import Settings, load_settings

    settings = load_settings()
    data = settings.model_dump()
    data.update(chroma_url=None, llm={**data["llm"], **llm})
    return Settings.model_validate(data)


def bench_runtime(data_dir: Path, llm: dict[str, Any] | None = None, **runtime: Any) -> Runtime:
    """The runtime the app uses, on `bench_settings(**llm)`, with its store in `data_dir` (a
    fresh temporary folder) and chat turns not recorded. `runtime` goes to `Runtime` (an
    injected embedder or vector index, a lent model)."""
    from app.runtime import Runtime

    return Runtime(bench_settings(**(llm or {})), data_dir=data_dir, record_turns=False, **runtime)


def progress() -> Listener:
    """Prints each drained batch (and each failure) on stderr."""
    done = 0

    def on_batch(report: BatchReport | None, error: BaseException | None) -> None:
        nonlocal done
        if report is None:
            print(f"  batch failed: {error}", file=sys.stderr)
            return
        done += 1
        print(f"  batch {done}: {len(report.writes)} writes", file=sys.stderr)

    return on_batch


def reason_counts(rejected: Iterable[Rejection]) -> Counter[str]:
    """Operations turned down, counted by agent, operation and reason code ("semantic update:
    ungrounded" and the like)."""
    return Counter(f"{r.agent} {r.operation}: {r.reason}" for r in rejected)


def reasons(rejected: list[Rejection], most: int = 6) -> dict[str, int]:
    """Why operations were turned down (see `reason_counts`), most frequent first."""
    return dict(reason_counts(rejected).most_common(most))
