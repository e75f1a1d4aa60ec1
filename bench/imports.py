"""Importing a chat export: events per second, peak memory, and what a second import adds.

    nice -n 10 python -m bench.imports --messages 10000 --format jsonl --json

Writes a synthetic export of `--messages` messages (JSON Lines, WhatsApp text or ChatGPT
JSON) into a temporary folder and imports it into a fresh store with the product's own
importer (app/importers: checked whole, redacted, on the event queue in batches), twice.
Peak RSS is the process's high-water mark (`ru_maxrss`) before and after; the embedder is
the hashed stand-in unless `--embedder minilm` (an import embeds nothing: the events' vectors
come later, from the memory worker).
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench._setup import bench_runtime, emit, offline_environment
from bench.retrieval import PEOPLE, PLACES, TOPICS

LINES = [
    "Did you see the notes on the {topic}? {person} wants them by Friday",
    "I'm in {place} until Sunday, let's talk about the {topic} after",
    "{person} says the {topic} moved to next week",
    "ok! the password: hunter{n} is on the fridge",  # redacted on the way in
]


def write_export(path: Path, messages: int, fmt: str, seed: int) -> None:
    rng = random.Random(seed)
    start = datetime(2024, 1, 1, 9, 0, tzinfo=UTC)
    rows = []
    for n in range(messages):
        at = start + timedelta(minutes=7 * n)
        text = rng.choice(LINES).format(
            topic=rng.choice(TOPICS), person=rng.choice(PEOPLE), place=rng.choice(PLACES), n=n
        )
        rows.append((at, rng.choice(PEOPLE[:2]), f"{text} (#{n})"))
    with path.open("w", encoding="utf-8") as out:
        if fmt == "jsonl":
            for at, who, text in rows:
                out.write(json.dumps({"time": at.isoformat(), "speaker": who, "text": text}) + "\n")
        elif fmt == "whatsapp":
            for at, who, text in rows:
                out.write(f"{at:%d/%m/%Y, %H:%M} - {who}: {text}\n")
        else:  # chatgpt: conversations of 50 messages
            convs = []
            for c in range(0, len(rows), 50):
                mapping = {
                    f"m{c + i}": {
                        "message": {
                            "id": f"m{c + i}",
                            "author": {"role": "user" if i % 2 == 0 else "assistant"},
                            "create_time": at.timestamp(),
                            "content": {"content_type": "text", "parts": [text]},
                        }
                    }
                    for i, (at, _who, text) in enumerate(rows[c : c + 50])
                }
                convs.append({"title": f"chat {c // 50}", "mapping": mapping})
            json.dump(convs, out)


def _rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def run(messages: int, fmt: str, embedder_name: str, folder: Path, seed: int) -> dict[str, Any]:
    from app.importers.base import import_items
    from app.importers.chats import parser
    from bench.retrieval import make_embedder
    from storage.fakes import HashEmbedder

    suffix = {"jsonl": ".jsonl", "whatsapp": ".txt", "chatgpt": ".json"}[fmt]
    export = folder / f"export{suffix}"
    write_export(export, messages, fmt, seed)
    embedder = HashEmbedder() if embedder_name == "hash" else make_embedder(embedder_name)
    with bench_runtime(folder / "store", embedder=embedder) as runtime:
        store = runtime.store()
        rss_before = _rss_mb()
        t0 = time.perf_counter()
        first = import_items(store, fmt, export, parser(export, fmt), progress=False)
        first_s = time.perf_counter() - t0
        rss_after = _rss_mb()
        t1 = time.perf_counter()
        second = import_items(store, fmt, export, parser(export, fmt), progress=False)
        second_s = time.perf_counter() - t1
        t2 = time.perf_counter()
        hits = store.search("hunter", events=True, k=5)  # keyword-searchable at once
        search_ms = (time.perf_counter() - t2) * 1000
        queued = store.events.counts()["pending"]
    return {
        "messages": messages,
        "format": fmt,
        "file_mb": round(export.stat().st_size / 1e6, 2),
        "first_import": {**first.as_json(), "file": export.name},
        "events_per_s": round(first.new / first_s, 1),
        "second_import_new": second.new,
        "second_import_duplicates": second.duplicates,
        "second_import_s": round(second_s, 2),
        "events_queued_for_agents": queued,
        "keyword_search_after_import_ms": round(search_ms, 1),
        "secret_in_search_results": any("hunter" in getattr(h.item, "text", "") for h in hits),
        "peak_rss_mb_before_import": rss_before,
        "peak_rss_mb_after_import": rss_after,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--format", choices=["jsonl", "whatsapp", "chatgpt"], default="jsonl")
    parser.add_argument("--embedder", choices=["hash", "minilm"], default="hash")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", action="store_true", help="print JSON only")
    args = parser.parse_args(argv)
    offline_environment()
    with tempfile.TemporaryDirectory(prefix="engram-bench-import-") as tmp:
        result = run(args.messages, args.format, args.embedder, Path(tmp), args.seed)
    emit(result, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
