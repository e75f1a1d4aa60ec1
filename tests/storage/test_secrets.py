"""A high-sensitivity vault value stays secret everywhere: once it is one, every stored text that
quoted it (memories, events, the undo history) withholds it, and no file of the data folder holds
it in plain text. Lower sensitivities are left as they are."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from storage.exchange import export_store
from storage.fakes import HashEmbedder, MemoryVectorIndex
from storage.records import EpisodicMemory, Event, SemanticMemory, VaultEntry
from storage.secrets import SCRUB_ACTOR, SecretSet
from storage.store import MemoryStore

SECRET = "7391-4482-DOOR"
LOW = "REF-55120-LOW"
VARIANTS = (b"7391-4482-door", b"7391 4482 door", b"7391-4482", b"73914482")


def _grep(folder: Path, needle: bytes) -> list[Path]:
    """Files under `folder` whose raw bytes hold `needle`, in any case."""
    low = needle.lower()
    return [p for p in folder.rglob("*") if p.is_file() and low in p.read_bytes().lower()]


def _leaks(folder: Path) -> dict[bytes, list[Path]]:
    found = {n: _grep(folder, n) for n in (SECRET.encode(), *VARIANTS)}
    return {n: paths for n, paths in found.items() if paths}


def test_a_secret_is_withheld_in_any_case_and_spacing_and_short_ones_only_whole() -> None:
    secrets = SecretSet(
        [
            VaultEntry(caption="lab door", secret_value=SECRET, sensitivity="high"),
            VaultEntry(caption="bike lock", secret_value="492", sensitivity="high"),
            VaultEntry(caption="booking", secret_value=LOW, sensitivity="low"),
            VaultEntry(caption="locker", secret_value="medium-value-77", sensitivity="medium"),
        ]
    )
    withheld = VaultEntry.WITHHELD
    assert secrets.scrub(f"typed {SECRET} at the door") == f"typed {withheld} at the door"
    assert secrets.scrub("code 7391 - 4482 -\ndoor, twice: 7391-4482-door") == (
        f"code {withheld}, twice: {withheld}"
    )
    assert secrets.scrub("room 492 on floor 4") == "room 492 on floor 4"  # too short to find
    assert secrets.scrub(" 492 ") == withheld  # but a field that is the value is withheld
    assert secrets.scrub(f"ref {LOW}, locker medium-value-77") == (
        f"ref {LOW}, locker medium-value-77"
    )
    assert len(secrets) == 2 and not SecretSet()


@pytest.fixture
def chroma_store(engram_home: Path) -> Iterator[MemoryStore]:
    """Real SQLite and a real Chroma folder, with the deterministic embedder."""
    from storage.vector_chroma import ChromaVectorIndex

    store = MemoryStore.open(engram_home, HashEmbedder(), ChromaVectorIndex.persistent)
    yield store
    store.close()


def _quote_it(store: MemoryStore) -> tuple[EpisodicMemory, SemanticMemory, Event]:
    event = store.events.put(
        Event(source="screen", app="xterm", text=f"Lab door panel: code {SECRET} (ref {LOW})")
    )
    episode = store.add(
        EpisodicMemory(summary="Opened the lab door", details="typed the code at the panel"),
        actor="agents:b1",
    )
    episode = store.update(  # the code lands in the history's before/after too
        episode.id, actor="agents:b2", details=f"typed 7391 4482 door at the panel ({LOW})"
    )
    fact = store.add(SemanticMemory(name="Lab door", summary=f"The lab door code is {SECRET}"))
    assert isinstance(episode, EpisodicMemory) and isinstance(fact, SemanticMemory)
    return episode, fact, event


@pytest.mark.real
def test_once_a_value_is_a_secret_no_file_in_the_data_folder_holds_it(
    chroma_store: MemoryStore, engram_home: Path
) -> None:
    store = chroma_store
    episode, fact, event = _quote_it(store)
    store.add(VaultEntry(caption="booking reference", secret_value=LOW, sensitivity="low"))
    store.add(VaultEntry(caption="Lab door code", secret_value=SECRET, sensitivity="high"))

    scrubbed = store.get(episode.id)
    assert isinstance(scrubbed, EpisodicMemory)
    assert scrubbed.details == f"typed {VaultEntry.WITHHELD} at the panel ({LOW})"
    assert store.events.get(event.id).text == (
        f"Lab door panel: code {VaultEntry.WITHHELD} (ref {LOW})"
    )
    # One history entry per scrubbed memory; the rest of the history is kept, without the value.
    latest, *older = store.history(episode.id)
    assert (latest.op, latest.actor) == ("update", SCRUB_ACTOR)
    assert [c.actor for c in older] == ["agents:b2", "agents:b1"]
    assert [c.actor for c in store.history(fact.id)] == [SCRUB_ACTOR, "user"]
    everything = json.dumps([c.__dict__ for c in store.history(limit=1000)], default=str)
    assert "7391" not in everything and LOW in everything  # a low value is not scrubbed
    # Undoing the scrub restores what the history holds: the scrubbed text, never the value.
    store.undo(latest.seq)
    assert "7391" not in store.get(episode.id).index_text()
    fts = "SELECT rowid FROM memory_fts WHERE memory_fts MATCH ?"
    assert store._db.query(fts, ("7391",)) == []  # gone from the keyword index
    # Text stored after the value became a secret is withheld as it is written.
    later = store.events.put(Event(source="screen", text=f"Door reminder: {SECRET}"))
    noted = store.add(SemanticMemory(name="Door", summary=f"The code is still {SECRET}"))
    assert SECRET not in store.events.get(later.id).text + store.get(noted.id).index_text()

    assert _leaks(engram_home) == {}  # open: the WAL and -shm as they are
    assert _grep(engram_home, LOW.encode())  # the grep does find what is not a secret
    assert list((engram_home / "chroma").rglob("*.sqlite3"))  # the real Chroma folder is grepped
    store.close()
    assert _leaks(engram_home) == {}
    reopened = MemoryStore.open(engram_home, HashEmbedder(), lambda _p: MemoryVectorIndex())
    try:  # only encrypted: the vault still gives the value back
        [secret] = [r for r in reopened.browse() if isinstance(r, VaultEntry) and r.withheld]
        assert isinstance(secret, VaultEntry) and secret.secret_value == SECRET
    finally:
        reopened.close()


def test_a_medium_or_low_vault_value_is_not_scrubbed(fake_store: MemoryStore) -> None:
    fact = fake_store.add(SemanticMemory(name="Locker", summary="Locker code is 5512-ABCD"))
    fake_store.add(VaultEntry(caption="locker", secret_value="5512-ABCD", sensitivity="medium"))
    assert fake_store.get(fact.id) == fact and len(fake_store.history(fact.id)) == 1
    assert not fake_store.secrets()


def test_a_value_that_becomes_high_is_scrubbed_then(fake_store: MemoryStore) -> None:
    fact = fake_store.add(SemanticMemory(name="Locker", summary="Locker code is 5512-ABCD"))
    entry = fake_store.add(VaultEntry(caption="locker", secret_value="5512-ABCD"))
    assert "5512-ABCD" in fake_store.get(fact.id).index_text()
    fake_store.update(entry.id, sensitivity="high")
    assert "5512-ABCD" not in fake_store.get(fact.id).index_text()
    assert fake_store.history(fact.id)[0].actor == SCRUB_ACTOR


def test_a_store_from_before_is_scrubbed_once_on_open(
    engram_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def open_store() -> MemoryStore:
        return MemoryStore.open(engram_home, HashEmbedder(), lambda _p: MemoryVectorIndex())

    with monkeypatch.context() as old:  # an Engram that did not scrub
        old.setattr(MemoryStore, "_after_vault_writes", lambda *a, **k: None)
        old.setattr(MemoryStore, "_without_secrets", lambda self, writes: list(writes))
        store = open_store()
        fact = store.add(SemanticMemory(name="Lab door", summary=f"The code is {SECRET}"))
        store.add(VaultEntry(caption="Lab door code", secret_value=SECRET, sensitivity="high"))
        store.events.put(Event(text=f"code {SECRET}"))
        store._db.execute("DELETE FROM meta WHERE key = 'secret_scrub'")
        store.close()
    assert _leaks(engram_home)
    store = open_store()
    try:
        assert SECRET not in store.get(fact.id).index_text()
        assert store.history(fact.id)[0].actor == SCRUB_ACTOR
    finally:
        store.close()
    assert _leaks(engram_home) == {}


def test_an_export_holds_a_secret_only_encrypted_unless_revealed(
    fake_store: MemoryStore, tmp_path: Path
) -> None:
    fake_store.add(EpisodicMemory(summary="door", details=f"typed {SECRET}"))
    fake_store.add(VaultEntry(caption="Lab door code", secret_value=SECRET, sensitivity="high"))
    export_store(fake_store, tmp_path / "out")
    assert _leaks(tmp_path / "out") == {}
    export_store(fake_store, tmp_path / "plain", reveal_secrets=True)
    assert [p.name for p in _grep(tmp_path / "plain", SECRET.encode())] == ["knowledge_vault.jsonl"]


def test_a_scrub_keeps_each_memory_s_owner(fake_store: MemoryStore) -> None:
    """Withholding a secret from an agent's memory rewrites its text, not who owns it."""
    from storage.records import EpisodicMemory as Episode

    quoted = fake_store.add(
        Episode(summary="Typed the door code 7391-4482-DOOR at the gate"), actor="agents:b_1"
    )
    assert fake_store.get(quoted.id).origin == "agent"
    fake_store.add(
        VaultEntry(caption="gate code", secret_value="7391-4482-DOOR", sensitivity="high")
    )
    after = fake_store.get(quoted.id)
    assert "7391-4482-DOOR" not in after.index_text()
    assert after.origin == "agent"


@pytest.mark.real
def test_every_stored_text_column_withholds_a_secret_and_the_files_hold_it_only_encrypted(
    chroma_store: MemoryStore, engram_home: Path
) -> None:
    """Beyond an event's text: its window title and metadata, the error it failed with, the
    capture log's gap details, a suggestion for a user's memory, the history."""
    from storage.capture_log import GapReason
    from storage.store import Write
    from storage.suggestions import Suggestion

    store = chroma_store
    event = store.events.put(
        Event(
            source="screen",
            app="xterm",
            window_title=f"ssh lab-door ({SECRET})",
            text="a terminal",
            metadata={"url": f"https://door.example/?code={SECRET}", "monitor_n": 1},
        )
    )
    [claimed] = store.events.claim(1)
    store.events.release([claimed.id], error=f"the model echoed {SECRET} and no JSON")
    log = store.capture_log()
    log.note(GapReason.EXCLUDED, detail=f"window 'Vault: {SECRET}' is excluded")
    log.flush()
    mine = store.add(SemanticMemory(name="Lab", summary="The lab is on floor 2"))
    suggestion = Suggestion(
        memory_id=mine.id,
        memory_type=mine.kind,
        op="update",
        fields={"summary": f"The lab door code is {SECRET}"},
        agent="semantic",
    )
    store.apply(
        [Write("add", SemanticMemory(name="x", summary="y"))], "agents:b1", suggest=[suggestion]
    )
    assert _leaks(engram_home)  # the grep finds it before it is a secret

    store.add(VaultEntry(caption="Lab door code", secret_value=SECRET, sensitivity="high"))

    got = store.events.get(event.id)
    assert got.window_title == f"ssh lab-door ({VaultEntry.WITHHELD})"
    assert got.metadata == {
        "url": f"https://door.example/?code={VaultEntry.WITHHELD}",
        "monitor_n": 1,
    }
    [error] = [r["error"] for r in store._db.query("SELECT error FROM events")]
    assert SECRET not in error and VaultEntry.WITHHELD in error
    details = [r["detail"] for r in store._db.query("SELECT detail FROM capture_gaps")]
    assert details == [f"window 'Vault: {VaultEntry.WITHHELD}' is excluded"]
    [pending] = store.suggestions.pending(mine.id)
    assert pending.fields == {"summary": f"The lab door code is {VaultEntry.WITHHELD}"}
    fts = "SELECT rowid FROM event_fts WHERE event_fts MATCH ?"
    assert store._db.query(fts, ("7391",)) == []
    # Noted after it became a secret: withheld as it is written.
    log.note(GapReason.OCR_ERROR, detail=f"tesseract choked on {SECRET}")
    log.flush()
    again = store.events.put(Event(source="screen", window_title=SECRET + " again", text="t"))
    assert SECRET not in store.events.get(again.id).window_title

    assert _leaks(engram_home) == {}  # open: WAL and -shm as they are
    store.close()
    assert _leaks(engram_home) == {}
    reopened = MemoryStore.open(engram_home, HashEmbedder(), lambda _p: MemoryVectorIndex())
    try:  # only encrypted: the vault still gives the value back
        [secret] = [r for r in reopened.browse() if isinstance(r, VaultEntry) and r.withheld]
        assert isinstance(secret, VaultEntry) and secret.secret_value == SECRET
    finally:
        reopened.close()
