from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from app import bootstrap, cli
from app.cli import main
from app.settings import load_settings
from storage.protocols import Embedder
from storage.store import MemoryStore
from tests.storage.failing_index import open_failing

ENGRAM = Path(sys.executable).with_name("engram")


@pytest.fixture(autouse=True)
def shared_embedder(monkeypatch: pytest.MonkeyPatch, real_embedder: Embedder) -> None:
    """The real model, loaded once for the module instead of once per command."""
    monkeypatch.setattr(bootstrap, "make_embedder", lambda settings: real_embedder)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.real
def test_add_search_get_history_undo(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys,
        "add",
        "--type",
        "episodic",
        "Lunch with Priya at the noodle bar",
        "--occurred-at",
        "2026-11-20T12:30+01:00",
        "--provenance",
        "evt_a",
    )
    assert code == 0
    ep_id = json.loads(out)["id"]
    run(
        capsys, "add", "--type", "semantic", "Priya leads the data platform team", "--name", "Priya"
    )
    run(capsys, "add", "--type", "procedural", "Deploy the site\nbuild\nupload\npurge cache")
    run(capsys, "add", "--type", "resource", "Q3 planning notes", "--name", "q3.md")
    run(capsys, "add", "--type", "core", "Name: Sam", "--label", "human")
    code, out, _ = run(
        capsys,
        "add",
        "--type",
        "knowledge_vault",
        "hunter2",
        "--caption",
        "home wifi password",
        "--sensitivity",
        "high",
    )
    vault_id = json.loads(out)["id"]

    code, out, _ = run(capsys, "search", "where did I eat with Priya", "--json", "--k", "3")
    assert ep_id in [h["id"] for h in json.loads(out)]
    code, out, _ = run(capsys, "search", "lunch with Priya", "--json", "--k", "3")
    hits = json.loads(out)
    assert code == 0 and hits[0]["id"] == ep_id
    assert {"id", "type", "score", "ranks", "headline", "time", "provenance"} <= set(hits[0])
    assert hits[0]["provenance"] == ["evt_a"]

    code, out, _ = run(capsys, "search", "Priya", "--type", "semantic", "--json")
    assert [h["type"] for h in json.loads(out)] == ["semantic"]
    code, out, _ = run(capsys, "search", "Priya", "--since", "2026-11-21", "--json")
    assert ep_id not in [h["id"] for h in json.loads(out)]

    code, out, _ = run(capsys, "search", "wifi password", "--json")
    assert "hunter2" not in out  # masked in results
    code, out, _ = run(capsys, "get", vault_id)
    assert "hunter2" not in out
    code, out, _ = run(capsys, "get", vault_id, "--reveal")
    assert json.loads(out)["secret_value"] == "hunter2"

    code, out, _ = run(capsys, "delete", ep_id)
    assert code == 0
    code, out, _ = run(capsys, "undo")
    assert json.loads(out)["memory_id"] == ep_id
    code, out, _ = run(capsys, "history", ep_id)
    assert [line.split()[3] for line in out.splitlines()] == ["undo", "delete", "create"]

    code, out, _ = run(capsys, "stats")
    stats = json.loads(out)
    assert stats["memories"]["episodic"] == 1 and stats["total"] == 6


@pytest.mark.real
def test_export_import_round_trip(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run(capsys, "add", "--type", "semantic", "The cat is called Miso", "--name", "Miso")
    code, out, _ = run(capsys, "export", str(tmp_path / "dump"))
    assert code == 0 and json.loads(out)["exported"]["semantic"] == 1
    monkeypatch.setenv("ENGRAM_HOME", str(tmp_path / "second"))
    (tmp_path / "second").mkdir()
    (tmp_path / "second" / "vault.key").write_bytes(
        (Path(os.environ["ENGRAM_HOME"]).parent / "engram-home" / "vault.key").read_bytes()
    )
    code, out, _ = run(capsys, "import", str(tmp_path / "dump"))
    assert json.loads(out)["imported"]["semantic"] == 1
    code, out, _ = run(capsys, "search", "cat name", "--json")
    assert json.loads(out)[0]["headline"].startswith("Miso")


def test_user_errors_are_clear_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "add", "--type", "semantic", "   ")
    assert code == 2 and "engram: error: text is empty" in err
    code, _, err = run(capsys, "add", "--type", "knowledge_vault", "s3cret")
    assert code == 2 and "needs --caption" in err
    code, _, err = run(capsys, "get", "sem_missing")
    assert code == 2 and "no memory with id 'sem_missing'" in err
    code, _, err = run(capsys, "add", "--type", "episodic", "x", "--occurred-at", "yesterday")
    assert code == 2 and "not an ISO 8601 time" in err
    code, _, err = run(capsys, "add", "--type", "core", "x" * 5001)
    assert code == 2 and "limit is 5,000" in err
    code, _, err = run(capsys, "import", "/nonexistent/dump")
    assert code == 2 and "not an Engram export" in err


def test_installed_script_rejects_invalid_utf8_and_binary(tmp_path: Path) -> None:
    env = {**os.environ}
    bad = subprocess.run(
        [
            str(ENGRAM),
            "add",
            "--type",
            "semantic",
            b"caf\xe9 \xff".decode("utf-8", "surrogateescape"),
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 2 and "not valid UTF-8" in bad.stderr
    binary = subprocess.run(
        [str(ENGRAM), "add", "--type", "resource", "-"],
        env=env,
        input="PK\x03\x04\x00\x00binary",
        capture_output=True,
        text=True,
        check=False,
    )
    assert binary.returncode == 2 and "looks like binary" in binary.stderr
    huge = subprocess.run(
        [str(ENGRAM), "add", "--type", "resource", "-"],
        env=env,
        input="word " * 30_000,
        capture_output=True,
        text=True,
        check=False,
    )
    assert huge.returncode == 2 and "the limit is 100,000 per field" in huge.stderr


@pytest.mark.real
def test_add_while_the_vector_index_fails_is_stored_once_with_a_warning(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, real_embedder: Embedder
) -> None:
    """The memory is in SQLite: exit 0 with its id, and a warning rather than an error (an
    error would have the user add it again, as a copy). The next open indexes it."""
    data_dir = load_settings().resolved_data_dir()
    broken = {"on": True}

    def open_store(args: object) -> MemoryStore:
        return open_failing(data_dir, real_embedder, failing=broken["on"])[0]

    monkeypatch.setattr(cli, "_open", open_store)
    code, out, err = run(
        capsys, "add", "--type", "semantic", "Priya leads the data platform team", "--name", "Priya"
    )
    assert code == 0
    priya = json.loads(out)["id"]
    assert err.startswith("engram: warning: saved, but the vector index is behind by 1 memory")
    assert "No space left on device" in err and "error" not in err
    code, out, err = run(capsys, "add", "--type", "core", "Name: Sam")
    assert code == 0 and json.loads(out)["label"] == "human"
    assert err.startswith("engram: warning: saved, but the vector index")
    code, out, err = run(capsys, "delete", json.loads(out)["id"])
    assert code == 0 and "engram: warning:" in err

    broken["on"] = False
    code, out, err = run(capsys, "search", "who runs the data platform", "--json")
    assert code == 0 and err == ""
    [hit] = json.loads(out)
    assert hit["id"] == priya and hit["ranks"].get("vector") == 1
    code, out, _ = run(capsys, "stats")
    stats = json.loads(out)
    assert stats["total"] == 1 and stats["unindexed"] == 0


@pytest.mark.real
def test_search_shows_events_get_shows_them_and_retention_counts_first(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from datetime import UTC, datetime, timedelta

    from app.runtime import Runtime
    from storage.records import EpisodicMemory, Event

    with Runtime(load_settings()) as runtime:
        store = runtime.store()
        event = store.events.put(
            Event(source="screen", app="xterm", text="Meeting with Dana, Room: Aurora")
        )
        old = store.events.put(
            Event(source="chat", text="User asked: the Zanzibar trip?", occurred_at=datetime.now(
                UTC) - timedelta(days=100))
        )  # fmt: skip
        store.events.claim(10)
        store.events.done([old.id])
        memory = store.add(EpisodicMemory(summary="Asked about Zanzibar", provenance=(old.id,)))
    code, out, _ = run(capsys, "search", "Aurora")
    assert code == 0 and "[event] Meeting with Dana, Room: Aurora" in out
    assert "seen on screen in xterm" in out and f"id={event.id}" in out
    code, out, _ = run(capsys, "search", "Aurora", "--no-events")
    assert code == 0 and event.id not in out
    code, out, _ = run(capsys, "search", "Aurora", "--json")
    assert json.loads(out)[0]["type"] == "event"
    code, out, _ = run(capsys, "get", event.id)
    shown = json.loads(out)
    assert (shown["type"], shown["status"]) == ("event", "pending")  # recovered at open
    assert [s["id"] for s in shown["sources"]] == [event.id]  # an event is its own source
    code, out, _ = run(capsys, "retention", "--dry-run")
    assert json.loads(out) == {"keep_days": 90, "would_remove": 1}  # only the old, done one
    code, out, _ = run(capsys, "retention")
    assert json.loads(out) == {"keep_days": 90, "removed": 1}
    code, out, _ = run(capsys, "get", memory.id)
    assert json.loads(out)["sources"] == [{"id": old.id, "note": "source expired"}]
    code, _, err = run(capsys, "get", old.id)
    assert code == 2 and "source expired" in err
