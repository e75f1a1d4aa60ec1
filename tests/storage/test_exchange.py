from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from storage.exchange import ImportFailed, export_store, import_store
from storage.fakes import HashEmbedder, MemoryVectorIndex
from storage.records import (
    CoreBlock,
    EpisodicMemory,
    Event,
    MemoryType,
    ProceduralMemory,
    ResourceMemory,
    SemanticMemory,
    VaultEntry,
)
from storage.store import MemoryStore


def _fill(store: MemoryStore) -> None:
    when = datetime(2025, 5, 8, 13, 56, tzinfo=UTC)
    event = store.events.put(Event(text="Ana: let's ship Friday", source="chat", app="engram"))
    store.add_many(
        [
            CoreBlock(label="human", value="Sam, likes tea ☕"),
            EpisodicMemory(
                summary="agreed to ship Friday",
                occurred_at=when,
                actor="Ana",
                provenance=(event.id,),
                tree_path=("work", "release"),
            ),
            SemanticMemory(name="Ana", summary="release manager", details="on the billing team"),
            ProceduralMemory(entry_type="script", summary="release", steps=("tag", "push")),
            ResourceMemory(title="notes.md", resource_type="file", content="line1\nline2"),
            VaultEntry(caption="deploy token", secret_value="tok-123", sensitivity="high"),
        ]
    )


def _snapshot(store: MemoryStore) -> dict[str, list[object]]:
    return {
        t.value: sorted(
            (r.model_dump(mode="json") for r in store.browse(t, limit=1000)), key=lambda d: d["id"]
        )
        for t in MemoryType
    }


@pytest.mark.parametrize("reveal", [False, True])
def test_round_trip_is_lossless(
    tmp_path: Path, engram_home: Path, fake_store: MemoryStore, reveal: bool
) -> None:
    _fill(fake_store)
    before = _snapshot(fake_store)
    out = tmp_path / "export"
    counts = export_store(fake_store, out, reveal_secrets=reveal)
    assert counts["episodic"] == 1 and counts["events"] == 1
    vault_text = (out / "knowledge_vault.jsonl").read_text()
    assert ("tok-123" in vault_text) is reveal
    assert "deploy token" in (out / "memories.md").read_text()
    assert "tok-123" not in (out / "memories.md").read_text()

    fresh_home = tmp_path / "other-home"
    # Encrypted secrets need this store's key: copy it, as moving a data folder would.
    fresh_home.mkdir()
    key = engram_home / "vault.key"
    (fresh_home / "vault.key").write_bytes(key.read_bytes())
    other = MemoryStore.open(fresh_home, HashEmbedder(), lambda _p: MemoryVectorIndex())
    import_store(other, out)
    assert _snapshot(other) == before
    assert other.events.get_many(
        [
            e["event"]["id"]
            for e in fake_store.events.export_rows()  # type: ignore[index]
        ]
    )
    hit = other.search("ship Friday", types=[MemoryType.EPISODIC])[0].record
    assert hit.provenance and other.events.get(hit.provenance[0]).text.startswith("Ana")
    import_store(other, out)  # importing twice changes nothing
    assert _snapshot(other) == before
    other.close()


def test_malformed_import_writes_nothing(tmp_path: Path, fake_store: MemoryStore) -> None:
    _fill(fake_store)
    out = tmp_path / "export"
    export_store(fake_store, out)
    with (out / "semantic.jsonl").open("a") as fh:
        fh.write('{"name": "broken", "summary": ""' + "\n")
    target = tmp_path / "t"
    store = MemoryStore.open(target, HashEmbedder(), lambda _p: MemoryVectorIndex())
    with pytest.raises(ImportFailed, match=r"semantic.jsonl:2: not valid JSON"):
        import_store(store, out)
    assert store.count() == 0
    (out / "semantic.jsonl").write_text(json.dumps({"name": "x", "summary": "y", "bogus": 1}))
    with pytest.raises(ImportFailed, match="not a valid semantic memory"):
        import_store(store, out)
    (out / "semantic.jsonl").write_bytes(b"\xff\xfe binary")
    with pytest.raises(ImportFailed, match="not UTF-8"):
        import_store(store, out)
    with pytest.raises(ImportFailed, match="not an Engram export"):
        import_store(store, tmp_path)
    assert store.count() == 0
    store.close()
