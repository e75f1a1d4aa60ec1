"""`engram import-files DIR`: Markdown, plain text and PDF documents, one resource memory each,
its path as its source. The only module that imports pypdf.

Text is redacted as a screen read is (capture/redact.py) before it is stored. A document's id
comes from its path, so a second import of the same folder adds nothing, and a file whose text
changed since is updated in place (with history, undoable). A file that cannot be read (not
UTF-8, an encrypted or broken PDF, no text) is rejected with its reason; the others go on.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from app.importers.base import ImportFailed, OnProgress, Progress, Summary, stop_if
from capture.redact import Redactor
from storage.dates import parse_when
from storage.errors import NotFound
from storage.records import MAX_FIELD_CHARS, ResourceMemory
from storage.store import MemoryStore, Write

SUFFIXES = {".md": "markdown", ".markdown": "markdown", ".txt": "text", ".pdf": "pdf"}
ACTOR = "import:files"
#: Documents written per transaction.
BATCH = 16

_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.+?)\s*#*\s*$", re.M)


class Unreadable(Exception):
    """A document that cannot be read; its message is the reason."""


def documents(folder: Path) -> Iterator[Path]:
    """The documents under `folder`, in path order, hidden folders and files left out."""
    for path in sorted(folder.rglob("*")):
        parts = path.relative_to(folder).parts
        if any(p.startswith(".") for p in parts):
            continue
        if path.is_file() and path.suffix.lower() in SUFFIXES:
            yield path


def read_text(path: Path) -> str:
    if path.suffix.lower() == ".pdf":
        return _pdf_text(path)
    data = path.read_bytes()
    if b"\x00" in data:
        raise Unreadable("binary, not text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise Unreadable("not UTF-8 text") from None


def _pdf_text(path: Path) -> str:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    logging.getLogger("pypdf").setLevel(logging.ERROR)  # its repair notes are not the user's
    try:
        reader = PdfReader(path)
        if reader.is_encrypted:
            raise Unreadable("an encrypted PDF")
        return "\n\n".join((page.extract_text() or "").strip() for page in reader.pages)
    except Unreadable:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as exc:
        raise Unreadable(f"a damaged PDF ({type(exc).__name__})") from None


def doc_id(path: Path) -> str:
    return "res_imp_" + hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:24]


def _title(path: Path, text: str) -> str:
    if path.suffix.lower() in (".md", ".markdown"):
        m = _HEADING.search(text)
        if m:
            return m.group(1)[:200]
    return path.name


def import_files(
    store: MemoryStore,
    folder: Path,
    *,
    redactor: Redactor | None = None,
    progress: bool = True,
    on_progress: OnProgress | None = None,
    cancel: threading.Event | None = None,
) -> Summary:
    """Each document under `folder` as a resource memory (see the module); progress and
    cancel as `import_items`' (a cancel keeps the documents stored so far)."""
    if not folder.is_dir():
        raise ImportFailed(folder, "is not a folder")
    started = time.monotonic()
    redactor = redactor or Redactor()
    paths = list(documents(folder))
    summary = Summary("files", str(folder), extra={"updated": 0, "clipped": 0})
    show = Progress(f"importing {folder.name or folder}", len(paths)) if progress else None
    pending: list[Write] = []
    for n, path in enumerate(paths, start=1):
        write = _document(store, path, redactor, summary)
        if write is not None:
            pending.append(write)
        if len(pending) >= BATCH:
            store.apply(pending, ACTOR)
            pending = []
        if show:
            show(n)
        if on_progress:
            on_progress(n, len(paths))
        if cancel is not None and cancel.is_set():
            if pending:
                store.apply(pending, ACTOR)
            stop_if(cancel, summary)
    if pending:
        store.apply(pending, ACTOR)
    if show:
        show(len(paths), final=True)
    summary.seconds = time.monotonic() - started
    return summary


def _document(store: MemoryStore, path: Path, redactor: Redactor, summary: Summary) -> Write | None:
    try:
        raw = read_text(path)
    except (Unreadable, OSError) as exc:
        summary.rejected[str(exc) if isinstance(exc, Unreadable) else "cannot be read"] += 1
        return None
    if not raw.strip():
        summary.rejected["no text"] += 1
        return None
    summary.read += 1
    redaction = redactor.redact(raw)
    summary.redacted += redaction.total
    text = redaction.text
    if len(text) > MAX_FIELD_CHARS:
        text = text[: MAX_FIELD_CHARS - 1] + "…"
        summary.extra["clipped"] += 1
    source = str(path.resolve())
    fields = {
        "title": _title(path, text),
        "resource_type": SUFFIXES[path.suffix.lower()],
        "content": text,
        "provenance": (source,),
    }
    try:
        before = store.get(doc_id(path))
    except NotFound:
        when = parse_when(str(int(path.stat().st_mtime)))
        summary.new += 1
        return Write("add", ResourceMemory(id=doc_id(path), created_at=when, **fields))
    assert isinstance(before, ResourceMemory)
    if (before.title, before.content) == (fields["title"], fields["content"]):
        summary.duplicates += 1
        return None
    summary.extra["updated"] += 1
    return Write("replace", before.updated(**fields))
