"""`engram mcp` as a host runs it: a subprocess driven by the SDK's own stdio client."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import mcp.types as types
import pytest
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

from app import api
from app.mcp_cli import cmd_mcp
from storage.fakes import HashEmbedder
from storage.records import Event, SemanticMemory, VaultEntry
from storage.store import MemoryStore

ROOT = Path(__file__).resolve().parents[2]
SECRET = "Tr0ub4dor-and-3-horses"

Session = Callable[[ClientSession], Awaitable[Any]]


def _seed(home: Path) -> dict[str, str]:
    from storage.vector_chroma import ChromaVectorIndex

    with MemoryStore.open(home, HashEmbedder(), ChromaVectorIndex.persistent) as store:
        event = Event(
            source="screen",
            app="firefox",
            window_title="Data platform roadmap",
            text="Priya presents the data platform roadmap for Q3",
        )
        store.events.put(event)
        memory = store.add(
            SemanticMemory(
                name="Priya",
                summary="Priya leads the data platform team",
                provenance=(event.id,),
            )
        )
        vault = store.add(
            VaultEntry(secret_value=SECRET, caption="home wifi password", sensitivity="high")
        )
        store.events.put(  # a read that shows the secret is stored without it
            Event(source="screen", app="xterm", text=f"wifi password is {SECRET} for guests")
        )
        store.index_events()
        return {"event": event.id, "memory": memory.id, "vault": vault.id}


def _drive(home: Path, body: Session) -> Any:
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "tests.helpers.engram_fast", "mcp"],
        env={
            "ENGRAM_HOME": str(home),
            "ENGRAM_KEYRING": "0",
            "PYTHONPATH": str(ROOT),
            "HF_HUB_OFFLINE": "1",
            "ANONYMIZED_TELEMETRY": "False",
        },
        cwd=str(ROOT),
    )

    async def go() -> Any:
        async with stdio_client(params) as (read, write):
            info = types.Implementation(name="test-host", version="1.0")
            async with ClientSession(read, write, client_info=info) as session:
                await session.initialize()
                return await body(session)

    return asyncio.run(asyncio.wait_for(go(), timeout=120))


def _data(result: types.CallToolResult) -> Any:
    assert not result.is_error, result.content
    if result.structured_content is not None:
        return result.structured_content
    block = result.content[0]
    assert isinstance(block, types.TextContent)
    return json.loads(block.text)


def _error(result: types.CallToolResult) -> str:
    assert result.is_error
    block = result.content[0]
    assert isinstance(block, types.TextContent)
    return block.text


def _write_settings(home: Path, mcp: dict[str, Any]) -> None:
    (home / "config").mkdir(parents=True, exist_ok=True)
    (home / "config" / "settings.json").write_text(json.dumps({"mcp": mcp}))


@pytest.mark.slow
def test_read_tools_over_stdio_sources_vault_and_errors(engram_home: Path) -> None:
    ids = _seed(engram_home)

    async def body(session: ClientSession) -> dict[str, Any]:
        out: dict[str, Any] = {}
        out["tools"] = sorted(t.name for t in (await session.list_tools()).tools)
        out["search"] = _data(await session.call_tool("search_memories", {"query": "Priya data"}))
        out["get"] = _data(await session.call_tool("get_memory", {"id": ids["memory"]}))
        out["wifi"] = _data(
            await session.call_tool("search_memories", {"query": "wifi password", "limit": 50})
        )
        out["vault"] = _data(await session.call_tool("get_memory", {"id": ids["vault"]}))
        out["activity"] = _data(await session.call_tool("recent_activity", {"app": "firefox"}))
        out["add"] = await session.call_tool("add_memory", {"text": "the sky is green"})
        out["bad_limit"] = await session.call_tool(
            "search_memories", {"query": "x", "limit": "lots"}
        )
        out["bad_type"] = await session.call_tool(
            "search_memories", {"query": "x", "types": ["dreams"]}
        )
        out["bad_date"] = await session.call_tool(
            "search_memories", {"query": "x", "since": "last blue moon"}
        )
        out["missing"] = await session.call_tool("get_memory", {"id": "sem_nope"})
        out["no_args"] = await session.call_tool("get_memory", {})
        out["after"] = _data(await session.call_tool("get_memory", {"id": ids["event"]}))
        resource = await session.read_resource("engram://now")
        block = resource.contents[0]
        assert isinstance(block, types.TextResourceContents)
        out["now"] = json.loads(block.text)
        return out

    out = _drive(engram_home, body)
    assert out["tools"] == ["get_memory", "recent_activity", "search_memories"]  # writes off

    results = out["search"]["results"]
    by_id = {r["id"]: r for r in results}
    assert ids["memory"] in by_id and ids["event"] in by_id  # memories and captured events
    for r in results:
        assert {"id", "type", "text", "time", "origin", "source_ids"} <= set(r)
    assert by_id[ids["memory"]]["source_ids"] == [ids["event"]]
    assert by_id[ids["event"]]["type"] == "event"

    assert [s["id"] for s in out["get"]["sources"]] == [ids["event"]]
    assert "roadmap" in out["get"]["sources"][0]["text"]

    everything = json.dumps([out["wifi"], out["vault"]])
    assert SECRET not in everything
    assert ids["vault"] in {r["id"] for r in out["wifi"]["results"]}
    assert out["vault"]["text"] == "home wifi password"

    groups = out["activity"]["groups"]
    assert [g["app"] for g in groups] == ["firefox"]
    assert groups[0]["window"] == "Data platform roadmap" and groups[0]["events"] == 1

    assert out["add"].is_error  # not listed, not callable
    assert "limit" in _error(out["bad_limit"])
    assert "dreams" in _error(out["bad_type"])
    assert "last blue moon" in _error(out["bad_date"])
    assert "sem_nope" in _error(out["missing"])
    assert _error(out["no_args"])
    assert out["after"]["id"] == ids["event"]  # the server lived through the bad calls
    assert out["now"]["time_zone"] and out["now"]["now"]


@pytest.mark.slow
def test_writes_when_enabled_are_marked_bounded_and_undoable(engram_home: Path) -> None:
    ids = _seed(engram_home)
    _write_settings(engram_home, {"writes_enabled": True, "calls_per_minute": 12})

    async def body(session: ClientSession) -> dict[str, Any]:
        out: dict[str, Any] = {}
        out["tools"] = sorted(t.name for t in (await session.list_tools()).tools)
        added = _data(
            await session.call_tool("add_memory", {"text": "The user prefers tea over coffee"})
        )
        out["added"] = added["added"]
        memory_id = added["added"]["id"]
        out["updated"] = _data(
            await session.call_tool(
                "update_memory", {"id": memory_id, "text": "The user prefers green tea"}
            )
        )
        out["users"] = await session.call_tool(
            "update_memory", {"id": ids["memory"], "text": "Priya left"}
        )
        out["vault"] = await session.call_tool(
            "add_memory", {"text": "pin 1234", "type": "knowledge_vault"}
        )
        out["deleted"] = _data(await session.call_tool("delete_memory", {"id": memory_id}))
        calls = [await session.call_tool("get_memory", {"id": ids["event"]}) for _ in range(8)]
        out["limited"] = [c.is_error for c in calls]
        return out

    out = _drive(engram_home, body)
    assert out["tools"] == [
        "add_memory",
        "delete_memory",
        "get_memory",
        "recent_activity",
        "search_memories",
        "update_memory",
    ]
    assert out["added"]["origin"] == "mcp:test-host"
    assert out["updated"]["updated"]["text"].endswith("green tea")
    assert "written over MCP" in _error(out["users"])  # the user's memory stays the user's
    assert "knowledge_vault" in _error(out["vault"])
    assert out["limited"][:6] == [False] * 6 and out["limited"][-1] is True  # 12 a minute

    memory_id = out["added"]["id"]
    with MemoryStore.open(engram_home, HashEmbedder(), _chroma()) as store:
        changes = store.history(memory_id)
        assert [c.op for c in changes] == ["delete", "update", "create"]
        assert {c.actor for c in changes} == {"mcp:test-host"}
        store.undo(changes[0].seq)  # the delete is undone
        assert store.get(memory_id).origin == "mcp:test-host"
        assert "Priya leads" in store.get(ids["memory"]).index_text()


def _chroma() -> Any:
    from storage.vector_chroma import ChromaVectorIndex

    return ChromaVectorIndex.persistent


def test_print_config_names_the_command(capsys: pytest.CaptureFixture[str]) -> None:
    import argparse

    assert cmd_mcp(argparse.Namespace(print_config=True)) == 0
    config = json.loads(capsys.readouterr().out)
    server = config["mcpServers"]["engram"]
    assert server["args"][-1] == "mcp" and os.path.basename(server["command"])


def test_api_bounds_and_refuses_writes_when_off(fake_store: MemoryStore) -> None:
    from app.settings import McpSettings

    for n in range(40):
        fake_store.add(SemanticMemory(name=f"n{n}", summary=f"lemon fact {n} " + "x" * 3000))
    bounds = McpSettings(max_results=5, max_text_chars=200)
    calls = api.Api(lambda: fake_store, lambda: bounds)
    found = calls.call("search_memories", {"query": "lemon", "limit": 100})
    assert len(found["results"]) == 5
    assert all(len(r["text"]) <= 200 for r in found["results"])
    fake_store.events.put(Event(source="screen", app="xterm", text="lemon tart recipe"))
    events = calls.call("search_memories", {"query": "lemon", "types": ["event"]})["results"]
    assert [r["type"] for r in events] == ["event"]
    semantic = calls.call("search_memories", {"query": "lemon", "types": "semantic"})["results"]
    assert {r["type"] for r in semantic} == {"semantic"} and len(semantic) == 5
    with pytest.raises(api.ApiError, match="writing over MCP is off"):
        calls.call("add_memory", {"text": "x"})
    with pytest.raises(api.ApiError, match="bad arguments"):
        calls.call("get_memory", {"id": "a", "extra": 1})


def test_an_events_only_search_returns_as_many_events_as_asked(fake_store: MemoryStore) -> None:
    """`types: ["event"]` when memories match better than the events and outnumber the pool."""
    from app.settings import McpSettings

    for n in range(150):
        fake_store.add(SemanticMemory(name=f"k{n}", summary=f"kayak kayak {n}"))
    for n in range(30):
        fake_store.events.put(Event(source="screen", app="xterm", text=f"{n}: the kayak club"))
    calls = api.Api(lambda: fake_store, lambda: McpSettings())
    asked = {"query": "kayak", "types": ["event"], "limit": 20}
    events = calls.call("search_memories", asked)["results"]
    assert len(events) == 20 and {r["type"] for r in events} == {"event"}
    mixed = calls.call("search_memories", {**asked, "types": ["event", "semantic"]})["results"]
    assert len(mixed) == 20 and "semantic" in {r["type"] for r in mixed}


def test_recent_activity_groups_by_app_and_window_newest_first(fake_store: MemoryStore) -> None:
    from datetime import UTC, datetime, timedelta

    from app.settings import McpSettings

    now = datetime.now(UTC)
    reads = [
        ("xterm", "build log", "make: all done", 50),
        ("firefox", "Rust book", "Chapter 4 ownership", 40),
        ("xterm", "build log", "make: 3 warnings", 30),
        ("slack", "#general", "lunch at noon?", 20),
    ]
    for app_name, title, text, minutes in reads:
        fake_store.events.put(
            Event(source="screen", app=app_name, window_title=title, text=text,
                  occurred_at=now - timedelta(minutes=minutes))
        )  # fmt: skip
    fake_store.events.put(  # older than the default day
        Event(source="screen", app="gimp", text="old picture", occurred_at=now - timedelta(days=3))
    )
    calls = api.Api(lambda: fake_store, lambda: McpSettings())
    groups = calls.call("recent_activity", {})["groups"]
    assert [(g["app"], g["events"]) for g in groups] == [("slack", 1), ("xterm", 2), ("firefox", 1)]
    assert [line["text"] for line in groups[1]["lines"]] == ["make: all done", "make: 3 warnings"]
    assert calls.call("recent_activity", {"limit": 1})["groups"][0]["app"] == "slack"
    only = calls.call("recent_activity", {"app": "XTERM"})["groups"]
    assert [g["window"] for g in only] == ["build log"]
    since = (now - timedelta(days=4)).isoformat()
    assert "gimp" in {g["app"] for g in calls.call("recent_activity", {"since": since})["groups"]}
    with pytest.raises(api.ApiError, match="before"):
        calls.call("recent_activity", {"since": now.isoformat(), "until": since})


@pytest.mark.slow
def test_an_mcp_server_started_first_hands_the_store_to_the_app(engram_home: Path) -> None:
    """A host started `engram mcp` before the desktop app: the app asks for the store, gets
    it, and the same MCP session goes on working, now through the app."""
    from app.runtime import Runtime
    from app.settings import load_settings
    from storage.sqlite_db import lock_holder

    ids = _seed(engram_home)
    seen: dict[str, Any] = {}

    def app_opener(_settings: Any) -> MemoryStore:
        return MemoryStore.open(engram_home, HashEmbedder(), _chroma())

    async def body(session: ClientSession) -> None:
        first = _data(await session.call_tool("get_memory", {"id": ids["memory"]}))
        seen["mcp_pid"] = lock_holder(engram_home)
        app = Runtime(load_settings(), store_opener=app_opener, serve=True, claim=True)
        try:
            await asyncio.to_thread(app.store)  # the desktop app starting
            seen["app_holds"] = lock_holder(engram_home) == os.getpid()
            again = _data(await session.call_tool("get_memory", {"id": ids["memory"]}))
            seen["same"] = again == first
        finally:
            await asyncio.to_thread(app.close)

    _drive(engram_home, body)
    assert seen["mcp_pid"] not in (None, os.getpid())  # the MCP server held it first
    assert seen["app_holds"] and seen["same"]
