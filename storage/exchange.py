"""Export to a folder (JSON Lines per memory type, the event queue, a readable Markdown file)
and import back. The round trip is lossless: ids, times, provenance and tree paths survive.

Vault secrets are exported encrypted with this store's key unless `reveal_secrets` is asked for;
import accepts either form. Import validates every line before writing anything.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from storage.errors import EngramError, ExportFailed, from_os_error
from storage.records import Event, MemoryType, Record, VaultEntry
from storage.store import MemoryStore

FORMAT = "engram-export/1"


class ImportFailed(EngramError):
    """An export folder that cannot be imported; nothing was written."""


def export_store(
    store: MemoryStore,
    out_dir: Path,
    reveal_secrets: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, int]:
    if out_dir.exists() and not out_dir.is_dir():
        raise ExportFailed(
            f"{out_dir} is a file, not a folder: export writes a folder of files. Name a new "
            "folder (it is created) or an earlier export's folder (its files are replaced)"
        )
    try:
        return _export(store, out_dir, reveal_secrets, progress)
    except OSError as exc:
        raise ExportFailed(f"the export was not finished: {from_os_error(exc, out_dir)}") from exc


def _export(
    store: MemoryStore,
    out_dir: Path,
    reveal_secrets: bool,
    progress: Callable[[int, int], None] | None,
) -> dict[str, int]:
    out_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    skipped_before = set(store.skipped_damaged)
    counts: dict[str, int] = {}
    total = store.count()
    done = 0
    markdown = [f"# Engram memories\n\nExported {datetime.now(UTC).isoformat()}\n"]
    for memory_type in MemoryType:
        path = out_dir / f"{memory_type.value}.jsonl"
        tmp = path.with_suffix(".jsonl.tmp")
        n = 0
        markdown.append(f"\n## {memory_type.value.replace('_', ' ').title()}\n")
        with _private(tmp) as fh:
            # Pages step by what was asked for: a damaged row, skipped by browse, still takes
            # its place in the order, so counting what came back would repeat a row.
            for offset in range(0, store.count(memory_type), 1000):
                batch = store.browse(memory_type, limit=1000, offset=offset, newest_first=False)
                for record in batch:
                    data = store.codec.export_dict(record, reveal_secrets)
                    fh.write(json.dumps(data, ensure_ascii=False) + "\n")
                    markdown.append(_markdown(record))
                    n += 1
                done += len(batch)
                if progress:
                    progress(done, total)
        os.replace(tmp, path)
        counts[memory_type.value] = n
    events = store.events.export_rows()
    with _private(out_dir / "events.jsonl") as fh:
        for row in events:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    counts["events"] = len(events)
    with _private(out_dir / "memories.md") as fh:
        fh.write("".join(markdown))
    damaged = sorted(store.skipped_damaged - skipped_before)
    counts["damaged"] = len(damaged)
    manifest = {
        "format": FORMAT,
        "exported_at": datetime.now(UTC).isoformat(),
        "counts": counts,
        "secrets": "plain" if reveal_secrets else "encrypted",
        "damaged_skipped": damaged,
    }
    with _private(out_dir / "manifest.json") as fh:
        fh.write(json.dumps(manifest, indent=2))
    return counts


def _private(path: Path) -> TextIO:
    """`path` opened for writing, readable by its owner only (0600, also when it existed):
    an export holds everything Engram knows about a person."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    return os.fdopen(fd, "w", encoding="utf-8")


def import_store(store: MemoryStore, in_dir: Path) -> dict[str, int]:
    """Import every record of an export; a record whose id exists is replaced (with history)."""
    manifest_path = in_dir / "manifest.json"
    if not manifest_path.is_file():
        raise ImportFailed(f"{in_dir} has no manifest.json: it is not an Engram export")
    manifest = _read_json(manifest_path, lambda: _read_text(manifest_path))
    if not isinstance(manifest, dict):
        raise ImportFailed(
            f"{manifest_path} holds a JSON {type(manifest).__name__}, not the object an Engram "
            "export writes: it is not an Engram export's manifest"
        )
    if manifest.get("format") != FORMAT:
        raise ImportFailed(f"{in_dir} is in format {manifest.get('format')!r}, not {FORMAT}")
    parsed: dict[MemoryType, list[Record]] = {}
    for memory_type in MemoryType:
        path = in_dir / f"{memory_type.value}.jsonl"
        rows = _read_jsonl(path) if path.exists() else []
        records = []
        for lineno, data in rows:
            try:
                records.append(store.codec.decode(memory_type, data))
            except Exception as exc:
                raise ImportFailed(
                    f"{path}:{lineno}: not a valid {memory_type.value} memory: {exc}"
                ) from exc
        parsed[memory_type] = records
    events_path = in_dir / "events.jsonl"
    events: list[Event] = []
    for lineno, row in _read_jsonl(events_path) if events_path.exists() else []:
        try:
            events.append(Event.model_validate(row["event"]))
        except Exception as exc:
            raise ImportFailed(f"{events_path}:{lineno}: not a valid event: {exc}") from exc

    counts: dict[str, int] = {}
    store.events.put_many(events)
    counts["events"] = len(events)
    existing: set[str] = set()
    for memory_type, records in parsed.items():
        ids = [r.id for r in records]
        existing.update(r.id for r in store.get_many(ids))
        fresh = [r for r in records if r.id not in existing]
        for start in range(0, len(fresh), 500):
            store.add_many(fresh[start : start + 500], actor="import")
        for record in records:
            if record.id in existing and store.get(record.id) != record:
                store.replace(record, actor="import")
        counts[memory_type.value] = len(records)
    return counts


def _read_text(path: Path) -> str:
    if path.is_dir():
        raise ImportFailed(f"{path} is a folder, not a file: this is not an Engram export")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ImportFailed(f"{path} is not UTF-8 text") from exc
    except OSError as exc:
        raise ImportFailed(f"{path} cannot be read: {exc.strerror or exc}") from exc


def _read_json(where: object, text: Callable[[], str] | str) -> Any:
    """One JSON value; invalid or absurdly nested JSON (a RecursionError in the parser) is an
    `ImportFailed` naming `where`."""
    try:
        return json.loads(text if isinstance(text, str) else text())
    except RecursionError as exc:
        raise ImportFailed(f"{where}: the JSON is nested too deeply to be an export") from exc
    except UnicodeDecodeError as exc:
        raise ImportFailed(f"{where} is not UTF-8 text") from exc
    except ValueError as exc:
        raise ImportFailed(f"{where}: not valid JSON: {exc}") from exc
    except OSError as exc:
        raise ImportFailed(f"{where} cannot be read: {exc.strerror or exc}") from exc


def _read_jsonl(path: Path) -> list[tuple[int, dict[str, Any]]]:
    out = []
    text = _read_text(path)
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        value = _read_json(f"{path}:{lineno}", line)
        if not isinstance(value, dict):
            raise ImportFailed(f"{path}:{lineno}: expected a JSON object")
        out.append((lineno, value))
    return out


def _markdown(record: Record) -> str:
    lines = [f"\n### {record.headline()}\n", f"- id: `{record.id}`"]
    lines.append(f"- time: {record.timestamp.isoformat()}")
    if record.tree_path:
        lines.append(f"- tree: {' / '.join(record.tree_path)}")
    if record.provenance:
        lines.append(f"- from: {', '.join(record.provenance)}")
    body = record.index_text()
    if isinstance(record, VaultEntry):
        body += "\n\n(secret value not shown)"
    lines.append("")
    lines.append(body)
    return "\n".join(lines) + "\n"
