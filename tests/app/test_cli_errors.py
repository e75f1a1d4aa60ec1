"""Every error a user can meet ends as `engram: error: …` (exit 2) that names the thing and
says what to do, never a Python traceback: each case runs the real command in a child."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from storage.fakes import HashEmbedder, MemoryVectorIndex
from storage.records import SemanticMemory, VaultEntry
from storage.store import MemoryStore
from tests.helpers.engram_cli import Ran, engram


def seed(home: Path) -> str:
    """A store with one fact and one high-sensitivity secret; returns the fact's id."""
    with MemoryStore.open(home, HashEmbedder(), lambda _p: MemoryVectorIndex()) as store:
        fact = store.add(SemanticMemory(name="Priya", summary="Priya leads the data team"))
        store.add(VaultEntry(secret_value="door 4921", caption="door code", sensitivity="high"))
    return fact.id


def assert_user_error(ran: Ran, *words: str) -> None:
    assert ran.code == 2, ran
    assert "Traceback" not in ran.err, ran.err
    assert ran.err.startswith("engram: error: "), ran.err
    for word in words:
        assert word in ran.err, (word, ran.err)


def export_dir(tmp_path: Path, manifest: str, **files: str) -> Path:
    folder = tmp_path / "dump"
    folder.mkdir()
    (folder / "manifest.json").write_text(manifest)
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


def folder_in(export: Path, name: str) -> Path:
    (export / name).mkdir()
    return export


@pytest.fixture
def read_only_home(engram_home: Path) -> Iterator[Path]:
    seed(engram_home)
    engram_home.chmod(0o500)
    yield engram_home
    engram_home.chmod(0o700)


@pytest.mark.parametrize(
    "argv",
    [("stats",), ("search", "Priya"), ("add", "--type", "semantic", "a new fact")],
    ids=["stats", "search", "add"],
)
def test_a_read_only_data_folder(read_only_home: Path, argv: tuple[str, ...]) -> None:
    ran = engram(read_only_home, *argv, read_only=True)
    assert_user_error(ran, str(read_only_home), "read-only", "writable", "ENGRAM_HOME")
    assert "move it aside" not in ran.err  # nothing is wrong with the data


def test_a_data_folder_under_a_file(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("not a folder")
    ran = engram(tmp_path / "afile" / "engram", "stats")
    assert_user_error(ran, str(tmp_path / "afile"), "is a file", "ENGRAM_HOME")


def test_chroma_being_a_file(engram_home: Path) -> None:
    seed(engram_home)
    (engram_home / "chroma").write_text("not the vector index")
    ran = engram(engram_home, "stats", chroma=True)
    assert_user_error(ran, str(engram_home / "chroma"), "move it aside")


def test_export_onto_an_existing_file(engram_home: Path, tmp_path: Path) -> None:
    seed(engram_home)
    target = tmp_path / "backup.json"
    target.write_text("keep me")
    ran = engram(engram_home, "export", str(target))
    assert_user_error(ran, str(target), "is a file, not a folder", "new folder")
    assert target.read_text() == "keep me"


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda t: export_dir(t, "[1, 2]"), ("manifest.json", "JSON list", "not an Engram export")),
        (
            lambda t: export_dir(
                t, '{"format": "engram-export/1"}', **{"semantic.jsonl": "[" * 100_000}
            ),
            ("semantic.jsonl:1", "nested too deeply"),
        ),
        (
            lambda t: export_dir(t, '{"a": ' * 100_000 + "1" + "}" * 100_000),
            ("manifest.json", "nested too deeply"),
        ),
        (
            lambda t: folder_in(export_dir(t, '{"format": "engram-export/1"}'), "events.jsonl"),
            ("events.jsonl", "is a folder, not a file"),
        ),
    ],
    ids=["manifest-list", "nested-line", "nested-manifest", "jsonl-folder"],
)
def test_a_bad_import_folder(
    engram_home: Path, tmp_path: Path, make: Callable[[Path], Path], words: tuple[str, ...]
) -> None:
    seed(engram_home)
    ran = engram(engram_home, "import", str(make(tmp_path)))
    assert_user_error(ran, *words)


@pytest.mark.parametrize("content", [b"", b"garbage\n"], ids=["empty", "garbage"])
def test_a_damaged_vault_key(engram_home: Path, content: bytes) -> None:
    seed(engram_home)
    (engram_home / "vault.key").write_bytes(content)
    ran = engram(engram_home, "stats")
    assert_user_error(ran, str(engram_home / "vault.key"), "Restore it from a backup")
    assert (engram_home / "vault.key").read_bytes() == content  # never replaced by a new key


def test_undecodable_bytes_in_a_search(engram_home: Path) -> None:
    seed(engram_home)
    assert_user_error(engram(engram_home, "search", b"caf\xe9"), "search query", "UTF-8")


def test_a_lone_surrogate_in_a_caption(engram_home: Path) -> None:
    ran = engram(
        engram_home, "add", "--type", "knowledge_vault", "s3cret", "--caption", b"\xed\xa0\x80x"
    )
    assert_user_error(ran, "--caption", "UTF-8")


def rot(home: Path, memory_id: str) -> None:
    """Bit rot in one row: valid SQLite pages, broken JSON (integrity_check cannot see it)."""
    with sqlite3.connect(home / "engram.sqlite3") as conn:
        conn.execute("UPDATE memories SET data = substr(data, 1, 20) WHERE id = ?", (memory_id,))
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_one_bit_rotted_memory(engram_home: Path, tmp_path: Path) -> None:
    fact = seed(engram_home)
    with MemoryStore.open(engram_home, HashEmbedder(), lambda _p: MemoryVectorIndex()) as store:
        other = store.add(SemanticMemory(name="Dana", summary="Dana leads the budget review"))
    rot(engram_home, fact)

    ran = engram(engram_home, "get", fact)
    assert_user_error(ran, fact, "damaged", "engram doctor")

    found = engram(engram_home, "search", "leads", "--json")
    assert found.code == 0 and "Traceback" not in found.err
    assert [h["id"] for h in json.loads(found.out) if h["type"] == "semantic"] == [other.id]
    assert "engram: warning: skipped 1 damaged memory" in found.err and fact in found.err

    out = tmp_path / "export"
    exported = engram(engram_home, "export", str(out))
    assert exported.code == 0 and "Traceback" not in exported.err
    assert json.loads(exported.out)["exported"]["damaged"] == 1
    assert fact in exported.err
    assert json.loads((out / "manifest.json").read_text())["damaged_skipped"] == [fact]
    assert other.id in (out / "semantic.jsonl").read_text()

    stats = engram(engram_home, "stats")
    assert stats.code == 0 and json.loads(stats.out)["damaged"] == 1


def test_doctor_finds_a_bit_rotted_memory(
    engram_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app import bootstrap
    from app.doctor import check_store, run_checks

    fact = seed(engram_home)
    rot(engram_home, fact)
    monkeypatch.setattr(bootstrap, "make_embedder", lambda settings: HashEmbedder())
    monkeypatch.setattr(
        bootstrap, "make_index_factory", lambda settings: lambda _p: MemoryVectorIndex()
    )
    [result] = run_checks([check_store])
    assert not result.ok
    assert result.details["damaged_ids"] == [fact]
    assert fact in result.summary and "damaged" in result.summary
