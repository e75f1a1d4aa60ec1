"""`engram ask QUESTION` (streams an answer with its sources) and `engram digest` (runs the
memory agents over the events waiting in the queue)."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections import Counter
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the models and agents load for these commands, not for `engram`'s parser
    from agents.chat import ChatResult
    from agents.loop import BatchReport


def cmd_ask(args: argparse.Namespace) -> int:
    from app.runtime import Runtime
    from app.settings import load_settings

    with Runtime(load_settings(), record_turns=not args.no_record) as runtime:
        reply = runtime.chat_agent().ask(args.question)
        interrupted = False
        try:
            for chunk in reply:
                if not args.json:
                    print(chunk, end="", flush=True)
        except KeyboardInterrupt:
            reply.cancel()
            interrupted = True
        result = reply.result
    if args.json:
        print(json.dumps(result_json(result), ensure_ascii=False, indent=2))
    else:
        print()
        print_sources(result)
    return 130 if interrupted else 0


def result_json(result: ChatResult) -> dict[str, Any]:
    return {
        "question": result.question,
        "answer": result.answer,
        "citations": [
            {
                "tag": c.tag,
                "id": c.memory_id,
                "type": str(c.memory_type),
                "headline": c.headline,
                "explicit": c.explicit,
            }
            for c in result.citations
        ],
        "retrieved": [
            {"tag": i.tag, "id": i.record.id, "type": str(i.record.kind)}
            for i in result.context.items
        ],
        "topic": result.context.topic,
        "ttft_ms": None if result.ttft_ms is None else round(result.ttft_ms, 1),
        "retrieval_ms": round(result.context.retrieval_ms, 1),
        "tokens": result.tokens,
        "seconds": round(result.seconds, 3),
        "cancelled": result.cancelled,
        "event_id": result.event_id,
    }


def print_sources(result: ChatResult) -> None:
    if result.cancelled:
        print("(stopped)")
    if not result.citations:
        if result.context.items:
            print(f"(no memory cited; {len(result.context.items)} were in the prompt)")
        else:
            print("(no stored memory matched the question)")
        return
    print("Sources:")
    for c in result.citations:
        how = "" if c.explicit else " (inferred)"
        print(f"  [{c.tag}] {c.memory_type}: {c.headline}  id={c.memory_id}{how}")


def cmd_digest(args: argparse.Namespace) -> int:
    from app.runtime import Runtime
    from app.settings import load_settings

    def progress(report: BatchReport | None, error: BaseException | None) -> None:
        if report is not None:
            print(
                f"batch {report.batch_id}: {len(report.event_ids)} events → "
                f"{len(report.writes)} writes ({report.seconds:.1f} s)",
                file=sys.stderr,
            )
            for why in report.rejected:
                print(f"  rejected ({why.reason}): {why}", file=sys.stderr)

    stop = threading.Event()

    def interrupt(*_: object) -> None:  # the first Ctrl-C stops after the model's next token
        stop.set()
        signal.signal(signal.SIGINT, previous)

    previous = signal.signal(signal.SIGINT, interrupt)
    try:
        with Runtime(load_settings()) as runtime:
            drained = runtime.drain(args.batches, stop, on_batch=progress)
            backlog = runtime.store().events.counts()
    finally:
        signal.signal(signal.SIGINT, previous)
    if drained.cancelled:
        print("stopped; the batch in progress stays queued", file=sys.stderr)
    summary = {
        "batches": len(drained.reports),
        "events": drained.events,
        "writes": drained.writes,
        "rejected": len(drained.rejected),
        "llm_calls": drained.llm_calls,
        "rejection_reasons": dict(Counter(why.reason for why in drained.rejected)),
        "backlog": backlog,
    }
    print(json.dumps(summary, indent=None if args.json else 2))
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("ask", help="ask your memories a question (streams the answer)")
    p.add_argument("question")
    p.add_argument("--json", action="store_true", help="print one JSON object at the end")
    p.add_argument(
        "--no-record", action="store_true", help="do not keep this turn as a memory event"
    )
    p.set_defaults(func=cmd_ask)

    p = sub.add_parser("digest", help="run the memory agents over the queued events")
    p.add_argument("--batches", type=int, help="stop after this many batches")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_digest)
