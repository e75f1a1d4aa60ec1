"""Capture benchmark: `python -m bench.capture --json`.

Starts its own Xvfb, shows a real Tk window, and plays a scripted hour of use through the real
pipeline (mss, python-xlib, tesseract, redaction, the SQLite queue and health log): reading
(static screens, where only the forced re-read fires), writing (a line added every 30 s), switching
to a new page, a password manager in front for a while. Time is simulated: each tick is one
capture interval (3 s), played back to back, so an hour takes about a minute.

Prints {"unchanged_frame_ms", "changed_frame_ms", "ocr_ms_p50", "skip_ratio", "bytes_per_hour"}:
- unchanged_frame_ms: median CPU time of this process for a look that was skipped as unchanged
  (grab, window query, grayscale, thumbnail, compare, gap log) - the cost capture pays all day;
- changed_frame_ms: median wall time from grab to queued event for a frame that was read;
- ocr_ms_p50: median tesseract time; skip_ratio: share of grabbed frames never sent to OCR
  (unchanged, or an excluded window in front);
- bytes_per_hour: growth of the SQLite files (events and gaps, after a WAL checkpoint), per hour.
Targets: unchanged_frame_ms <= 30, bytes_per_hour <= 5 MB.

`--drain-every M` also runs the memory agents (the configured agents' model, as the worker
does) over the queue every M simulated minutes, as the background worker would take events
while capture goes on (events the agents took are not merged into any more: later reads become
new events, which the agents' batching coalesces). Under "drain": events, what the agents were
shown after coalescing, skipped batches, model calls, and `agent_s`, the seconds the agents
took; they keep up when that is under the simulated time. Run `--minutes` short of an hour on a
loaded machine and scale (`agent_s_per_hour`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import sqlite3
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from app.runtime import Runtime
from bench._setup import bench_settings
from capture.config import CaptureSettings
from capture.screen_mss import MssScreen
from capture.service import CaptureService, build_service
from capture.window_x11 import X11Windows
from storage.fakes import HashEmbedder, MemoryVectorIndex
from storage.store import MemoryStore
from tests.helpers.xscreen import TkWindow, Xvfb

WORDS = (
    "the capture pipeline reads text from the screen and keeps what matters for later memory "
    "agents summarise events into episodes facts and procedures while the user works on code "
    "review meeting notes budget plan release schedule customer feedback design document draft "
    "invoice travel booking recipe shopping list research paper chapter figure table results"
).split()


def _page(rng: random.Random, lines: int = 14) -> list[str]:
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(7, 11))) for _ in range(lines)]


def _script(minutes: int, interval_s: float, rng: random.Random) -> list[tuple[str, Any]]:
    """One action per tick: ("same", None), ("page", lines), ("type", line), ("app", name)."""
    ticks = int(minutes * 60 / interval_s)
    actions: list[tuple[str, Any]] = []
    while len(actions) < ticks:
        kind = rng.choices(["read", "write", "vault"], weights=[5, 4, 1])[0]
        span = int(rng.uniform(3, 6) * 60 / interval_s)  # one activity: 3-6 minutes
        if kind == "vault":
            actions.append(("app", "KeePassXC"))
            actions += [("same", None)] * (span // 3)
            actions.append(("app", "Gedit"))
            continue
        actions.append(("page", _page(rng)))
        for n in range(1, span):
            every = int(30 / interval_s)
            typing = kind == "write" and n % every == 0
            actions.append(
                ("type", " ".join(rng.choices(WORDS, k=8))) if typing else ("same", None)
            )
    return actions[:ticks]


def _db_bytes(path: Path) -> int:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


class _Drains:
    """The agents' runs over the queue during a capture run, added up."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.reports: list[Any] = []
        self.failures = 0
        self.seconds = 0.0

    def drain(self) -> None:
        drained = self.runtime.drain(max_failures=3)
        self.reports += drained.reports
        self.failures += drained.failures
        self.seconds += drained.seconds

    def summary(self, minutes: int) -> dict[str, Any]:
        reports = self.reports
        return {
            "batches": len(reports),
            "failed_batches": self.failures,
            "events_done": sum(len(r.event_ids) for r in reports),
            "events_shown": sum(r.shown for r in reports),
            "batches_skipped": sum(1 for r in reports if r.llm_calls == 0),
            "llm_calls": sum(r.llm_calls for r in reports),
            "writes": sum(len(r.writes) for r in reports),
            "agent_s": round(self.seconds, 1),
            "agent_s_per_hour": round(self.seconds * 60 / minutes, 1),
            "keeps_up": self.seconds < minutes * 60,
            "model": self.runtime.agent_model().info.name,
        }


def run(
    minutes: int = 60, width: int = 1280, height: int = 800, seed: int = 7, drain_every: int = 0
) -> dict[str, Any]:
    rng = random.Random(seed)
    settings = CaptureSettings(interval_s=3.0, force_reread_s=300.0)
    actions = _script(minutes, settings.interval_s, rng)
    with tempfile.TemporaryDirectory() as tmp, Xvfb(width, height) as x:

        def on_this_screen(store: MemoryStore, cs: CaptureSettings) -> CaptureService:
            screen, windows = MssScreen(x.display), X11Windows(x.display)
            return build_service(store, cs, screen=screen, windows=windows)

        runtime = Runtime(
            bench_settings().model_copy(update={"capture": settings}),
            data_dir=Path(tmp),
            embedder=HashEmbedder(),  # capture embeds nothing
            index_factory=lambda _path: MemoryVectorIndex(),
            capture_factory=on_this_screen,
        )
        db_path = Path(tmp) / "engram.sqlite3"
        pipeline = runtime.capture().pipeline
        window = TkWindow(
            x.display, "", app="Gedit", title="draft.txt - Gedit", x=0, y=0,
            width=width, height=height - 40, font_size=14,
        )  # fmt: skip
        vault = TkWindow(
            x.display, "Entry: bank\nUser: alice\nNotes: recovery codes 1234 5678",
            app="KeePassXC", title="Passwords.kdbx - KeePassXC", x=width - 420,
            y=height - 280, width=400, height=220,
        )  # fmt: skip
        x.set_active(window.id)
        start_bytes = _db_bytes(db_path)
        t0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
        lines: list[str] = []
        unchanged_cpu: list[float] = []
        changed_wall: list[float] = []
        drains = _Drains(runtime) if drain_every else None
        every = int(drain_every * 60 / settings.interval_s)
        try:
            for tick, (action, arg) in enumerate(actions):
                if drains is not None and tick and tick % every == 0:
                    drains.drain()  # the worker takes what capture queued meanwhile
                if action == "page":
                    lines = list(arg)
                    window.set_text("\n".join(lines))
                elif action == "type":
                    lines = [*lines[1:], arg] if len(lines) >= 18 else [*lines, arg]
                    window.set_text("\n".join(lines))
                elif action == "app":
                    x.set_active(vault.id if arg == "KeePassXC" else window.id)
                now = t0 + timedelta(seconds=tick * settings.interval_s)
                unchanged_before = pipeline.counters.unchanged
                cpu, wall = time.thread_time(), time.perf_counter()
                frames = pipeline.sample(now)
                if pipeline.counters.unchanged > unchanged_before:
                    unchanged_cpu.append((time.thread_time() - cpu) * 1000)
                for frame in frames:
                    pipeline.process(frame)
                    changed_wall.append((time.perf_counter() - wall) * 1000)
            runtime.capture_log().flush()
            grown = _db_bytes(db_path) - start_bytes
            if drains is not None:
                drains.drain()  # what is left at the end
            drained = drains.summary(minutes) if drains is not None else None
        finally:
            window.close()
            vault.close()
            runtime.close()
    c = pipeline.counters
    return {
        "unchanged_frame_ms": round(statistics.median(unchanged_cpu), 2),
        "changed_frame_ms": round(statistics.median(changed_wall), 1),
        "ocr_ms_p50": round(statistics.median(c.ocr_ms), 1),
        "skip_ratio": round(1 - c.ocr_runs / c.frames, 4) if c.frames else 0.0,
        "bytes_per_hour": round(grown * 60 / minutes),
        "unchanged_frame_ms_p95": round(statistics.quantiles(unchanged_cpu, n=20)[-1], 2),
        "simulated_minutes": minutes,
        "frames": c.frames,
        "ocr_runs": c.ocr_runs,
        "unchanged": c.unchanged,
        "events": c.events,
        "screen": f"{width}x{height}",
        **({"drain": drained} if drained else {}),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print JSON only")
    parser.add_argument("--minutes", type=int, default=60, help="simulated minutes (default 60)")
    parser.add_argument("--size", default="1280x800", help="screen size, e.g. 1920x1080")
    parser.add_argument("--drain-every", type=int, default=0, help="agents every M minutes")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.lower().split("x"))
    result = run(args.minutes, width, height, drain_every=args.drain_every)
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>24}: {value}")


if __name__ == "__main__":
    main()
