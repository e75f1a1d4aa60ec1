"""The CLI and the MCP server while another process (the desktop app) holds the store: their
commands run there, over the per-user local socket, and answer at once."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app import instance
from app.cli import main
from app.runtime import Runtime
from app.settings import load_settings
from storage.fakes import HashEmbedder, MemoryVectorIndex
from storage.sqlite_db import lock_holder

ROOT = Path(__file__).resolve().parents[2]


def _env(home: Path) -> dict[str, str]:
    return {**os.environ, "ENGRAM_HOME": str(home), "PYTHONPATH": str(ROOT), "ENGRAM_KEYRING": "0"}


@pytest.fixture
def app_process(engram_home: Path) -> Iterator[subprocess.Popen[str]]:
    """A second process that holds the store and serves it, as the desktop app does."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.helpers.engram_fast", "hold"],
        env=_env(engram_home),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "serving"
    yield proc
    proc.terminate()
    assert proc.wait(30) == 0
    proc.stdout.close()


def _engram(home: Path, *argv: str, stdin: str | None = None, cwd: Path = ROOT) -> Any:
    """The real `engram` command (python -m app), in a process of its own."""
    return subprocess.run(
        [sys.executable, "-m", "app", *argv],
        env=_env(home),
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.slow
def test_cli_commands_run_in_the_process_that_holds_the_store(
    app_process: subprocess.Popen[str],
    engram_home: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert lock_holder(engram_home) == app_process.pid

    added = _engram(engram_home, "add", "--type", "semantic", "Priya leads the data team")
    assert added.returncode == 0, added.stderr
    memory_id = json.loads(added.stdout)["id"]
    piped = _engram(engram_home, "add", "--type", "episodic", "-", stdin="Lunch with Priya at noon")
    assert piped.returncode == 0, piped.stderr

    found = _engram(engram_home, "search", "Priya", "--json")
    assert found.returncode == 0, found.stderr
    assert memory_id in [h["id"] for h in json.loads(found.stdout)]

    missing = _engram(engram_home, "get", "sem_nope")  # an error travels back as an error
    assert missing.returncode == 2 and "engram: error: " in missing.stderr
    assert "sem_nope" in missing.stderr
    usage = _engram(engram_home, "search")
    assert usage.returncode == 2 and "usage" in usage.stderr

    out = tmp_path / "work"
    out.mkdir()
    exported = _engram(engram_home, "export", "dump", cwd=out)  # relative to the caller
    assert exported.returncode == 0, exported.stderr
    assert json.loads(exported.stdout)["dir"] == str(out / "dump")
    assert (out / "dump").is_dir()

    chat = out / "chat.jsonl"  # an import runs in the holder too: its events are there at once
    chat.write_text('{"time": "2024-05-01T09:00", "speaker": "Ann", "text": "kayak trip"}\n')
    imported = _engram(engram_home, "import-chat", "chat.jsonl", "--progress", cwd=out)
    assert imported.returncode == 0, imported.stderr
    assert json.loads(imported.stdout)["new"] == 1 and "ETA" in imported.stderr
    found = _engram(engram_home, "search", "kayak", "--json")
    first = json.loads(found.stdout)[0]
    assert first["type"] == "event" and first["headline"] == "Ann: kayak trip"

    # this process, as a command line would: no model loaded, well under a second each
    capsys.readouterr()
    started = time.perf_counter()
    for _ in range(5):
        assert main(["stats"]) == 0
    per_call = (time.perf_counter() - started) / 5
    stats = json.loads(capsys.readouterr().out.split("\n}\n")[0] + "\n}")
    assert stats["memories"]["semantic"] == 1 and stats["memories"]["episodic"] == 1
    assert per_call < 0.5, f"{per_call:.3f} s per routed command"
    assert app_process.poll() is None


#: What a routed command must not wait for: the models, the store, the engines, Qt.
HEAVY = (
    "pydantic",
    "storage.records",
    "storage.store",
    "app.api",
    "app.settings",
    "app.runtime",
    "agents",
    "capture",
    "numpy",
    "chromadb",
    "onnxruntime",
    "torch",
    "sentence_transformers",
    "llama_cpp",
    "PySide6",
    "mcp",
)


def _imported(stderr: str) -> set[str]:
    """The modules a `python -X importtime` run imported, from what it printed."""
    return {
        line.split("|")[2].strip()
        for line in stderr.splitlines()
        if line.startswith("import time:") and line.count("|") == 2
    } - {"package"}  # the header line


@pytest.mark.slow
@pytest.mark.parametrize(
    ("entry", "argv"),
    [
        (["-m", "app"], ["stats"]),
        (["-m", "app"], ["search", "Priya", "--json"]),
        (["-m", "app"], ["add", "--type", "semantic", "Priya moved to Lisbon"]),
        # the console script's entry point (pyproject: engram = ui.launcher:main)
        (["-c", "import sys; from ui.launcher import main; sys.exit(main(sys.argv[1:]))"], []),
    ],
)
def test_a_routed_command_imports_nothing_heavy(
    app_process: subprocess.Popen[str], engram_home: Path, entry: list[str], argv: list[str]
) -> None:
    argv = argv or ["search", "Priya"]
    run = subprocess.run(
        [sys.executable, "-X", "importtime", *entry, *argv],
        env=_env(engram_home),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip()  # the holder answered (the stats, the hits, the new id)
    imported = _imported(run.stderr)
    assert "app.routing" in imported  # it went the routed way
    heavy = sorted(m for m in imported if m.split(".")[0] in HEAVY or m in HEAVY)
    assert heavy == [], f"a routed `engram {' '.join(argv)}` imported {heavy}"
    assert app_process.poll() is None


def test_the_routed_path_finds_the_data_folder_the_settings_name(
    engram_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Read without pydantic, the settings file names the same folder `load_settings` does."""
    from app.routing import configured_data_dir
    from app.settings import settings_path

    assert configured_data_dir() == load_settings().resolved_data_dir() == engram_home
    monkeypatch.delenv("ENGRAM_HOME")  # now the settings file may name it
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))  # the platform's folder
    assert configured_data_dir() == load_settings().resolved_data_dir()  # no file
    assert configured_data_dir() == tmp_path / "xdg-data" / "engram"
    settings_path().parent.mkdir(parents=True)
    settings_path().write_text(json.dumps({"version": 2, "data_dir": str(tmp_path / "there")}))
    assert configured_data_dir() == load_settings().resolved_data_dir() == tmp_path / "there"
    settings_path().write_text(json.dumps({"version": 2, "data_dir": None}))
    assert configured_data_dir() == load_settings().resolved_data_dir() != tmp_path / "there"
    settings_path().write_text("{not json")  # the long way, which says what is wrong
    assert configured_data_dir() is None


@pytest.mark.slow
def test_mcp_server_goes_through_the_app(
    app_process: subprocess.Popen[str], engram_home: Path, tmp_path: Path
) -> None:
    from mcp import ClientSession
    from mcp.client.stdio import StdioServerParameters, stdio_client

    assert _engram(engram_home, "add", "--type", "semantic", "Ravi owns billing").returncode == 0
    params = StdioServerParameters(
        command=sys.executable,
        args=["-X", "importtime", "-m", "app", "mcp"],  # the real command, never opening the store
        env=_env(engram_home),
        cwd=str(ROOT),
    )

    async def go() -> Any:
        with (tmp_path / "mcp.err").open("w") as errlog:
            async with (
                stdio_client(params, errlog=errlog) as (read, write),
                ClientSession(read, write) as session,
            ):
                await session.initialize()
                return await session.call_tool("search_memories", {"query": "billing"})

    result = asyncio.run(asyncio.wait_for(go(), 120))
    assert not result.is_error, result.content
    assert result.structured_content is not None
    assert result.structured_content["results"][0]["text"].startswith("Ravi")
    assert lock_holder(engram_home) == app_process.pid
    # the SDK brings pydantic; what opens a store here (the runtime, agents, engines) never loads
    imported = _imported((tmp_path / "mcp.err").read_text())
    assert "app.mcp_server" in imported
    engines = ("app.runtime", "agents", "chromadb", "torch", "sentence_transformers", "llama_cpp")
    assert sorted(m for m in imported if m in engines or m.split(".")[0] in engines) == []


def test_a_holder_that_may_yield_hands_the_store_to_the_app(engram_home: Path) -> None:
    """`engram mcp` held the store first; the app asks for it, gets it, and serves from then on."""
    settings = load_settings()

    def opener(s: Any) -> Any:
        from storage.store import MemoryStore

        return MemoryStore.open(engram_home, HashEmbedder(), lambda _p: MemoryVectorIndex())

    yielded: list[bool] = []
    first = Runtime(settings, store_opener=opener, serve=True, on_yield=lambda: _close(first))

    def _close(runtime: Runtime) -> bool:
        yielded.append(True)
        runtime.close()
        return True

    first.store()
    app = Runtime(settings, store_opener=opener, serve=True, claim=True)
    try:
        app.store()
        assert yielded == [True]
        assert instance.call(engram_home, {"op": "ping"})["pid"] == os.getpid()
        stats = instance.call(
            engram_home, {"op": "api", "name": "recent_activity", "arguments": {}}
        )
        assert stats["groups"] == []
        with pytest.raises(instance.RemoteError, match="no operation"):
            instance.call(engram_home, {"op": "api", "name": "drop_tables", "arguments": {}})
    finally:
        app.close()
    with pytest.raises(instance.NotServed):
        instance.call(engram_home, {"op": "ping"})
