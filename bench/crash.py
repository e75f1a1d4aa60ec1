"""Fault trials for the whole ingestion path: nothing queued is lost, nothing applied twice.

    nice -n 10 python -m bench.crash --trials 100 --json
    nice -n 10 python -m bench.crash --model real --trials 7 --events 6 --json

Each trial queues screen events in a fresh store (real SQLite and a real Chroma folder, the
deterministic embedder), then runs the real memory worker (`Runtime.drain`, the meta manager and
the memory agents through the memory loop) in a child process with one fault:

- `kill:model`, `kill:commit`, `kill:index`: the child kill -9s itself inside the k-th model
  call, just before or just after the k-th COMMIT, or just before or after the k-th vector
  upsert (k random), the moments a crash could tear;
- `kill:random`: the parent kill -9s it after a random delay;
- `fault:index`, `fault:disk`, `fault:readonly`: no kill; vector upserts raise ENOSPC, or
  SQLite writes fail with "database or disk is full" / "attempt to write a readonly
  database", each with some chance, the way a full `chroma/` disk or a read-only folder does.

A second child then opens the store as the app would (recovery, index repair), puts failed
events back in the queue (`engram events --retry-failed`), drains the rest without faults,
and counts (bench/crash_count.py): events lost (queued but not done after recovery, or
vanished), batches applied twice (one batch's history rows in more than one transaction),
duplicate memories (identical index text), SQLite's integrity check, and Chroma/SQLite
agreement (the vector ids are exactly the rows' ids, for memories and events).

`--model scripted` (the default): a scripted model that inserts one memory per event, named
after the event's canary and worded differently on every call, so the counting can be
stricter: an event whose canary has no memory is lost too, and a memory written twice at all
(`memories_written_twice`) or a canary with two memories is a fault. `--model real`: the
memory agents run on the app's default agents' model (Qwen2.5-Coder 0.5B through llama.cpp,
one thread), loaded in each child; it decides for itself what to write (nothing for an event,
or an update of an earlier batch's memory), so only the counts above apply.

Children are forked from a parent that never opens Chroma nor loads llama.cpp (their threads
must not be forked).
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import os
import random
import shutil
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
from bench.crash_count import MARKER, agreement, count, tracking

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
MODELS = ("scripted", "real")
#: Events per memory batch: a trial's few events make several batches, so several moments.
BATCH = 3
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


class Hooked:
    """The real agents' model, counting its calls: `on_call(n)` runs once the n-th call's first
    chunk has come, while the model generates the rest (a kill there lands inside the call)."""

    def __init__(self, inner: Any, on_call: Callable[[int], None]) -> None:
        self.inner, self.calls, self._on_call = inner, 0, on_call

    @property
    def info(self) -> Any:
        return self.inner.info

    def stream(self, request: Any, cancel: Any = None) -> Iterator[str]:
        self.calls += 1
        n, hooked = self.calls, False
        for chunk in self.inner.stream(request, cancel):
            if not hooked:
                hooked = True
                self._on_call(n)
            yield chunk
        if not hooked:
            self._on_call(n)

    def close(self) -> None:
        self.inner.close()


@contextlib.contextmanager
def models(kind: str, on_call: Callable[[int], None] = lambda n: None) -> Iterator[Any]:
    """The (chat, agents) models a child lends its runtime. Real: the app's own pairing built
    by `Runtime.agent_model` (the default agents' model, Qwen 0.5B, on one thread; the tiny
    SmolLM2 as the chat model, which nothing here asks), loaded here, in the child."""
    if kind == "scripted":
        chat = Model(on_call).chat
        yield chat, chat
        return
    from app.runtime import Runtime
    from bench._setup import bench_settings

    llm = {"model": "smollm2", "model_path": None, "threads": 1, "agent_threads": 1}
    with Runtime(bench_settings(**llm, unload_after_min=0)) as shared:
        yield shared.model(), Hooked(shared.agent_model(), on_call)


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


@contextlib.contextmanager
def injected(fault: str, rng: random.Random, n_events: int) -> Iterator[Callable[[int], None]]:
    """Patch the engines for `fault`; yields the model's per-call hook."""
    from storage.sqlite_db import Database
    from storage.vector_chroma import ChromaVectorIndex

    # k counts from the first batch on (the store is open): with 9 events, 3 batches make at
    # least 6 model calls (the meta manager and one agent each), 6 transactions (claim, apply)
    # and 3 upserts.
    batches = -(-n_events // BATCH)
    most = {"kill:model": 2 * batches, "kill:commit": 2 * batches, "kill:index": batches}
    at = rng.randint(1, most.get(fault, 1))
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


def runtime(home: Path, chat: Any, agents: Any) -> Any:
    from bench._setup import bench_runtime
    from storage.fakes import HashEmbedder
    from storage.vector_chroma import ChromaVectorIndex

    # A model call may take 15 minutes, not the app's 3: on a starved CPU (a shared machine,
    # nice 10) the real model can take longer, and a batch parked after five timeouts is slow
    # hardware, not what a crash did (the timeout path has tests of its own).
    return bench_runtime(
        home,
        {"memory_batch_size": BATCH, "call_timeout_s": 900.0},
        embedder=HashEmbedder(),
        index_factory=ChromaVectorIndex.persistent,
        model=chat,
        agent_model=agents,
    )


def events(trial: int, n_events: int, kind: str) -> list[Any]:
    """The trial's events: canaries for the scripted model; for the real one, varied screen
    and chat reads (bench.ingest's), worth a memory each."""
    from storage.records import Event

    if kind == "real":
        from bench.ingest import synthetic_event

        rng = random.Random(trial)
        return [synthetic_event(i, rng) for i in range(n_events)]
    return [Event(source="screen", app="xterm", text=event_text(trial, i)) for i in range(n_events)]


def seed(home: Path, trial: int, n_events: int, kind: str = "scripted") -> None:
    """Queue the trial's events (in the parent: SQLite only, no Chroma, so it may fork)."""
    from storage.fakes import HashEmbedder, MemoryVectorIndex
    from storage.store import MemoryStore

    with MemoryStore.open(home, HashEmbedder(), lambda _p: MemoryVectorIndex()) as store:
        store.events.put_many(events(trial, n_events, kind))


def work(home: Path, fault: str, rng: random.Random, n_events: int, kind: str) -> None:
    """Phase one: the worker under `fault` (it may die, fail or finish)."""
    with (
        tracking(),
        injected(fault, rng, n_events) as on_call,
        models(kind, on_call) as (chat, agents),
        runtime(home, chat, agents) as rt,
    ):
        rt.store()
        ARMED.append(True)  # the store is open (its own transactions are not counted)
        rt.drain(max_failures=50)
        rt.store().index_events()


def recover(home: Path, n_events: int, kind: str) -> dict[str, Any]:
    """Phase two: open as the app does, retry what failed, finish, and count."""
    with tracking(), models(kind) as (chat, agents), runtime(home, chat, agents) as rt:
        store = rt.store()  # recovery and index repair happen here
        retried = store.events.retry_failed()
        rt.drain(max_failures=5)
        store.repair_index()
        store.index_events()
        counted = count(store, n_events, scripted=kind == "scripted")
        return {**counted, **agreement(store), "retried_failed": retried}


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


def trial(
    n: int, base: Path, rng: random.Random, n_events: int, kind: str = "scripted"
) -> dict[str, Any]:
    home = base / f"trial{n}"
    fault = FAULTS[n % len(FAULTS)]
    seed(home, n, n_events, kind)
    child_rng = random.Random(rng.random())
    # A real model's phase one takes minutes (loading takes 10-30 s, a batch a minute or two
    # on a busy machine): a random kill spans that, and a phase is given far longer.
    span, limit = ((0.02, 1.0), 120.0) if kind == "scripted" else ((5.0, 150.0), 1200.0)
    kill_after = rng.uniform(*span) if fault == "kill:random" else limit
    t0 = time.perf_counter()
    ended, detail = forked(
        lambda: work(home, fault, child_rng, n_events, kind), kill_after_s=kill_after
    )
    t1 = time.perf_counter()
    # A recovery that hangs (it never should) ends as a failed recovery, not a stuck bench.
    how, counted = forked(lambda: recover(home, n_events, kind), kill_after_s=max(600.0, limit))
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
    parser.add_argument(
        "--model", choices=MODELS, default="scripted", help="the memory agents' model"
    )
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the trial folders")
    args = parser.parse_args(argv)
    offline_environment()
    home = None  # a home of the bench's own, removed at the end (not the user's)
    if "ENGRAM_HOME" not in os.environ:
        home = os.environ["ENGRAM_HOME"] = tempfile.mkdtemp(prefix="engram-crash-home-")
    try:
        return _main(args)
    finally:
        if home is not None:
            shutil.rmtree(home, ignore_errors=True)
            del os.environ["ENGRAM_HOME"]


def _main(args: argparse.Namespace) -> int:
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
            row = trial(n, base, rng, args.events, args.model)
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
        "model": args.model,
        "by_fault": dict(Counter(r["fault"] for r in rows)),
        "phase1_ended": dict(Counter(f"{r['fault']}:{r['phase1']}" for r in rows)),
        "events_lost": sum(r["events_lost"] for r in ok),
        "applied_twice": sum(r["applied_twice"] for r in ok),
        "duplicate_memories": sum(r["duplicate_memories"] for r in ok),
        **(
            {"memories_written_twice": sum(r["memories_written_twice"] for r in ok)}
            if args.model == "scripted"
            else {}
        ),
        "untracked_history_rows": sum(r["untracked_history_rows"] for r in ok),
        "integrity_failures": sum(not r["integrity_ok"] for r in ok),
        "chroma_disagreements": sum(not r["chroma_agrees"] for r in ok),
        "left_unindexed": sum(r["unindexed"] for r in ok),
        "recoveries_failed": len(failed),
        "failed_events_retried": sum(r["retried_failed"] for r in ok),
        "memories": sum(r["memories"] for r in ok),
        "events_without_memory": sum(r["events_without_memory"] for r in ok),
        "later_updates": sum(r["later_updates"] for r in ok),
        "seconds_per_trial": round(sum(sum(r["seconds"]) for r in rows) / max(len(rows), 1), 1),
        "seconds": round(time.perf_counter() - started, 1),
    }
    not_done: Counter[str] = Counter()
    for r in ok:
        not_done.update(r["not_done"])
    if not_done:
        result["not_done"] = dict(not_done.most_common(5))
    if failed:
        result["recovery_errors"] = [r["recovery_failed"] for r in failed][:5]
    emit(result, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
