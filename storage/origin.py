"""Who wrote a memory or a core line: its origin, and what an agent may therefore touch.

An origin is a string with a known prefix: `user` (typed in the app or the CLI), `import` or
`import:<source>`, `agent`, and (for clients of the MCP server) `mcp:<client>`. Only what an
agent wrote may be changed or deleted by an agent; everything else is the user's, and an agent's
wish to change it becomes a suggestion (storage/suggestions.py). A string, not an enum, so a new
kind of writer needs no migration.
"""

from __future__ import annotations

from collections.abc import Sequence

USER = "user"
AGENT = "agent"
IMPORT = "import"
PREFIXES = (USER, AGENT, IMPORT, "mcp")


def valid_origin(origin: str) -> str:
    """`origin` if its prefix is known ("" means not yet stamped by the store)."""
    if origin and origin.split(":", 1)[0] not in PREFIXES:
        known = ", ".join(PREFIXES)
        raise ValueError(f"unknown origin {origin!r}; an origin starts with one of {known}")
    return origin


#: Actors that rewrite stored text on Engram's own account (a vault secret withheld from what
#: quotes it): what they touch keeps its owner.
KEEPS_OWNER = frozenset({"vault-scrub"})


def origin_of(actor: str) -> str:
    """The origin of what `actor` (a history actor: "user", "agents:b_…", "import") writes:
    anything that is not the agents or an importer acts for the user."""
    if actor == "agents" or actor.startswith("agents:"):
        return AGENT
    head = actor.split(":", 1)[0]
    if head in (IMPORT, "mcp"):
        return actor
    return USER


def agent_owned(origin: str) -> bool:
    """Whether an agent may change or delete what has this origin. "" is a line an agent
    planned in this very batch (the store stamps every stored line)."""
    return origin in ("", AGENT) or origin.startswith(AGENT + ":")


def normalised(text: str) -> str:
    """A line or a field as compared for "the same": case and spacing folded."""
    return " ".join(text.split()).lower().rstrip(" .!")


def carry_line_origins(
    old_value: str, old_origins: Sequence[str], new_value: str, fill: str = ""
) -> tuple[str, ...]:
    """The origin of each line of `new_value`: a line also in `old_value` (matched once, word
    for word) keeps its origin there; any other line is new and gets `fill`."""
    pool: dict[str, list[str]] = {}
    old_lines = old_value.splitlines()
    for n, line in enumerate(old_lines):
        origin = old_origins[n] if n < len(old_origins) else ""
        pool.setdefault(line, []).append(origin)
    out = []
    for line in new_value.splitlines():
        kept = pool.get(line)
        out.append(kept.pop(0) if kept else fill)
    return tuple(out)


def protected_lines(value: str, origins: Sequence[str]) -> list[str]:
    """The lines of a core block that are not an agent's, in order."""
    lines = value.splitlines()
    return [line for n, line in enumerate(lines) if not agent_owned(_at(origins, n))]


def dropped_protected(old_value: str, old_origins: Sequence[str], new_value: str) -> list[str]:
    """The user's (or imported) lines of `old_value` that `new_value` lost or changed."""
    remaining = list(new_value.splitlines())
    lost = []
    for line in protected_lines(old_value, old_origins):
        if line in remaining:
            remaining.remove(line)
        else:
            lost.append(line)
    return lost


def _at(origins: Sequence[str], n: int) -> str:
    return origins[n] if n < len(origins) else ""


def origin_label(origin: str) -> str:
    """Who wrote it, as a person reads it: "you", "the memory agents", "an import (locomo)",
    "MCP client claude"."""
    head, _, rest = origin.partition(":")
    if head == AGENT:
        return "the memory agents"
    if head == IMPORT:
        return f"an import ({rest})" if rest else "an import"
    if head == "mcp":
        return f"MCP client {rest}" if rest else "an MCP client"
    return "you"


def actor_label(actor: str) -> str:
    """Who made a change in the history (a history actor, see `origin_of`), for a person."""
    if actor in KEEPS_OWNER:
        return "Engram (a secret withheld)"
    return origin_label(origin_of(actor))
