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
from typing import Any

from storage.errors import EngramError
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
    out_dir.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {}
    total = store.count()
    done = 0
    markdown = [f"# Engram memories\n\nExported {datetime.now(UTC).isoformat()}\n"]
    for memory_type in MemoryType:
        path = out_dir / f"{memory_type.value}.jsonl"
        tmp = path.with_suffix(".jsonl.tmp")
        n = 0
        markdown.append(f"\n## {memory_type.value.replace('_', ' ').title()}\n")
        with tmp.open("w", encoding="utf-8") as fh:
            offset = 0
            while batch := store.browse(memory_type, limit=1000, offset=offset, newest_first=False):
                for record in batch:
                    data = store.codec.export_dict(record, reveal_secrets)
                    fh.write(json.dumps(data, ensure_ascii=False) + "\n")
                    markdown.append(_markdown(record))
                    n += 1
                offset += len(batch)
                done += len(batch)
                if progress:
                    progress(done, total)
        os.replace(tmp, path)
        if reveal_secrets and memory_type == MemoryType.KNOWLEDGE_VAULT:
            os.chmod(path, 0o600)
        counts[memory_type.value] = n
    events = store.events.export_rows()
    with (out_dir / "events.jsonl").open("w", encoding="utf-8") as fh:
        for row in events:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    counts["events"] = len(events)
    (out_dir / "memories.md").write_text("".join(markdown), encoding="utf-8")
    manifest = {
        "format": FORMAT,
        "exported_at": datetime.now(UTC).isoformat(),
        "counts": counts,
        "secrets": "plain" if reveal_secrets else "encrypted",
    }
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return counts


def import_store(store: MemoryStore, in_dir: Path) -> dict[str, int]:
    """Import every record of an export; a record whose id exists is replaced (with history)."""
    manifest_path = in_dir / "manifest.json"
    if not manifest_path.is_file():
        raise ImportFailed(f"{in_dir} has no manifest.json: it is not an Engram export")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ImportFailed(f"{manifest_path} is not valid JSON: {exc}") from exc
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


def _read_jsonl(path: Path) -> list[tuple[int, dict[str, Any]]]:
    out = []
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ImportFailed(f"{path} is not UTF-8 text") from exc
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except ValueError as exc:
            raise ImportFailed(f"{path}:{lineno}: not valid JSON: {exc}") from exc
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
