"""Fault trials for the whole ingestion path: nothing queued is lost, nothing applied twice.

    nice -n 10 python -m bench.crash --trials 100 --json

Each trial queues screen events in a fresh store (real SQLite and a real Chroma folder, the
deterministic embedder), then runs the real memory worker (`Runtime.drain`, the meta manager and
the semantic agent through the memory loop) in a child process with one fault:

- `kill:model`, `kill:commit`, `kill:index`: the child kill -9s itself inside the k-th model
  call, just before or just after the k-th COMMIT, or just before or after the k-th vector
  upsert (k random), the moments a crash could tear;
- `kill:random`: the parent kill -9s it after a random delay;
- `fault:index`, `fault:disk`, `fault:readonly`: no kill; vector upserts raise ENOSPC, or
  SQLite writes fail with "database or disk is full" / "attempt to write a readonly
  database", each with some chance, the way a full `chroma/` disk or a read-only folder does.

A second child then opens the store as the app would (recovery, index repair), puts failed
events back in the queue (`engram events --retry-failed`), drains the rest without faults,
and counts: events lost (queued but not done, or with no memory), events applied twice (a
memory written by more than one batch application), duplicate memories, SQLite's integrity
check, and Chroma/SQLite agreement (the vector ids are exactly the rows' ids, for memories and
events). The scripted model words each answer differently (it counts its calls), so a batch
applied twice leaves a second memory or a second history entry, never a silent no-op.

Children are forked from a parent that never opens Chroma (its Rust threads must not be forked).
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import os
import random
import re
import signal
import sqlite3
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from bench._setup import emit, offline_environment

FAULTS = (
    "kill:model",
    "kill:commit",
    "kill:index",
    "kill:random",
    "fault:index",
    "fault:disk",
    "fault:readonly",
)
#: Non-empty once the child's store is open: faults count from its first batch on.
ARMED: list[bool] = []
MARKER = re.compile(r"\bcanary(\d+)x(\d+)\b")
WORDS = ["reviewed", "budget", "plan", "Dana", "Priya", "Friday", "morning", "room", "Aurora"]


def event_text(trial: int, i: int) -> str:
    return (
        f"canary{trial}x{i}: Dana reviewed the budget plan with Priya on Friday morning "
        f"in room Aurora {i}"
    )


class Model:
    """The scripted model (agents/llm/fakes.py) answering as a compliant one would: the meta
    manager routes to semantic, the agent inserts one memory per observation, worded
    differently on every call."""

    def __init__(self, on_call: Callable[[int], None] = lambda n: None) -> None:
        from agents.llm.fakes import ScriptedChatModel

        self.calls = 0
        self._on_call = on_call
        self.chat = ScriptedChatModel(default=self.answer)

    def answer(self, request: Any) -> str:
        self.calls += 1
        self._on_call(self.calls)
        time.sleep(0.005)  # a model call takes time: room for a kill to land inside one
        if "meta memory manager" in request.messages[0].content:
            return json.dumps({"types": ["semantic"]})
        observed = request.messages[-1].content.split("New observations:", 1)[1]
        observed = observed.split("\n\n", 1)[0]
        ops = []
        for trial, i in dict.fromkeys(MARKER.findall(observed)):
            words = WORDS[self.calls % len(WORDS) :] + WORDS[: self.calls % len(WORDS)]
            ops.append(
                {
                    "op": "insert",
                    "name": f"canary{trial}x{i}",
                    "summary": f"canary{trial}x{i} {' '.join(words[:5])}",
                }
            )
        return json.dumps({"operations": ops})


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


@contextlib.contextmanager
def injected(fault: str, rng: random.Random) -> Iterator[Callable[[int], None]]:
    """Patch the engines for `fault`; yields the model's per-call hook."""
    from storage.sqlite_db import Database
    from storage.vector_chroma import ChromaVectorIndex

    # k counts from the first batch on (the store is open): with 9 events, 3 batches make
    # 6 model calls (the meta manager and one agent each), at least 6 transactions and 3
    # upserts.
    at = rng.randint(1, {"kill:model": 6, "kill:commit": 6, "kill:index": 3}.get(fault, 1))
    counts: Counter[str] = Counter()
    armed = ARMED
    original_tx, original_upsert = Database.transaction, ChromaVectorIndex.upsert

    def on_call(n: int) -> None:
        if fault == "kill:model" and n == at:
            _die()

    @contextlib.contextmanager
    def transaction(self: Database) -> Iterator[sqlite3.Connection]:
        counts["tx"] += bool(armed)
        n, before = counts["tx"], rng.random() < 0.5
        with original_tx(self) as conn:
            yield conn
            if fault == "kill:commit" and n == at and before:
                _die()  # the writes are made, the COMMIT is not
            if fault in ("fault:disk", "fault:readonly") and armed and rng.random() < 0.3:
                message = (
                    "database or disk is full"
                    if fault == "fault:disk"
                    else "attempt to write a readonly database"
                )
                raise sqlite3.OperationalError(message)
        if fault == "kill:commit" and n == at and not before:
            _die()  # committed, nothing after it has run

    def upsert(self: ChromaVectorIndex, collection: str, ids: Any, vectors: Any) -> None:
        counts["upsert"] += bool(armed)
        n, before = counts["upsert"], rng.random() < 0.5
        if fault == "kill:index" and n == at and before:
            _die()
        if fault == "fault:index" and rng.random() < 0.5:
            raise OSError(errno.ENOSPC, "No space left on device", "chroma")
        original_upsert(self, collection, ids, vectors)
        if fault == "kill:index" and n == at and not before:
            _die()

    Database.transaction = transaction  # type: ignore[method-assign]
    ChromaVectorIndex.upsert = upsert  # type: ignore[method-assign]
    try:
        yield on_call
    finally:
        Database.transaction = original_tx  # type: ignore[method-assign]
        ChromaVectorIndex.upsert = original_upsert  # type: ignore[method-assign]


def runtime(home: Path, model: Any) -> Any:
    from bench._setup import bench_runtime
    from storage.fakes import HashEmbedder
    from storage.vector_chroma import ChromaVectorIndex

    return bench_runtime(
        home,
        {"memory_batch_size": 3},
        embedder=HashEmbedder(),
        index_factory=ChromaVectorIndex.persistent,
        model=model,
    )


def seed(home: Path, trial: int, n_events: int) -> None:
    """Queue the trial's events (in the parent: SQLite only, no Chroma, so it may fork)."""
    from storage.fakes import HashEmbedder, MemoryVectorIndex
    from storage.records import Event
    from storage.store import MemoryStore

    with MemoryStore.open(home, HashEmbedder(), lambda _p: MemoryVectorIndex()) as store:
        store.events.put_many(
            [
                Event(source="screen", app="xterm", text=event_text(trial, i))
                for i in range(n_events)
            ]
        )


def work(home: Path, fault: str, rng: random.Random) -> None:
    """Phase one: the worker under `fault` (it may die, fail or finish)."""
    with injected(fault, rng) as on_call, runtime(home, Model(on_call).chat) as rt:
        rt.store()
        ARMED.append(True)  # the store is open (its own transactions are not counted)
        rt.drain(max_failures=50)
        rt.store().index_events()


def recover(home: Path, trial: int, n_events: int) -> dict[str, Any]:
    """Phase two: open as the app does, retry what failed, finish, and count."""
    from storage.events import EVENT_COLLECTION
    from storage.records import MemoryType, SemanticMemory

    with runtime(home, Model().chat) as rt:
        store = rt.store()  # recovery and index repair happen here
        retried = store.events.retry_failed()
        rt.drain(max_failures=5)
        store.repair_index()
        store.index_events()
        db = store._db
        status = {str(r["id"]): str(r["status"]) for r in db.query("SELECT id, status FROM events")}
        texts = {e: MARKER.search(d) for e, d in _event_texts(db)}
        memories = [
            r
            for r in store.browse(MemoryType.SEMANTIC, limit=100_000)
            if isinstance(r, SemanticMemory)
        ]
        by_marker = Counter(r.name for r in memories)
        writes: Counter[str] = Counter()
        for change in store.history(limit=100_000):
            if change.actor.startswith("agents:"):
                writes[change.memory_id] += 1
        lost = 0
        for event_id, match in texts.items():
            name = f"canary{match.group(1)}x{match.group(2)}" if match else ""
            lost += status.get(event_id) != "done" or by_marker[name] == 0
        lost += n_events - len(status)
        integrity = db.query("PRAGMA integrity_check")[0][0]
        agree = True
        for memory_type in MemoryType:
            rows = {
                str(r["id"])
                for r in db.query("SELECT id FROM memories WHERE type = ?", (memory_type.value,))
            }
            agree &= store._index.ids(store.namespace + memory_type.value) == rows
        agree &= store._index.ids(store.namespace + EVENT_COLLECTION) == set(status)
        stats = store.stats()
        return {
            "events_lost": int(lost),
            "applied_twice": sum(1 for r in memories if writes[r.id] > 1),
            "duplicate_memories": sum(n - 1 for n in by_marker.values() if n > 1),
            "integrity_ok": integrity == "ok",
            "chroma_agrees": bool(agree),
            "unindexed": stats["unindexed"] + stats["events_unindexed"],
            "retried_failed": retried,
        }


def _event_texts(db: Any) -> Iterator[tuple[str, str]]:
    for row in db.query("SELECT id, data FROM events"):
        yield str(row["id"]), str(json.loads(row["data"])["text"])


def forked(target: Callable[[], Any], kill_after_s: float | None = None) -> tuple[str, Any]:
    """Run `target` in a forked child; returns how it ended ('ok', 'error', 'killed') and its
    JSON result. `kill_after_s`: the parent kill -9s it then, if it still runs."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        os.close(read)
        code = 0
        try:
            result: Any = {"ok": target()}
        except BaseException as exc:
            result, code = {"error": f"{type(exc).__name__}: {exc}"[:300]}, 1
            if os.environ.get("ENGRAM_CRASH_DEBUG"):
                traceback.print_exc()
        with os.fdopen(write, "w") as fh:
            fh.write(json.dumps(result, default=str))
        os._exit(code)
    os.close(write)
    status: int | None = None
    if kill_after_s is not None:
        deadline = time.monotonic() + kill_after_s
        while time.monotonic() < deadline:
            done, code = os.waitpid(pid, os.WNOHANG)
            if done:
                status = code
                break
            time.sleep(0.005)
        else:
            os.kill(pid, signal.SIGKILL)
    with os.fdopen(read) as fh:
        text = fh.read()
    if status is None:
        _, status = os.waitpid(pid, 0)
    if (os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL) or not text:
        return "killed", None
    data = json.loads(text)
    return ("ok", data["ok"]) if "ok" in data else ("error", data["error"])


def trial(n: int, base: Path, rng: random.Random, n_events: int) -> dict[str, Any]:
    home = base / f"trial{n}"
    fault = FAULTS[n % len(FAULTS)]
    seed(home, n, n_events)
    child_rng = random.Random(rng.random())
    kill_after = rng.uniform(0.02, 1.0) if fault == "kill:random" else 120.0
    t0 = time.perf_counter()
    ended, detail = forked(lambda: work(home, fault, child_rng), kill_after_s=kill_after)
    t1 = time.perf_counter()
    # A recovery that hangs (it never should) ends as a failed recovery, not a stuck bench.
    how, counted = forked(lambda: recover(home, n, n_events), kill_after_s=600.0)
    t2 = time.perf_counter()
    if how != "ok":
        counted = {"recovery_failed": str(counted)}
    return {
        "trial": n,
        "fault": fault,
        "phase1": ended,
        "phase1_error": detail,
        "seconds": [round(t1 - t0, 2), round(t2 - t1, 2)],
        **counted,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--events", type=int, default=9, help="events queued per trial")
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the trial folders")
    args = parser.parse_args(argv)
    offline_environment()
    os.environ.setdefault("ENGRAM_HOME", tempfile.mkdtemp(prefix="engram-crash-home-"))
    # Imported once, before forking, so each child starts at once (chromadb alone takes
    # seconds); importing it starts no thread, opening a client does, and only children do.
    import app.runtime  # noqa: F401
    from storage.vector_chroma import import_engine

    import_engine()

    rng = random.Random(args.seed)
    started = time.perf_counter()
    rows = []
    with tempfile.TemporaryDirectory(prefix="engram-crash-") as tmp:
        base = Path(tmp)
        for n in range(args.trials):
            row = trial(n, base, rng, args.events)
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
        if args.keep:
            kept = Path(tempfile.mkdtemp(prefix="engram-crash-kept-"))
            os.rename(base, kept / "trials")
            os.mkdir(base)
    failed = [r for r in rows if "recovery_failed" in r]
    ok = [r for r in rows if "recovery_failed" not in r]
    result = {
        "trials": len(rows),
        "events_per_trial": args.events,
        "model": "scripted",
        "by_fault": dict(Counter(r["fault"] for r in rows)),
        "phase1_ended": dict(Counter(f"{r['fault']}:{r['phase1']}" for r in rows)),
        "events_lost": sum(r["events_lost"] for r in ok),
        "applied_twice": sum(r["applied_twice"] for r in ok),
        "duplicate_memories": sum(r["duplicate_memories"] for r in ok),
        "integrity_failures": sum(not r["integrity_ok"] for r in ok),
        "chroma_disagreements": sum(not r["chroma_agrees"] for r in ok),
        "left_unindexed": sum(r["unindexed"] for r in ok),
        "recoveries_failed": len(failed),
        "failed_events_retried": sum(r["retried_failed"] for r in ok),
        "seconds": round(time.perf_counter() - started, 1),
    }
    if failed:
        result["recovery_errors"] = [r["recovery_failed"] for r in failed][:5]
    emit(result, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
