"""The memory worker: a background thread that drains the durable event queue through the loop.

Events are claimed in batches and marked done in the transaction that writes their memories.
On a failure they are released with the error (after five attempts the queue parks them as
failed, kept and retryable); a batch cut short by shutdown goes back without counting as an
attempt. A restart resumes whatever was pending or claimed. The worker's model
calls are background requests, so a chat request always goes first. Between batches it catches
the vector index up with writes it failed to take (`repair_index`), so they become searchable by
meaning without a restart, and indexes the raw events' vectors. Once a day it applies the
event retention (`keep_events_days`; 0 keeps every event).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from agents.llm.port import Cancelled
from agents.loop import BatchFailed, BatchReport, MemoryLoop
from agents.operations import Rejection
from storage.store import MemoryStore

log = logging.getLogger(__name__)

#: Seconds between two retention runs of the background worker.
RETENTION_EVERY_S = 24 * 3600.0

Listener = Callable[[BatchReport | None, BaseException | None], None]


@dataclass
class Drained:
    """What one drain of the queue did (`engram digest` and the benchmarks report it)."""

    reports: list[BatchReport] = field(default_factory=list)
    failures: int = 0
    cancelled: bool = False
    seconds: float = 0.0

    @property
    def events(self) -> int:
        return sum(len(r.event_ids) for r in self.reports)

    @property
    def writes(self) -> int:
        return sum(len(r.writes) for r in self.reports)

    @property
    def llm_calls(self) -> int:
        return sum(r.llm_calls for r in self.reports)

    @property
    def rejected(self) -> list[Rejection]:
        return [why for r in self.reports for why in r.rejected]


class MemoryWorker:
    def __init__(
        self,
        store: MemoryStore,
        loop: MemoryLoop,
        batch_size: int = 8,
        idle_s: float = 2.0,
        max_backoff_s: float = 60.0,
        on_batch: Listener | None = None,
        keep_events_days: int = 0,
    ) -> None:
        self.store = store
        self.keep_events_days = keep_events_days
        #: Events embedded per pass between batches, so a backlog never starves the agents.
        self.event_index_limit = 512
        self._retention_after = 0.0  # time.monotonic() before which retention waits
        self.loop = loop
        self.batch_size = batch_size
        self.idle_s = idle_s
        self.max_backoff_s = max_backoff_s
        self.on_batch = on_batch
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._repair_failures = 0
        self._repair_after = 0.0  # time.monotonic() before which no repair is tried

    # ----- control ---------------------------------------------------------------------------

    def start(self) -> None:
        if self.running:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="engram-memory", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 30.0) -> bool:
        """Stop after cancelling the batch in progress (its events go back to the queue).
        Returns False if the thread did not finish within `timeout_s`."""
        self._stop.set()
        self._wake.set()
        if self._thread is None:
            return True
        self._thread.join(timeout_s)
        return not self._thread.is_alive()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def wake(self) -> None:
        """New events are waiting: skip the rest of the idle wait."""
        self._wake.set()

    def backlog(self) -> dict[str, int]:
        """Events by status: pending, claimed, done, failed."""
        return self.store.events.counts()

    # ----- work ------------------------------------------------------------------------------

    def run_once(self, cancel: threading.Event | None = None) -> BatchReport | None:
        """Process one batch now, on this thread. None when the queue is empty; raises
        `BatchFailed` or `Cancelled` after returning the batch's events to the queue."""
        events = self.store.events.claim(self.batch_size)
        if not events:
            return None
        ids = [e.id for e in events]
        try:
            return self.loop.process(events, cancel)  # marks them done with its writes
        except Cancelled:
            self.store.events.release(ids, "interrupted", count_attempt=False)
            raise
        except BaseException as exc:
            self.store.events.release(ids, str(exc)[:500] or type(exc).__name__)
            raise

    def repair_index(self) -> int:
        """Index the rows a failed vector step left unindexed (and drop queued vector deletes).
        Also embeds raw events still without a vector (a bounded number per pass). Returns
        memory rows indexed; an index still failing is logged and retried after a backoff."""
        if time.monotonic() < self._repair_after:
            return 0
        try:
            done = self.store.repair_index()
            self.store.index_events(limit=self.event_index_limit)
        except Exception as exc:
            self._repair_failures += 1
            wait = min(self.idle_s * 2**self._repair_failures, self.max_backoff_s)
            self._repair_after = time.monotonic() + wait
            log.warning("the vector index is still failing (%s); retrying in %.0f s", exc, wait)
            return 0
        self._repair_failures, self._repair_after = 0, 0.0
        if done:
            log.info("indexed %d memories the vector index had missed", done)
        return done

    def retention(self) -> int:
        """Remove the raw events older than `keep_events_days`, at most once a day (the first
        time when the worker starts). Returns how many went; a failure is logged, not raised."""
        if self.keep_events_days <= 0 or time.monotonic() < self._retention_after:
            return 0
        self._retention_after = time.monotonic() + RETENTION_EVERY_S
        try:
            removed = self.store.expire_events(self.keep_events_days)
        except Exception:
            log.exception("event retention failed")
            return 0
        if removed:
            log.info(
                "retention removed %d events older than %d days", removed, self.keep_events_days
            )
        return removed

    def drain(
        self,
        max_batches: int | None = None,
        cancel: threading.Event | None = None,
        *,
        max_failures: int = 0,
        on_batch: Listener | None = None,
    ) -> Drained:
        """Process batches on this thread until the queue is empty, `max_batches` are done or
        `cancel` is set (the batch in progress goes back to the queue). A failed batch's events
        go back to the queue (parked after five attempts, so this ends); failures beyond
        `max_failures` propagate. `on_batch` hears each batch, as the thread's listener does."""
        out = Drained()
        started = time.perf_counter()
        try:
            while max_batches is None or len(out.reports) < max_batches:
                if cancel is not None and cancel.is_set():
                    out.cancelled = True
                    break
                try:
                    report = self.run_once(cancel)
                except Cancelled:
                    out.cancelled = True
                    break
                except BatchFailed as exc:
                    out.failures += 1
                    if on_batch is not None:
                        on_batch(None, exc)
                    if out.failures > max_failures:
                        raise
                    continue
                if report is None:
                    break
                out.reports.append(report)
                if on_batch is not None:
                    on_batch(report, None)
        finally:
            out.seconds = time.perf_counter() - started
        return out

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            self.retention()
            self.repair_index()
            try:
                report = self.run_once(self._stop)
            except Cancelled:
                break
            except BatchFailed as exc:
                failures += 1
                log.warning("memory batch failed (attempt %d): %s", failures, exc)
                self._notify(None, exc)
                self._sleep(min(self.idle_s * 2**failures, self.max_backoff_s))
                continue
            except Exception as exc:  # a bug or a storage error: keep the thread alive
                failures += 1
                log.exception("memory worker error")
                self._notify(None, exc)
                self._sleep(min(self.idle_s * 2**failures, self.max_backoff_s))
                continue
            failures = 0
            if report is None:
                self._sleep(self.idle_s)
            else:
                self._notify(report, None)

    def _sleep(self, seconds: float) -> None:
        self._wake.wait(seconds)
        self._wake.clear()

    def _notify(self, report: BatchReport | None, error: BaseException | None) -> None:
        if self.on_batch is not None:
            try:
                self.on_batch(report, error)
            except Exception:
                log.exception("memory worker listener failed")
