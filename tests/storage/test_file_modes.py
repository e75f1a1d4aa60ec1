"""What Engram keeps is the user's alone: the data folder 0700, every file in it (SQLite's WAL
and SHM, the vault key, Chroma's files) and every export 0600, checked by stat."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from storage.exchange import export_store
from storage.fakes import HashEmbedder
from storage.records import Event, SemanticMemory, VaultEntry
from storage.store import MemoryStore
from storage.vector_chroma import ChromaVectorIndex


def modes(folder: Path) -> dict[str, int]:
    out = {".": stat.S_IMODE(folder.stat().st_mode)}
    for root, dirs, files in os.walk(folder):
        for name in [*dirs, *files]:
            path = Path(root) / name
            out[str(path.relative_to(folder))] = stat.S_IMODE(path.lstat().st_mode)
    return out


def assert_private(folder: Path) -> None:
    found = modes(folder)
    wide = {name: oct(mode) for name, mode in found.items() if mode & 0o077}
    assert not wide, wide
    for name, mode in found.items():
        is_dir = (folder / name).is_dir()
        assert mode == (0o700 if is_dir else 0o600), (name, oct(mode))


@pytest.fixture(autouse=True)
def desktop_umask() -> Iterator[None]:
    """A usual desktop umask (files 0644 unless Engram says otherwise), restored after."""
    old = os.umask(0o022)
    yield
    os.umask(old)


@pytest.mark.real
def test_data_folder_files_and_exports_are_private(engram_home: Path, tmp_path: Path) -> None:
    store = MemoryStore.open(engram_home, HashEmbedder(), ChromaVectorIndex.persistent)
    try:
        store.add(SemanticMemory(name="Priya", summary="Priya leads the data team"))
        store.add(VaultEntry(secret_value="4921 door", caption="door", sensitivity="high"))
        store.events.put(Event(source="screen", text="Meeting with Dana on Friday"))
        store.index_events()
        assert (engram_home / "engram.sqlite3-wal").exists()  # open: WAL and SHM are there
        assert_private(engram_home)
        out = tmp_path / "export"
        export_store(store, out)
        assert_private(out)
        export_store(store, out, reveal_secrets=True)  # over an earlier export
        assert_private(out)
    finally:
        store.close()
    assert_private(engram_home)


def test_an_old_world_readable_store_is_narrowed_at_open(engram_home: Path) -> None:
    from storage.fakes import MemoryVectorIndex

    engram_home.mkdir(mode=0o755)
    (engram_home / "notes.txt").write_text("left by an older version")
    (engram_home / "notes.txt").chmod(0o644)
    (engram_home / "models").mkdir()
    (engram_home / "models" / "shared.gguf").write_text("x")
    (engram_home / "models" / "shared.gguf").chmod(0o644)
    MemoryStore.open(engram_home, HashEmbedder(), lambda _p: MemoryVectorIndex()).close()
    assert stat.S_IMODE(engram_home.stat().st_mode) == 0o700
    assert stat.S_IMODE((engram_home / "notes.txt").stat().st_mode) == 0o600
    # the built-in models are shared with other readers on purpose (app/model_files.py)
    assert stat.S_IMODE((engram_home / "models" / "shared.gguf").stat().st_mode) == 0o644
