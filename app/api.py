"""What other programs may ask of Engram, JSON in and JSON out: the operations behind the MCP
tools, in one place that knows no MCP and no socket.

The MCP server (app/mcp_server.py) calls these in-process when it holds the store, or sends the
same call to the running app over the local socket (app/instance.py) when the app does; either
way the same code answers. Every text that leaves is bounded (`McpSettings.max_text_chars`,
`max_results`) and scrubbed of the store's high-sensitivity vault values; a vault entry leaves
as its caption only, never its value. Bad arguments raise `ApiError`, which each transport
turns into its own error reply.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from app.settings import McpSettings
from storage.dates import UnknownDateFormat, parse_when
from storage.errors import EngramError, NotFound
from storage.records import (
    EpisodicMemory,
    Event,
    MemoryType,
    ProceduralMemory,
    Record,
    ResourceMemory,
    SemanticMemory,
    VaultEntry,
    check_text,
)
from storage.store import EventHit, MemoryStore
from storage.text import clip, first_line

#: Memory types a client may name; "event" asks for captured events.
TYPE_NAMES = [t.value for t in MemoryType]
#: Types a client may write: not the vault (secrets are typed by the user) nor core blocks
#: (the user's own summary of themselves).
WRITABLE = (
    MemoryType.SEMANTIC,
    MemoryType.EPISODIC,
    MemoryType.PROCEDURAL,
    MemoryType.RESOURCE,
)
#: The tools that write, listed only when writes are on.
WRITE_TOOLS = ("add_memory", "update_memory", "delete_memory")


class ApiError(EngramError):
    """A call Engram cannot answer as asked (a bad argument, an unknown id, writes off)."""


def _when(value: str | None, name: str) -> datetime | None:
    if value is None or value == "":
        return None
    try:
        return parse_when(value, tz=datetime.now().astimezone().tzinfo or UTC)
    except UnknownDateFormat as exc:
        raise ApiError(f"{name}: {exc} (use ISO 8601, e.g. 2026-11-22T09:30+01:00)") from None


def _limit(value: int | None, bounds: McpSettings) -> int:
    if value is None:
        return min(10, bounds.max_results)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ApiError(f"limit must be a whole number of at least 1, not {value!r}")
    return min(value, bounds.max_results)


class Api:
    """The operations, over one store and the MCP settings (bounds, writes on or off)."""

    def __init__(self, store: Callable[[], MemoryStore], settings: Callable[[], McpSettings]):
        self._store = store
        self._settings = settings

    def call(self, name: str, arguments: dict[str, Any], client: str = "client") -> Any:
        """Run operation `name` (one of the MCP tools, or `now`); `client` names who asks."""
        if name in WRITE_TOOLS:
            if not self._settings().writes_enabled:
                raise ApiError(
                    f"{name}: writing over MCP is off; the user can turn it on in Engram's "
                    "settings (mcp.writes_enabled)"
                )
            arguments = {**arguments, "client": client}
        method = getattr(self, f"op_{name}", None)
        if method is None:
            raise ApiError(f"no operation {name!r}")
        try:
            return method(**arguments)
        except TypeError as exc:
            raise ApiError(f"{name}: bad arguments ({exc})") from None
        except ApiError:
            raise
        except EngramError as exc:
            raise ApiError(str(exc)) from None

    # ----- shaping what leaves ---------------------------------------------------------------

    def _text(self, text: str) -> str:
        clean = self._store().secrets().scrub(text)
        width = self._settings().max_text_chars
        return clean if len(clean) <= width else clean[: width - 1] + "…"

    def _memory(self, record: Record) -> dict[str, Any]:
        if isinstance(record, VaultEntry):  # the caption only, never the value
            text = record.caption
            extra = {"sensitivity": record.sensitivity, "value": "[withheld]"}
        else:
            text, extra = record.index_text(), {}
        return {
            "id": record.id,
            "type": record.kind.value,
            "text": self._text(text),
            "time": record.timestamp.isoformat(),
            "origin": record.origin,
            "source_ids": list(record.provenance),
            **extra,
        }

    def _event(self, event: Event) -> dict[str, Any]:
        return {
            "id": event.id,
            "type": "event",
            "text": self._text(event.index_text()),
            "time": event.occurred_at.isoformat(),
            "origin": event.origin(),
            "source_ids": [event.id],
            "app": event.app,
            "window": event.window_title,
        }

    # ----- reading ---------------------------------------------------------------------------

    def op_search_memories(
        self,
        query: str,
        types: list[str] | None = None,
        since: str | None = None,
        until: str | None = None,
        limit: int | None = None,
    ) -> dict[str, Any]:
        if not isinstance(query, str) or not query.strip():
            raise ApiError("query must be some text")
        if len(query) > 1000:
            raise ApiError(f"query is {len(query)} characters; 1000 at most")
        names = [types] if isinstance(types, str) else list(types or [])
        unknown = [t for t in names if t not in (*TYPE_NAMES, "event")]
        if unknown:
            known = ", ".join([*TYPE_NAMES, "event"])
            raise ApiError(f"unknown type {unknown[0]!r}; one of {known}")
        memory_types = [MemoryType(t) for t in names if t != "event"]
        with_events = not names or "event" in names
        k = _limit(limit, self._settings())
        hits = self._store().search(
            query,
            memory_types if names else None,  # ["event"]: no memory types, the events alone
            k,
            _when(since, "since"),
            _when(until, "until"),
            events=with_events,
        )
        results = []
        for hit in hits:
            item = self._event(hit.event) if isinstance(hit, EventHit) else self._memory(hit.record)
            item["score"] = round(hit.score, 4)
            results.append(item)
        results = results[:k]
        return {"query": query, "results": results}

    def op_get_memory(self, id: str) -> dict[str, Any]:
        if not isinstance(id, str) or not id.strip():
            raise ApiError("id must be a memory or event id")
        store = self._store()
        try:
            record = store.get(id)
        except NotFound:
            found = store.events.get_many([id])
            if not found:
                expired = " (removed by retention)" if store.events.expired([id]) else ""
                raise ApiError(f"no memory or event with id {id!r}{expired}") from None
            return {**self._event(found[0]), "sources": [self._event(found[0])]}
        out = self._memory(record)
        limit = self._settings().max_results
        out["sources"] = [self._event(e) for e in store.events.get_many(record.provenance)][:limit]
        out["sources_expired"] = store.events.expired(record.provenance)
        return out

    def op_recent_activity(
        self,
        since: str | None = None,
        until: str | None = None,
        app: str | None = None,
        limit: int | None = None,
    ) -> dict[str, Any]:
        """What was on screen (and said, and imported), grouped by app and window, newest
        group first. Default: the last 24 hours."""
        hi = _when(until, "until") or datetime.now(UTC)
        lo = _when(since, "since") or hi - timedelta(days=1)
        if lo >= hi:
            raise ApiError("since must be before until")
        bounds = self._settings()
        groups: dict[tuple[str, str], dict[str, Any]] = {}
        latest: dict[tuple[str, str], datetime] = {}
        recent = self._store().events.between(lo, hi, limit=5000, newest_first=True)
        for event in reversed(recent):  # the newest 5000, oldest first
            if app and app.casefold() not in event.app.casefold():
                continue
            key = (event.app or event.source, event.window_title)
            group = groups.setdefault(
                key,
                {
                    "app": key[0],
                    "window": self._text(key[1]),
                    "first_seen": event.occurred_at.isoformat(),
                    "events": 0,
                    "lines": [],
                },
            )
            if key not in latest or event.last_seen > latest[key]:
                latest[key] = event.last_seen
                group["last_seen"] = event.last_seen.isoformat()
            group["events"] += 1
            if len(group["lines"]) < 5:
                line = first_line(self._store().secrets().scrub(event.text), 200)
                group["lines"].append({"id": event.id, "text": clip(line, 200)})
        order = sorted(groups, key=lambda k: latest[k], reverse=True)
        ordered = [groups[k] for k in order]
        return {
            "since": lo.isoformat(),
            "until": hi.isoformat(),
            "groups": ordered[: _limit(limit, bounds)],
        }

    def op_now(self) -> dict[str, Any]:
        now = datetime.now().astimezone()
        return {
            "now": now.isoformat(timespec="seconds"),
            "utc": now.astimezone(UTC).isoformat(timespec="seconds"),
            "time_zone": now.tzname() or "",
            "utc_offset": now.strftime("%z"),
            "weekday": now.strftime("%A"),
        }

    # ----- writing (only when enabled) -------------------------------------------------------

    def op_add_memory(self, text: str, client: str, type: str | None = None) -> dict[str, Any]:
        memory_type = self._writable(type or MemoryType.SEMANTIC.value)
        record = _record(memory_type, self._checked(text))
        added = self._store().add(record, actor=_actor(client))
        return {"added": self._memory(added)}

    def op_update_memory(self, id: str, text: str, client: str) -> dict[str, Any]:
        store = self._store()
        before = self._own(store, id)
        changed = _record(before.kind, self._checked(text), before)
        after = store.replace(changed, actor=_actor(client))
        return {"updated": self._memory(after)}

    def op_delete_memory(self, id: str, client: str) -> dict[str, Any]:
        store = self._store()
        self._own(store, id)
        gone = store.delete(id, actor=_actor(client))
        return {"deleted": gone.id, "type": gone.kind.value, "undo": "engram undo"}

    def _checked(self, text: str) -> str:
        if not isinstance(text, str):
            raise ApiError("text must be a string")
        check_text(text)
        return text

    def _writable(self, name: str) -> MemoryType:
        allowed = ", ".join(t.value for t in WRITABLE)
        if name not in {t.value for t in WRITABLE}:
            raise ApiError(f"type {name!r} cannot be written over MCP; one of {allowed}")
        return MemoryType(name)

    def _own(self, store: MemoryStore, memory_id: str) -> Record:
        """The memory `memory_id`, if an MCP client may change it: only what was written over
        MCP; what the user, the agents or an import wrote stays theirs."""
        try:
            record = store.get(memory_id)
        except NotFound:
            raise ApiError(f"no memory with id {memory_id!r}") from None
        if not record.origin.startswith("mcp:"):
            raise ApiError(
                f"{memory_id} was written by {record.origin or 'the user'}; over MCP only "
                "memories written over MCP can be changed or deleted"
            )
        return record


def _actor(client: str) -> str:
    name = "".join(ch for ch in client if ch.isalnum() or ch in "-_. ")[:60].strip()
    return f"mcp:{name or 'client'}"


def _record(memory_type: MemoryType, text: str, before: Record | None = None) -> Record:
    """A memory of `memory_type` saying `text` (over `before`, keeping its id and sources)."""
    head = first_line(text, 120)
    if memory_type is MemoryType.EPISODIC:
        fields: dict[str, Any] = {"summary": text}
        cls: type[Record] = EpisodicMemory
        if before is None:
            fields["actor"] = "user"
    elif memory_type is MemoryType.SEMANTIC:
        fields, cls = {"name": head, "summary": text}, SemanticMemory
    elif memory_type is MemoryType.PROCEDURAL:
        steps = tuple(s.strip() for s in text.splitlines()[1:] if s.strip())
        fields, cls = {"summary": head, "steps": steps}, ProceduralMemory
    elif memory_type is MemoryType.RESOURCE:
        fields, cls = {"title": head, "content": text}, ResourceMemory
    else:
        raise ApiError(f"type {memory_type.value!r} cannot be written over MCP")
    if before is not None:
        return before.updated(**fields)
    return cls(**fields)
