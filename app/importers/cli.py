"""`engram import-chat FILE`, `engram import-files DIR`, `engram import-browser [FILE…]`: each
prints progress (a count and an ETA) on standard error and a JSON summary at the end. While the
desktop app runs they run in it (app/routing.py), so its agents pick the events up at once."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from app.importers.base import Summary


def _print(summaries: list[Summary]) -> None:
    out: Any = [s.as_json() for s in summaries]
    print(json.dumps(out[0] if len(out) == 1 else out, ensure_ascii=False, indent=2))


def _progress(args: argparse.Namespace) -> bool:
    return (not args.quiet and sys.stderr.isatty()) or bool(args.progress)


def cmd_import_chat(args: argparse.Namespace) -> int:
    from app.cli import _open
    from app.importers.base import ImportFailed, import_items
    from app.importers.chats import detect, parser

    path: Path = args.file
    if not path.is_file():
        raise ImportFailed(path, "no such file" if not path.exists() else "is not a file")
    fmt = args.format or detect(path)
    day_first = True if args.day_first else (False if args.month_first else None)
    parse = parser(path, fmt, day_first=day_first)
    with _open(args) as store:
        summary = import_items(store, fmt, path, parse, progress=_progress(args))
    summary.extra["format"] = fmt
    _print([summary])
    return 0


def cmd_import_files(args: argparse.Namespace) -> int:
    from app.cli import _open
    from app.importers.documents import import_files

    with _open(args) as store:
        summary = import_files(store, args.dir, progress=_progress(args))
    _print([summary])
    return 0


def cmd_import_browser(args: argparse.Namespace) -> int:
    from app.cli import _open
    from app.importers.base import ImportFailed
    from app.importers.browser import find_histories, import_history

    paths: list[Path] = list(args.files) or find_histories()
    if not paths:
        raise ImportFailed(
            Path.home(), "no Firefox or Chromium history found; name the places.sqlite or "
            "History file",
        )  # fmt: skip
    for path in paths:
        if not path.is_file():
            raise ImportFailed(path, "no such file")
    with _open(args) as store:
        summaries = [import_history(store, p, progress=_progress(args)) for p in paths]
    _print(summaries)
    return 0


def cmd_import_calendar(args: argparse.Namespace) -> int:
    from app.cli import _open
    from app.importers.base import ImportFailed
    from app.importers.calendar import import_calendar

    if not args.file.is_file():
        raise ImportFailed(args.file, "no such file")
    with _open(args) as store:
        summary = import_calendar(store, args.file)
    _print([summary])
    return 0


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--progress", action="store_true", help="progress also when not a terminal")
    p.add_argument("--quiet", action="store_true", help="no progress, only the summary")


def register(sub: Any) -> None:
    from app.importers import CHAT_FORMATS as FORMATS
    from app.routing import user_path

    p = sub.add_parser(
        "import-chat",
        help="import a chat export (ChatGPT conversations.json, WhatsApp .txt, JSON Lines, LoCoMo)",
    )
    p.add_argument("file", type=user_path)
    p.add_argument("--format", choices=FORMATS, help="default: told from the file")
    order = p.add_mutually_exclusive_group()
    order.add_argument("--day-first", action="store_true", help="WhatsApp dates are day/month")
    order.add_argument("--month-first", action="store_true", help="WhatsApp dates are month/day")
    _common(p)
    p.set_defaults(func=cmd_import_chat)

    p = sub.add_parser("import-files", help="import Markdown, text and PDF documents of a folder")
    p.add_argument("dir", type=user_path)
    _common(p)
    p.set_defaults(func=cmd_import_files)

    p = sub.add_parser(
        "import-browser", help="import browser history (Firefox, Chromium; read from a copy)"
    )
    p.add_argument("files", nargs="*", type=user_path, help="default: this user's profiles")
    _common(p)
    p.set_defaults(func=cmd_import_browser)

    p = sub.add_parser(
        "import-calendar", help="import an .ics calendar (episodic memories at the events' times)"
    )
    p.add_argument("file", type=user_path)
    p.set_defaults(func=cmd_import_calendar)
