"""What the second look at a fused candidate list reads: whose memories a query names, the
indexed text of the best hits, and the words those hits share (a second keyword round's query).
Plain functions over the database, so each is tested on its own; `storage.search` applies them."""

from __future__ import annotations

from collections.abc import Sequence

from storage.sqlite_db import Database
from storage.text import content_words, is_content, query_words, word_spans

#: Ids per SQL `IN (…)` list, well under SQLite's limit on bound parameters.
CHUNK = 500


def named_actors(
    db: Database, query: str, memory_ids: Sequence[str], event_ids: Sequence[str] = ()
) -> set[str]:
    """Those of `memory_ids` whose actor, and of `event_ids` whose speaker (an imported
    message's), the query names: a content word of the name among the query's words ("what
    does Melanie like" names Melanie's memories and messages, "user" is named only by a query
    that says "user"). One lookup by primary key per CHUNK ids, whatever the store's size."""
    asked = {w for w in query_words(query) if is_content(w)}
    named: set[str] = set()
    if not asked:
        return named
    for ids, sql in (
        (memory_ids, "SELECT id, json_extract(data, '$.actor') AS who FROM memories"),
        (event_ids, "SELECT id, json_extract(data, '$.metadata.speaker') AS who FROM events"),
    ):
        for start in range(0, len(ids), CHUNK):
            part = list(ids[start : start + CHUNK])
            rows = db.query(f"{sql} WHERE id IN ({','.join('?' * len(part))})", part)
            named.update(str(r["id"]) for r in rows if asked & content_words(str(r["who"] or "")))
    return named


def indexed_texts(
    db: Database, memory_ids: Sequence[str], event_ids: Sequence[str] = ()
) -> dict[str, str]:
    """The keyword-indexed text of each memory and event, by id (one missing: not there)."""
    texts: dict[str, str] = {}
    for ids, table, fts, key in (
        (memory_ids, "memories", "memory_fts", "rowid"),
        (event_ids, "events", "event_fts", "seq"),
    ):
        for start in range(0, len(ids), CHUNK):
            part = list(ids[start : start + CHUNK])
            rows = db.query(
                f"SELECT t.id, f.text FROM {table} t JOIN {fts} f ON f.rowid = t.{key} "
                f"WHERE t.id IN ({','.join('?' * len(part))})",
                part,
            )
            texts.update((str(r["id"]), str(r["text"])) for r in rows)
    return texts


def expansion_words(query: str, texts: Sequence[str], limit: int) -> list[str]:
    """Up to `limit` content words of `texts` the query lacks, those shared by the most texts
    first; among equals, names and numbers before other words, then the earlier-seen. A name
    is capitalised mid-sentence ("went to Porto", not "Training starts"); a number holds a
    digit. A line's leading label ("Ann: …", who said it) is not a word of the text. A word
    found in one text only is the text's own business, not the topic's, unless
    it is a name or a number."""
    asked = set(query_words(query))
    seen: dict[str, tuple[int, bool, int]] = {}  # word: (texts holding it, is a name, order)
    for text in texts:
        named_here: dict[str, bool] = {}
        for m in word_spans(text):
            word = m.group()
            low = word.lower()
            number = any(ch.isdigit() for ch in word)
            if low in asked or not (is_content(low) or (number and len(low) > 1)):
                continue
            line_start = text[: m.start()].rstrip(" \t")
            if (not line_start or line_start.endswith("\n")) and text.startswith(":", m.end()):
                continue  # a line's "Ann:" label says who, not what about
            before = line_start.rstrip()
            mid_sentence = bool(before) and before[-1] not in ".!?:;\n\"'"
            named = number or (word[0].isupper() and mid_sentence)
            named_here[low] = named_here.get(low, False) or named
        for low, named in named_here.items():
            count, was_named, order = seen.get(low, (0, False, len(seen)))
            seen[low] = (count + 1, was_named or named, order)
    ranked = sorted(seen.items(), key=lambda kv: (-kv[1][0], not kv[1][1], kv[1][2]))
    return [w for w, (count, named, _) in ranked if count > 1 or named][:limit]
