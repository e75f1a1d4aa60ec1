"""What the benchmark scripts share: an offline environment, how they print their JSON, and
draining the event queue through the memory loop the way the background worker does."""

from __future__ import annotations

import json
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # bench.retrieval needs none of the agents
    from agents.loop import BatchReport
    from agents.operations import Rejection
    from agents.worker import MemoryWorker


def offline_environment() -> None:
    """No keyring prompt, no hub download, no telemetry: a benchmark measures only Engram."""
    os.environ.setdefault("ENGRAM_KEYRING", "0")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")


def emit(result: dict[str, Any], as_json: bool) -> None:
    print(json.dumps(result) if as_json else json.dumps(result, indent=2))


@dataclass
class Drained:
    reports: list[BatchReport] = field(default_factory=list)
    failures: int = 0
    seconds: float = 0.0

    @property
    def llm_calls(self) -> int:
        return sum(r.llm_calls for r in self.reports)

    @property
    def writes(self) -> int:
        return sum(len(r.writes) for r in self.reports)

    @property
    def rejected(self) -> list[Rejection]:
        return [why for r in self.reports for why in r.rejected]


def drain(worker: MemoryWorker, max_failures: int) -> Drained:
    """Run batches until the queue is empty. A failed batch's events go back to the queue (and
    are parked after five attempts), so this ends; `max_failures` ends it sooner."""
    from agents.loop import BatchFailed

    out = Drained()
    started = time.perf_counter()
    while out.failures <= max_failures:
        try:
            report = worker.run_once()
        except BatchFailed as exc:
            out.failures += 1
            print(f"  batch failed: {exc}", file=sys.stderr)
            continue
        if report is None:
            break
        out.reports.append(report)
        print(f"  batch {len(out.reports)}: {len(report.writes)} writes", file=sys.stderr)
    out.seconds = time.perf_counter() - started
    return out


def reasons(rejected: list[Rejection], most: int = 6) -> dict[str, int]:
    """Why operations were turned down, by agent, operation and reason code ("semantic update:
    ungrounded" and the like), most frequent first."""
    kinds = Counter(f"{r.agent} {r.operation}: {r.reason}" for r in rejected)
    return dict(kinds.most_common(most))
