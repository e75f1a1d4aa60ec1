from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from storage.errors import InvalidText
from storage.records import (
    MAX_FIELD_CHARS,
    CoreBlock,
    EpisodicMemory,
    MemoryType,
    ResourceMemory,
    SemanticMemory,
    VaultEntry,
    check_text,
    record_class,
    record_from_dict,
    record_to_dict,
)


def test_records_are_frozen_with_ids_and_aware_times() -> None:
    mem = SemanticMemory(name="Paris", summary="capital of France", provenance=("evt_1",))
    assert mem.id.startswith("sem_")
    assert mem.created_at.tzinfo is not None
    with pytest.raises(ValidationError):
        mem.name = "Lyon"  # type: ignore[misc]


def test_naive_datetimes_are_rejected() -> None:
    with pytest.raises(ValidationError, match="timezone-aware"):
        EpisodicMemory(summary="x", occurred_at=datetime(2026, 1, 1))


def test_updated_copies_and_moves_updated_at() -> None:
    mem = SemanticMemory(
        name="a",
        summary="b",
        created_at=datetime(2020, 1, 1, tzinfo=UTC),
        updated_at=datetime(2020, 1, 1, tzinfo=UTC),
    )
    new = mem.updated(summary="c")
    assert (new.id, new.summary, mem.summary) == (mem.id, "c", "b")
    assert new.updated_at > mem.updated_at


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("   \n", "empty"),
        ("x" * (MAX_FIELD_CHARS + 1), f"limit is {MAX_FIELD_CHARS:,}"),
        ("abc\x00def", "binary"),
        ("bad \udcff byte", "not valid UTF-8"),
    ],
)
def test_bad_text_gets_a_clear_error(text: str, message: str) -> None:
    with pytest.raises(InvalidText, match=message):
        check_text(text)


def test_oversized_field_rejected_in_records() -> None:
    with pytest.raises(ValidationError, match="limit"):
        SemanticMemory(name="n", summary="x" * (MAX_FIELD_CHARS + 1))


def test_round_trip_through_dicts_for_every_type() -> None:
    samples = [
        CoreBlock(label="human", value="likes tea"),
        EpisodicMemory(summary="met Ana", tree_path=("work", "meetings")),
        SemanticMemory(name="Ana", summary="a colleague"),
        ResourceMemory(title="report.pdf", content="Q3 numbers"),
        VaultEntry(caption="wifi", secret_value="hunter2", sensitivity="high"),
    ]
    for record in samples:
        assert record_from_dict(record.kind, record_to_dict(record)) == record


def test_vault_index_text_never_contains_the_secret() -> None:
    entry = VaultEntry(caption="bank PIN", secret_value="4921", entry_type="pin")
    assert "4921" not in entry.index_text()
    assert "4921" not in entry.masked().secret_value


def test_unknown_type_is_a_clear_error() -> None:
    with pytest.raises(InvalidText, match="known types: core, episodic"):
        record_class("diary")
    assert record_class("semantic") is SemanticMemory
    assert {t.value for t in MemoryType} == {
        "core",
        "episodic",
        "semantic",
        "procedural",
        "resource",
        "knowledge_vault",
    }
