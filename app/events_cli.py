"""`engram events`: where the event queue stands, the events the memory agents gave up on
(with why), and `--retry-failed` to put those back in the queue."""

from __future__ import annotations

import argparse
import json
from typing import Any


def cmd_events(args: argparse.Namespace) -> int:
    from app.cli import _open  # the running app's store when it holds the folder

    with _open(args) as store:
        retried = store.events.retry_failed() if args.retry_failed else None
        failed = store.events.failed(args.limit)
        counts = store.events.counts()
    out: dict[str, Any] = {"events": counts}
    if retried is not None:
        out["retried"] = retried
    out["failed"] = [
        {"id": e.id, "headline": e.headline(), "attempts": n, "error": error}
        for e, n, error in failed
    ]
    if args.json:
        print(json.dumps(out, indent=2, ensure_ascii=False))
        return 0
    print(", ".join(f"{n} {status}" for status, n in counts.items()))
    if retried is not None:
        print(f"put {retried} failed event{'s' if retried != 1 else ''} back in the queue")
    for row in out["failed"]:
        print(
            f"failed  {row['id']}  {row['headline']}\n    after {row['attempts']}: {row['error']}"
        )
    if failed and retried is None:
        print("`engram events --retry-failed` puts them back in the queue")
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("events", help="the event queue: counts, failed events, retry them")
    p.add_argument(
        "--retry-failed", action="store_true", help="put every failed event back in the queue"
    )
    p.add_argument("--limit", type=int, default=20, help="failed events to list")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_events)
