"""The memory-type registry (storage/kinds.py): one spec per type, true to its record class."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from storage.kinds import KINDS, kind_spec
from storage.records import (
    CoreBlock,
    EpisodicMemory,
    MemoryType,
    ProceduralMemory,
    Record,
    ResourceMemory,
    SemanticMemory,
    VaultEntry,
)

SAMPLES: list[Record] = [
    CoreBlock(label="human", value="Name: Ana\nLives in Lyon"),
    EpisodicMemory(
        summary="Booked the train", details="seat 42", occurred_at=datetime(2024, 5, 1, tzinfo=UTC)
    ),
    SemanticMemory(name="Ana", summary="the user's sister", details="lives in Lyon"),
    ProceduralMemory(summary="Deploy", steps=("build", "push")),
    ResourceMemory(title="Notes", content="the whole document"),
    VaultEntry(caption="Wi-Fi password", secret_value="hunter2-secret", sensitivity="high"),
]


def test_every_memory_type_has_a_spec() -> None:
    assert set(KINDS) == set(MemoryType)
    assert all(kind_spec(t).memory_type is t for t in MemoryType)
    titles = [kind_spec(t).title for t in MemoryType]
    assert all(titles) and len(set(titles)) == len(titles)


@pytest.mark.parametrize("memory_type", list(MemoryType))
def test_each_editable_field_exists_on_its_record_class(memory_type: MemoryType) -> None:
    spec = kind_spec(memory_type)
    names = [f.name for f in spec.fields]
    assert names and len(set(names)) == len(names)
    for field in spec.fields:
        assert field.name in spec.record_class.model_fields, field.name
        assert field.label
        if field.widget == "choice":
            assert spec.choices(field.name), field.name  # a Literal on the record class
    assert any(f.says_something for f in spec.fields)  # a memory of this type can say something
    # every field a record cannot be made without is one a person can fill in
    required = {n for n, info in spec.record_class.model_fields.items() if info.is_required()}
    assert required <= set(names)
    assert all(spec.required(n) for n in required)


def test_choices_come_from_the_record_class() -> None:
    assert kind_spec(MemoryType.KNOWLEDGE_VAULT).choices("sensitivity") == ("low", "medium", "high")
    assert kind_spec(MemoryType.PROCEDURAL).choices("entry_type") == ("workflow", "guide", "script")


@pytest.mark.parametrize("record", SAMPLES, ids=lambda r: r.kind.value)
def test_prompt_lines_show_the_record_in_one_line(record: Record) -> None:
    spec = kind_spec(record.kind)
    for line in (spec.candidate_line(record), spec.context_line(record)):
        assert line and "\n" not in line and len(line) <= 600


def test_prompt_lines_never_show_a_withheld_value() -> None:
    secret = SAMPLES[-1]
    assert isinstance(secret, VaultEntry) and secret.withheld
    spec = kind_spec(MemoryType.KNOWLEDGE_VAULT)
    for line in (spec.candidate_line(secret), spec.context_line(secret)):
        assert "hunter2" not in line and VaultEntry.WITHHELD in line
    low = secret.updated(sensitivity="low")
    assert "hunter2-secret" in spec.context_line(low)


def test_a_vault_value_is_masked_withheld_and_scrubbed_by_the_record() -> None:
    entry = VaultEntry(caption="PIN", secret_value="4921", sensitivity="high")
    assert entry.shown_value() == VaultEntry.MASK and entry.shown_value(reveal=True) == "4921"
    assert entry.masked().secret_value == VaultEntry.MASK
    assert entry.prompt_value() == VaultEntry.WITHHELD
    assert entry.scrub("typed 4921 at the door") == f"typed {VaultEntry.WITHHELD} at the door"
    medium = entry.updated(sensitivity="medium")
    assert not medium.withheld and medium.scrub("typed 4921") == "typed 4921"
    short = VaultEntry(caption="PIN", secret_value="492", sensitivity="high")
    assert short.scrub("room 492") == "room 492"  # too short to replace safely
