"""`engram mcp`: Engram as the long-term memory of other assistants, over the Model Context
Protocol (stdio), built on the official SDK. The only module that imports `mcp`.

The tools' work is app/api.py's; this module turns it into MCP: tool schemas, errors as MCP
tool errors (never a crash of the server), a rate limit per client, and the time resource. The
store is reached through `Backend`: in this process when nobody else holds the data folder
(then this process serves the folder to others, and gives it up when the desktop app asks), or
through the running app over the local socket when it does (app/instance.py).
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import sys
import threading
import time
from collections import deque
from typing import TYPE_CHECKING, Annotated, Any

from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import Field

from app import instance
from app.api import Api, ApiError
from app.routing import held_elsewhere
from app.settings import Settings, load_settings

if TYPE_CHECKING:
    from app.runtime import Runtime  # loaded only to open the store here: not while the app runs

log = logging.getLogger(__name__)

SERVER_NAME = "engram"
TIME_URI = "engram://now"
INSTRUCTIONS = (
    "Engram is the user's private, local memory: what they saw on screen, said and saved. "
    "search_memories finds memories and captured events; get_memory shows one with the events "
    "it came from; recent_activity is the timeline by app and window. Times are ISO 8601; "
    f"read {TIME_URI} for the current time and zone."
)


class RateLimit:
    """At most `per_minute` calls in any sliding minute."""

    def __init__(self, per_minute: int) -> None:
        self._per_minute = per_minute
        self._calls: deque[float] = deque()
        self._lock = threading.Lock()

    def check(self) -> None:
        now = time.monotonic()
        with self._lock:
            while self._calls and now - self._calls[0] > 60.0:
                self._calls.popleft()
            if len(self._calls) >= self._per_minute:
                wait = 60.0 - (now - self._calls[0])
                raise ApiError(
                    f"rate limit: {self._per_minute} calls a minute; try again in {wait:.0f} s"
                )
            self._calls.append(now)


class Backend:
    """Where a call is answered: the app that holds the store, or this process."""

    def __init__(self, settings: Settings, runtime: Runtime | None = None) -> None:
        self.settings = settings
        self._runtime = runtime
        self._lock = threading.RLock()

    def call(self, name: str, arguments: dict[str, Any], client: str) -> Any:
        data_dir = self.settings.resolved_data_dir()
        with self._lock:
            runtime = self._runtime
            if runtime is None and held_elsewhere(data_dir):
                message = {"op": "api", "name": name, "arguments": arguments, "client": client}
                try:
                    return instance.call(data_dir, message, timeout_s=60.0)
                except instance.RemoteError as exc:
                    raise ApiError(str(exc)) from None
                except instance.NotServed:
                    raise ApiError(
                        f"the data folder {data_dir} is held by another Engram process that "
                        "does not answer (an older version?); close it and try again"
                    ) from None
            if runtime is None:
                from app.runtime import Runtime

                runtime = self._runtime = Runtime(self.settings, serve=True, on_yield=self._yield)
            return Api(runtime.store, lambda: self.settings.mcp).call(name, arguments, client)

    def _yield(self) -> bool:
        """The desktop app wants the store: close it; later calls go to the app."""
        with self._lock:
            runtime, self._runtime = self._runtime, None
        if runtime is not None:
            runtime.close()
        return True

    def close(self) -> None:
        self._yield()


def _client(ctx: Context[Any, Any]) -> str:
    with contextlib.suppress(Exception):
        params = ctx.session.client_params
        if params is not None and params.client_info.name:
            return str(params.client_info.name)
    return "client"


def build_server(settings: Settings, backend: Backend | None = None) -> MCPServer[Any]:
    """The MCP server; the write tools are listed only when the user turned writes on."""
    backend = backend or Backend(settings)
    limit = RateLimit(settings.mcp.calls_per_minute)
    server: MCPServer[Any] = MCPServer(SERVER_NAME, instructions=INSTRUCTIONS, version="0.1.0")

    def run(name: str, ctx: Context[Any, Any], **arguments: Any) -> dict[str, Any]:
        try:
            limit.check()
            result = backend.call(name, arguments, _client(ctx))
        except ApiError as exc:
            raise ToolError(str(exc)) from None
        return dict(result)

    @server.tool()
    def search_memories(
        ctx: Context[Any, Any],
        query: Annotated[str, Field(description="what to look for, in words")],
        types: Annotated[
            list[str] | None,
            Field(
                description="memory types to search (core, episodic, semantic, procedural, "
                "resource, knowledge_vault, event); default: all, with captured events"
            ),
        ] = None,
        since: Annotated[str | None, Field(description="ISO 8601 start, inclusive")] = None,
        until: Annotated[str | None, Field(description="ISO 8601 end, exclusive")] = None,
        limit: Annotated[int | None, Field(description="results at most")] = None,
    ) -> dict[str, Any]:
        """Hybrid (keyword and meaning) search over the user's memories and captured events.
        Each result has id, type, text, time, origin and source_ids."""
        return run("search_memories", ctx, query=query, types=types, since=since, until=until,
                   limit=limit)  # fmt: skip

    @server.tool()
    def get_memory(
        ctx: Context[Any, Any], id: Annotated[str, Field(description="a memory or event id")]
    ) -> dict[str, Any]:
        """One memory with the source events it was made from ("why do I know this")."""
        return run("get_memory", ctx, id=id)

    @server.tool()
    def recent_activity(
        ctx: Context[Any, Any],
        since: Annotated[str | None, Field(description="ISO 8601; default 24 h ago")] = None,
        until: Annotated[str | None, Field(description="ISO 8601; default now")] = None,
        app: Annotated[str | None, Field(description="only this application")] = None,
        limit: Annotated[int | None, Field(description="groups at most")] = None,
    ) -> dict[str, Any]:
        """What was on the user's screen (and said, and imported), grouped by app and window."""
        return run("recent_activity", ctx, since=since, until=until, app=app, limit=limit)

    if settings.mcp.writes_enabled:

        @server.tool()
        def add_memory(
            ctx: Context[Any, Any],
            text: Annotated[str, Field(description="what to remember")],
            type: Annotated[
                str | None,
                Field(description="semantic (default), episodic, procedural or resource"),
            ] = None,
        ) -> dict[str, Any]:
            """Save a memory (the user can see and undo it; it is marked as yours)."""
            return run("add_memory", ctx, text=text, type=type)

        @server.tool()
        def update_memory(
            ctx: Context[Any, Any],
            id: Annotated[str, Field(description="a memory written over MCP")],
            text: Annotated[str, Field(description="its new text")],
        ) -> dict[str, Any]:
            """Rewrite a memory written over MCP (undoable)."""
            return run("update_memory", ctx, id=id, text=text)

        @server.tool()
        def delete_memory(
            ctx: Context[Any, Any],
            id: Annotated[str, Field(description="a memory written over MCP")],
        ) -> dict[str, Any]:
            """Delete a memory written over MCP (undoable)."""
            return run("delete_memory", ctx, id=id)

    @server.resource(TIME_URI, name="now", mime_type="application/json")
    def now() -> str:
        """The current local time, time zone and UTC offset."""
        return json.dumps(Api(_no_store, lambda: settings.mcp).op_now())

    return server


def _no_store() -> Any:
    raise ApiError("the time needs no store")


def host_config() -> dict[str, Any]:
    """The snippet an MCP host (Claude Desktop's claude_desktop_config.json, an editor) needs."""
    command = shutil.which("engram") or sys.executable
    args = ["mcp"] if command != sys.executable else ["-m", "app", "mcp"]
    return {"mcpServers": {SERVER_NAME: {"command": command, "args": args}}}


def run_stdio() -> int:
    settings = load_settings()
    backend = Backend(settings)
    try:
        build_server(settings, backend).run("stdio")
    finally:
        backend.close()
    return 0
