"""The origin rule as storage enforces it: who a write makes the owner of a memory, the last
guard that keeps every agent off the user's words, and what accepting a suggestion writes.

The memory agents already turn a change to a user's memory into a suggestion when they plan
(agents/memory_agent.py); this guard is defence in depth, so no bug in a plan can reach a row.
"""

from __future__ import annotations

from storage.errors import NotFound, ProtectedMemory
from storage.origin import (
    AGENT,
    IMPORT,
    KEEPS_OWNER,
    USER,
    agent_owned,
    carry_line_origins,
    dropped_protected,
    origin_of,
    protected_lines,
)
from storage.records import CoreBlock, Record
from storage.suggestions import Suggestion


def stamped(record: Record, before: Record | None, actor: str) -> Record:
    """`record` with the origin this write gives it (and each core line's): an agent's write
    keeps what it changes the owner's; a user's edit makes a memory the user's; a new line is
    its writer's, a kept line keeps its origin."""
    mine = origin_of(actor)
    if actor in KEEPS_OWNER and before is not None:
        origin = before.origin or mine
    elif mine == AGENT:
        origin = before.origin if before is not None and before.origin else AGENT
    elif before is None:
        origin = record.origin or mine
    elif mine == USER:
        origin = USER
    else:
        origin = record.origin or before.origin or mine
    changes: dict[str, object] = {"origin": origin}
    if isinstance(record, CoreBlock):
        imported = mine.startswith(IMPORT) and all(record.line_origins)
        if not imported:
            old = before if isinstance(before, CoreBlock) else None
            changes["line_origins"] = carry_line_origins(
                old.value if old else "", old.line_origins if old else (), record.value, mine
            )
    return record.model_copy(update=changes)


def restored(record: Record, current: Record | None) -> Record:
    """A version brought back by undo, with the origins of one kept before they were recorded
    filled in from the memory as it is (or as the user's)."""
    if record.origin and not (isinstance(record, CoreBlock) and not all(record.line_origins)):
        return record
    origin = record.origin or (current.origin if current is not None else USER) or USER
    changes: dict[str, object] = {"origin": origin}
    if isinstance(record, CoreBlock):
        old = current if isinstance(current, CoreBlock) else None
        carried = carry_line_origins(
            old.value if old else "", old.line_origins if old else (), record.value, USER
        )
        changes["line_origins"] = tuple(
            mine or kept for mine, kept in zip(record.line_origins, carried, strict=True)
        )
    return record.model_copy(update=changes)


def guard(before: Record | None, after: Record | None, actor: str) -> None:
    """Raise `ProtectedMemory` when an agent's write would change or delete what is not an
    agent's: a user's memory, or a user's line of a core block."""
    if origin_of(actor) != AGENT or before is None:
        return
    if isinstance(before, CoreBlock):
        if after is None:
            lost = protected_lines(before.value, before.line_origins)
        else:
            assert isinstance(after, CoreBlock)
            lost = dropped_protected(before.value, before.line_origins, after.value)
        if lost:
            raise ProtectedMemory(
                f"the agents may not change the user's line {lost[0]!r} of the {before.label} block"
            )
        return
    if not agent_owned(before.origin):
        raise ProtectedMemory(
            f"the agents may not change or delete {before.id}: it is the {before.origin}'s"
        )


def accepted(record: Record, suggestion: Suggestion) -> Record | None:
    """The memory once `suggestion` is applied to it (None: it is deleted)."""
    provenance = tuple(dict.fromkeys((*record.provenance, *suggestion.events)))
    if suggestion.line is not None:
        assert isinstance(record, CoreBlock)
        lines = record.value.splitlines()
        if suggestion.line not in lines:
            raise NotFound(f"the line {suggestion.line!r} is no longer in the {record.label} block")
        at = lines.index(suggestion.line)
        if suggestion.op == "delete":
            del lines[at]
        else:
            lines[at] = str(suggestion.fields["value"])
        return record.updated(value="\n".join(lines), provenance=provenance)
    if suggestion.op == "delete":
        return None
    return record.updated(**suggestion.fields, provenance=provenance)
