"""`engram`: the headless command line, usable in scripts (JSON output where it matters)."""

from __future__ import annotations

import argparse
import importlib
import json
import sqlite3
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.routing import SERVING, route, user_path
from storage.errors import EngramError, InvalidText, NotFound, from_os_error

# A command routed to the running app needs none of these (app/routing.py: `route`), so they
# load where a command runs here, not when this module is imported.
if TYPE_CHECKING:
    from storage.records import MemoryType, Record
    from storage.store import Hit, MemoryStore

#: Modules that add subcommands: each has `register(subparsers)`. Keeps feature CLIs apart.
COMMAND_MODULES: list[str] = [
    "app.doctor",
    "app.capture_cli",
    "app.chat_cli",
    "app.suggestions_cli",
    "app.events_cli",
    "app.mcp_cli",
    "app.importers.cli",
]


def record_from_text(memory_type: MemoryType, text: str, args: argparse.Namespace) -> Record:
    """Build a record of `memory_type` whose main field is `text`; options fill the rest."""
    from storage.records import (
        CoreBlock,
        EpisodicMemory,
        MemoryType,
        ProceduralMemory,
        ResourceMemory,
        SemanticMemory,
        VaultEntry,
        check_text,
    )

    check_text(text)
    for option in ("name", "label", "caption", "actor", "tree", "occurred_at"):
        value = getattr(args, option, None)
        if value:  # argv's undecodable bytes arrive as lone surrogates
            check_text(value, field=f"--{option.replace('_', '-')}")
    for source in args.provenance or ():
        check_text(source, field="--provenance")
    common: dict[str, Any] = {
        "provenance": tuple(args.provenance or ()),
        "tree_path": tuple(p for p in (args.tree or "").split("/") if p),
    }
    first_line = text.strip().splitlines()[0][:120]
    if memory_type is MemoryType.EPISODIC:
        when = _parse_time(args.occurred_at) if args.occurred_at else None
        extra = {"occurred_at": when} if when else {}
        return EpisodicMemory(summary=text, actor=args.actor or "user", **extra, **common)
    if memory_type is MemoryType.SEMANTIC:
        return SemanticMemory(name=args.name or first_line, summary=text, **common)
    if memory_type is MemoryType.PROCEDURAL:
        steps = tuple(s.strip() for s in text.splitlines()[1:] if s.strip())
        return ProceduralMemory(summary=first_line, steps=steps, **common)
    if memory_type is MemoryType.RESOURCE:
        return ResourceMemory(title=args.name or first_line, content=text, **common)
    if memory_type is MemoryType.KNOWLEDGE_VAULT:
        if not args.caption:
            raise InvalidText("a knowledge_vault entry needs --caption (what the secret is)")
        return VaultEntry(
            secret_value=text, caption=args.caption, sensitivity=args.sensitivity, **common
        )
    return CoreBlock(label=args.label or "human", value=text, **common)


def _parse_time(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise InvalidText(
            f"{value!r} is not an ISO 8601 time (e.g. 2026-11-22T09:30+01:00)"
        ) from exc
    if parsed.tzinfo is None:
        parsed = parsed.astimezone()  # local time, made explicit
    return parsed


def _hit_json(hit: Hit) -> dict[str, Any]:
    from storage.records import VaultEntry
    from storage.store import EventHit

    if isinstance(hit, EventHit):
        event = hit.event
        return {
            "id": event.id,
            "type": "event",
            "score": round(hit.score, 6),
            "ranks": hit.ranks,
            "headline": event.headline(),
            "origin": event.origin(),
            "time": event.occurred_at.isoformat(),
            "provenance": list(event.provenance),
            "record": event.model_dump(mode="json"),
        }
    record = hit.record.masked() if isinstance(hit.record, VaultEntry) else hit.record
    return {
        "id": record.id,
        "type": record.kind.value,
        "score": round(hit.score, 6),
        "ranks": hit.ranks,
        "headline": record.headline(),
        "time": record.timestamp.isoformat(),
        "provenance": list(record.provenance),
        "record": record.model_dump(mode="json"),
    }


@contextmanager
def _open(args: argparse.Namespace) -> Iterator[MemoryStore]:
    """The store: the running instance's when this command runs there (app/routing.py)."""
    from app.runtime import Runtime
    from app.settings import load_settings

    serving = SERVING.get()
    if serving is not None:
        yield serving.store()
        return
    with Runtime(load_settings()) as runtime:
        yield runtime.store()


def cmd_add(args: argparse.Namespace) -> int:
    from storage.records import MemoryType, check_text

    text = sys.stdin.read() if args.text == "-" else args.text
    memory_type = MemoryType(args.type)
    with _open(args) as store:
        if memory_type is MemoryType.CORE:
            check_text(text)
            label = args.label or "human"
            block = store.append_core(label, text) if args.append else store.set_core(label, text)
            _warn_if_unindexed(store, block)
            print(
                json.dumps(
                    {
                        "id": block.id,
                        "type": "core",
                        "label": label,
                        "chars": len(block.value),
                        "limit": block.limit,
                    }
                )
            )
            return 0
        record = store.add(record_from_text(memory_type, text, args))
        _warn_if_unindexed(store, record)
        print(json.dumps({"id": record.id, "type": record.kind.value}))
    return 0


def _warn_if_unindexed(store: MemoryStore, record: Record) -> None:
    """Stored, but not in the vector index yet: a warning, not an error, so that nobody adds
    the memory again (a second copy) to get past it."""
    warning = store.index_warning([record])
    if warning:
        print(f"engram: warning: {warning}", file=sys.stderr)


def _warn_if_damaged(store: MemoryStore) -> None:
    """Damaged rows were skipped (a list, a search, an export): say which, so they are not
    silently missing."""
    if store.skipped_damaged:
        ids = sorted(store.skipped_damaged)
        shown = ", ".join(ids[:5]) + (f" and {len(ids) - 5} more" if len(ids) > 5 else "")
        print(
            f"engram: warning: skipped {len(ids)} damaged "
            f"{'memory' if len(ids) == 1 else 'memories'} that cannot be read ({shown}); "
            "`engram doctor` lists them",
            file=sys.stderr,
        )


def cmd_search(args: argparse.Namespace) -> int:
    from storage.records import MemoryType, check_text
    from storage.store import EventHit

    check_text(args.query, field="the search query")
    types = [MemoryType(args.type)] if args.type else None
    since = _parse_time(args.since) if args.since else None
    until = _parse_time(args.until) if args.until else None
    with _open(args) as store:
        hits = store.search(
            args.query,
            types=types,
            k=args.k,
            since=since,
            until=until,
            events=False if args.no_events else None,
        )
        _warn_if_damaged(store)
    if args.json:
        print(json.dumps([_hit_json(h) for h in hits], ensure_ascii=False, indent=2))
        return 0
    if not hits:
        print("no memories match")
    for n, hit in enumerate(hits, start=1):
        if isinstance(hit, EventHit):
            print(f"{n:>2}. [event] {hit.event.headline()}")
            print(f"    {hit.event.origin()}  id={hit.event.id}")
            continue
        when = hit.record.timestamp.astimezone().strftime("%Y-%m-%d %H:%M")
        print(f"{n:>2}. [{hit.record.kind.value}] {hit.record.headline()}")
        print(f"    {when}  id={hit.record.id}")
    return 0


def cmd_get(args: argparse.Namespace) -> int:
    """A memory with its sources ("why do I know this?"), or a raw event, its own source."""
    from storage.records import VaultEntry

    with _open(args) as store:
        try:
            record = store.get(args.id)
        except NotFound as missing:
            if store.events.expired([args.id]):
                raise NotFound(
                    f"event {args.id} was removed by retention (source expired)"
                ) from None
            found = store.events.get_many([args.id])
            if not found:
                raise missing from None
            event = found[0]
            out = event.model_dump(mode="json")
            out.update(
                type="event",
                origin=event.origin(),
                status=store.events.status_of(event.id),
                sources=[event.model_dump(mode="json")],
            )
            print(json.dumps(out, ensure_ascii=False, indent=2))
            return 0
        if isinstance(record, VaultEntry) and not args.reveal:
            record = record.masked()
        out = record.model_dump(mode="json")
        out["type"] = record.kind.value
        sources = store.events.get_many(record.provenance)
        out["sources"] = [e.model_dump(mode="json") for e in sources]
        out["sources"] += [
            {"id": i, "note": "source expired"} for i in store.events.expired(record.provenance)
        ]
    print(json.dumps(out, ensure_ascii=False, indent=2))
    return 0


def cmd_retention(args: argparse.Namespace) -> int:
    """Remove raw events older than the retention setting (or `--days`); `--dry-run` counts."""
    from app.settings import load_settings

    days = args.days if args.days is not None else load_settings().keep_events_days
    with _open(args) as store:
        n = store.expire_events(days, dry_run=args.dry_run)
    key = "would_remove" if args.dry_run else "removed"
    out: dict[str, Any] = {"keep_days": days, key: n}
    if days <= 0:
        out["note"] = "retention is off (0 keeps every event)"
    print(json.dumps(out))
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    with _open(args) as store:
        record = store.delete(args.id)
        _warn_if_unindexed(store, record)
    print(json.dumps({"deleted": record.id, "type": record.kind.value}))
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    with _open(args) as store:
        changes = store.history(args.id, limit=args.limit)
    for c in changes:
        extra = f" (reverts {c.reverts})" if c.reverts else ""
        print(
            f"{c.seq:>6}  {c.at.astimezone():%Y-%m-%d %H:%M:%S}  {c.op:<6} "
            f"{c.memory_type.value:<15} {c.memory_id}  by {c.actor}{extra}"
        )
    return 0


def cmd_undo(args: argparse.Namespace) -> int:
    with _open(args) as store:
        change = store.undo(args.seq)
    print(json.dumps({"undone": change.reverts, "memory_id": change.memory_id, "seq": change.seq}))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from storage.exchange import export_store

    with _open(args) as store:
        counts = export_store(store, Path(args.dir), reveal_secrets=args.reveal_secrets)
        _warn_if_damaged(store)
    print(json.dumps({"exported": counts, "dir": str(Path(args.dir).resolve())}))
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from storage.exchange import import_store

    with _open(args) as store:
        counts = import_store(store, Path(args.dir))
    print(json.dumps({"imported": counts}))
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    with _open(args) as store:
        stats = store.stats()
    print(json.dumps(stats, indent=2))
    return 0


def cmd_reindex(args: argparse.Namespace) -> int:
    def progress(done: int, total: int) -> None:
        print(f"\rre-indexed {done}/{total}", end="", file=sys.stderr, flush=True)

    with _open(args) as store:
        n = store.reindex(progress)
    print(file=sys.stderr)
    print(json.dumps({"reindexed": n}))
    return 0


def cmd_default(args: argparse.Namespace) -> int:
    """No command: until the desktop app exists, show where the store stands."""
    print("Engram (headless). The store is ready; try `engram add` and `engram search`.\n")
    return cmd_stats(args)


class _VersionAction(argparse.Action):
    """argparse's own version action wants the text up front; this one computes it only when
    asked, because it runs `tesseract --version`."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *_: Any) -> None:
        from app.version import version_text

        print(version_text())
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    from app.api import TYPE_NAMES
    from storage.kinds import kind_spec
    from storage.records import MemoryType

    vault = kind_spec(MemoryType.KNOWLEDGE_VAULT)
    parser = argparse.ArgumentParser(prog="engram", description=__doc__)
    parser.add_argument(
        "--version",
        action=_VersionAction,
        help="print the version of Engram and of its engines, and exit",
    )
    parser.set_defaults(func=cmd_default)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("add", help="add a memory (TEXT, or - to read standard input)")
    p.add_argument("--type", required=True, choices=TYPE_NAMES)
    p.add_argument("text", metavar="TEXT")
    p.add_argument("--name", help="semantic name / resource title (default: first line)")
    p.add_argument("--label", help="core block label (default: human)")
    p.add_argument("--append", action="store_true", help="core: append to the block")
    p.add_argument("--caption", help="knowledge_vault: what the secret is")
    p.add_argument("--sensitivity", choices=vault.choices("sensitivity"), default="medium")
    p.add_argument("--actor", help="episodic: who acted (default: user)")
    p.add_argument("--occurred-at", help="episodic: ISO 8601 time (default: now)")
    p.add_argument("--tree", help="tree path, e.g. work/projects/engram")
    p.add_argument("--provenance", nargs="*", help="source event or external ids")
    p.set_defaults(func=cmd_add)

    p = sub.add_parser("search", help="hybrid search across memories")
    p.add_argument("query")
    p.add_argument("--type", choices=TYPE_NAMES)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--since", help="ISO 8601 start (inclusive)")
    p.add_argument("--until", help="ISO 8601 end (exclusive)")
    p.add_argument("--no-events", action="store_true", help="memories only, no raw events")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("get", help="show one memory with its source events, or one event")
    p.add_argument("id")
    p.add_argument("--reveal", action="store_true", help="show a vault secret")
    p.set_defaults(func=cmd_get)

    p = sub.add_parser("delete", help="delete a memory (undoable)")
    p.add_argument("id")
    p.set_defaults(func=cmd_delete)

    p = sub.add_parser("history", help="recent changes, newest first")
    p.add_argument("id", nargs="?")
    p.add_argument("--limit", type=int, default=20)
    p.set_defaults(func=cmd_history)

    p = sub.add_parser("undo", help="revert the last change, or history entry SEQ")
    p.add_argument("seq", nargs="?", type=int)
    p.set_defaults(func=cmd_undo)

    p = sub.add_parser("export", help="export every memory to a folder")
    p.add_argument("dir", type=user_path)
    p.add_argument(
        "--reveal-secrets",
        action="store_true",
        help="write vault secrets in plain text (default: encrypted)",
    )
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("import", help="import an export folder")
    p.add_argument("dir", type=user_path)
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("stats", help="counts and health of the store")
    p.set_defaults(func=cmd_stats)

    p = sub.add_parser("reindex", help="re-embed every memory")
    p.set_defaults(func=cmd_reindex)

    p = sub.add_parser("retention", help="remove raw events older than the retention setting")
    p.add_argument("--dry-run", action="store_true", help="only count what would be removed")
    p.add_argument("--days", type=int, help="keep this many days (default: the setting)")
    p.set_defaults(func=cmd_retention)

    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        routed = route(argv)  # the app holds the store: ask it, before anything heavy loads
        if routed is not None:
            return routed
        args = build_parser().parse_args(argv)
        return int(args.func(args))
    except EngramError as exc:
        print(f"engram: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a file or folder at fault, wherever it was met
        print(f"engram: error: {from_os_error(exc)}", file=sys.stderr)
        return 2
    except sqlite3.DatabaseError as exc:  # met after the store opened (its checks passed)
        print(
            f"engram: error: the database cannot be read ({exc}); `engram doctor` checks it, "
            "and `engram export` saves what can still be read",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
