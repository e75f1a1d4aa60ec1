"""`engram suggestions`, `engram accept ID`, `engram dismiss ID`: what the memory agents would
change in memories the user wrote, for the user to decide (agents never change them)."""

from __future__ import annotations

import argparse
import json
from typing import Any


def _describe(store: Any, suggestion: Any) -> dict[str, Any]:
    found = store.get_many([suggestion.memory_id])
    return {
        "id": suggestion.id,
        "memory_id": suggestion.memory_id,
        "memory": found[0].headline() if found else None,
        "agent": suggestion.agent,
        "op": suggestion.op,
        "change": suggestion.describe(),
        "created_at": suggestion.created_at.isoformat(),
    }


def cmd_suggestions(args: argparse.Namespace) -> int:
    from app.runtime import Runtime
    from app.settings import load_settings

    with Runtime(load_settings()) as runtime:
        store = runtime.store()
        rows = [_describe(store, s) for s in store.suggestions.pending(args.memory)]
    if args.json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
    elif not rows:
        print("no suggestions")
    for row in rows if not args.json else []:
        print(f"{row['id']}  {row['memory']}\n    {row['agent']} agent: {row['change']}")
    return 0


def cmd_accept(args: argparse.Namespace) -> int:
    from app.runtime import Runtime
    from app.settings import load_settings

    with Runtime(load_settings()) as runtime:
        record = runtime.store().accept(args.id)
    print(json.dumps({"accepted": args.id, "memory_id": record.id}))
    return 0


def cmd_dismiss(args: argparse.Namespace) -> int:
    from app.runtime import Runtime
    from app.settings import load_settings

    with Runtime(load_settings()) as runtime:
        runtime.store().dismiss(args.id)
    print(json.dumps({"dismissed": args.id}))
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("suggestions", help="changes the agents suggest to memories you wrote")
    p.add_argument("--memory", help="only those on this memory id")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_suggestions)

    p = sub.add_parser("accept", help="apply a suggestion (undoable)")
    p.add_argument("id")
    p.set_defaults(func=cmd_accept)

    p = sub.add_parser("dismiss", help="turn a suggestion down; it is not made again")
    p.add_argument("id")
    p.set_defaults(func=cmd_dismiss)
