"""The knowledge-vault agent: exact values (credentials, numbers, addresses), kept encrypted.

Existing high-sensitivity values are never shown to the model (`VaultEntry.prompt_value`): it
sees their caption only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from agents.memory_agent import MemoryAgent, union
from agents.operations import FieldSpec
from storage.records import Event, MemoryType, Record, VaultEntry

if TYPE_CHECKING:
    from agents.loop import BatchPlan


class VaultAgent(MemoryAgent):
    memory_type = MemoryType.KNOWLEDGE_VAULT
    kinds = ("insert", "update", "delete", "noop")
    # Values are dates, numbers and codes: near a token per character, so three operations of
    # these bounded fields overrun the default 320 tokens and the JSON is cut mid-string.
    max_tokens = 640
    fields = (
        FieldSpec("entry_type", 30, grounded=False),
        FieldSpec("caption", 100),
        FieldSpec("secret_value", 120, verbatim=True),
        FieldSpec("sensitivity", enum=("high", "medium", "low")),
    )

    def new_record(
        self, fields: dict[str, Any], provenance: tuple[str, ...], events: Sequence[Event]
    ) -> Record:
        source = ", ".join(dict.fromkeys(e.app or e.source for e in events))
        return VaultEntry(
            source=source[:200], tree_path=(fields["entry_type"],), provenance=provenance, **fields
        )

    def merged_duplicate(self, existing: Record, fields: dict[str, Any], plan: BatchPlan) -> Record:
        """A new entry for an existing one takes the new value whole: it is the current one."""
        provenance = union(existing.provenance, plan.sources(fields))
        return self.changed_record(existing, fields, provenance, plan.events)
