"""Typed memory records after MIRIX: six memory types plus the events they are derived from.

Records are frozen pydantic models with timezone-aware datetimes. Lists are tuples so a frozen
record really is immutable. `provenance` holds the ids of the source events (or external ids such
as a chat turn id) a memory was derived from: it answers "why do you know this?".
"""

from __future__ import annotations

import re
import uuid
from abc import abstractmethod
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from storage.errors import InvalidText
from storage.origin import carry_line_origins, valid_origin
from storage.text import first_line

#: Longest text one field may hold. Above this a memory is not a memory but a document dump.
MAX_FIELD_CHARS = 100_000
#: Core blocks are always in the chat agent's prompt, so they are kept short (MIRIX uses 5,000).
CORE_BLOCK_LIMIT = 5_000
#: Characters that split a code into groups ("7391-4482", "12.34/56"): one may stand for another.
_SEPARATORS = "-_.:/"


class MemoryType(StrEnum):
    CORE = "core"
    EPISODIC = "episodic"
    SEMANTIC = "semantic"
    PROCEDURAL = "procedural"
    RESOURCE = "resource"
    KNOWLEDGE_VAULT = "knowledge_vault"


def utcnow() -> datetime:
    return datetime.now(UTC)


def check_text(value: str, *, field: str = "text", allow_empty: bool = False) -> str:
    """Reject text a memory must not hold: empty, oversized, binary or not valid UTF-8."""
    if not allow_empty and not value.strip():
        raise InvalidText(f"{field} is empty")
    if len(value) > MAX_FIELD_CHARS:
        raise InvalidText(
            f"{field} is {len(value):,} characters; the limit is {MAX_FIELD_CHARS:,} per field"
        )
    if "\x00" in value:
        raise InvalidText(f"{field} contains NUL bytes: it looks like binary data, not text")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:  # lone surrogates, e.g. undecodable bytes from argv
        raise InvalidText(f"{field} is not valid UTF-8 (at character {exc.start})") from exc
    return value


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise ValueError("datetime must be timezone-aware")
    return value


AwareDatetime = Annotated[datetime, AfterValidator(_aware)]


def _text(value: str) -> str:
    return check_text(value, allow_empty=True)


Text = Annotated[str, AfterValidator(_text)]
#: Who wrote it (storage/origin.py); "" until the store stamps it from the writer.
Origin = Annotated[str, AfterValidator(valid_origin)]


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


class Record(BaseModel):
    """What every memory has: identity, times, a place in the tree view, and provenance."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    memory_type: ClassVar[MemoryType]
    id_prefix: ClassVar[str]

    id: str = ""
    created_at: AwareDatetime = Field(default_factory=utcnow)
    updated_at: AwareDatetime = Field(default_factory=utcnow)
    tree_path: tuple[str, ...] = ()
    provenance: tuple[str, ...] = ()
    origin: Origin = ""

    def model_post_init(self, __context: Any) -> None:
        if not self.id:
            object.__setattr__(self, "id", new_id(self.id_prefix))

    @property
    def kind(self) -> MemoryType:
        return self.memory_type

    @property
    def timestamp(self) -> datetime:
        """The time the memory is about; time-range search filters on it."""
        return self.created_at

    @abstractmethod
    def headline(self) -> str:
        """One line for lists and citations."""

    @abstractmethod
    def index_text(self) -> str:
        """The text that is embedded and keyword-indexed for this memory."""

    def updated(self, **changes: Any) -> Self:
        """A validated copy with `changes` applied and `updated_at` moved on."""
        data = {**self.model_dump(), **changes}
        data["updated_at"] = changes.get("updated_at", utcnow())
        return type(self).model_validate(data)


class CoreBlock(Record):
    """A labelled block always shown to the chat agent (who the user is, who Engram is)."""

    memory_type: ClassVar[MemoryType] = MemoryType.CORE
    id_prefix: ClassVar[str] = "core"

    label: str = Field(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_]*$")
    value: Text = ""
    limit: int = Field(default=CORE_BLOCK_LIMIT, gt=0, le=CORE_BLOCK_LIMIT)
    #: The origin of each line of `value`, in order ("" for a line not yet stored).
    line_origins: tuple[Origin, ...] = ()

    def model_post_init(self, __context: Any) -> None:
        super().model_post_init(__context)
        count = len(self.value.splitlines())
        if len(self.line_origins) != count:
            padded = (*self.line_origins[:count], *("",) * (count - len(self.line_origins)))
            object.__setattr__(self, "line_origins", padded)

    def updated(self, **changes: Any) -> Self:
        """As `Record.updated`; a new `value` keeps the origin of each line it keeps."""
        if "value" in changes and "line_origins" not in changes:
            changes["line_origins"] = carry_line_origins(
                self.value, self.line_origins, changes["value"]
            )
        return super().updated(**changes)

    def lines(self) -> list[tuple[str, str]]:
        """Each line with its origin."""
        return list(zip(self.value.splitlines(), self.line_origins, strict=True))

    def headline(self) -> str:
        return f"[{self.label}] {_first_line(self.value)}"

    def index_text(self) -> str:
        return f"{self.label}: {self.value}"


class EpisodicMemory(Record):
    """Something that happened at a time: the user's timeline."""

    memory_type: ClassVar[MemoryType] = MemoryType.EPISODIC
    id_prefix: ClassVar[str] = "ep"

    occurred_at: AwareDatetime = Field(default_factory=utcnow)
    actor: Text = "user"
    event_type: Text = "activity"
    summary: Text
    details: Text = ""

    @property
    def timestamp(self) -> datetime:
        return self.occurred_at

    def headline(self) -> str:
        return _first_line(self.summary)

    def index_text(self) -> str:
        return _join(f"{self.actor}: {self.summary}", self.details)


class SemanticMemory(Record):
    """A fact or concept, independent of when it was learnt."""

    memory_type: ClassVar[MemoryType] = MemoryType.SEMANTIC
    id_prefix: ClassVar[str] = "sem"

    name: Text
    summary: Text
    details: Text = ""
    source: Text = ""

    def headline(self) -> str:
        return f"{self.name}: {_first_line(self.summary)}"

    def index_text(self) -> str:
        return _join(f"{self.name}: {self.summary}", self.details, self.source)


class ProceduralMemory(Record):
    """How to do something: a workflow, a guide or a script."""

    memory_type: ClassVar[MemoryType] = MemoryType.PROCEDURAL
    id_prefix: ClassVar[str] = "proc"

    entry_type: Literal["workflow", "guide", "script"] = "workflow"
    summary: Text
    steps: tuple[Text, ...] = ()

    def headline(self) -> str:
        return _first_line(self.summary)

    def index_text(self) -> str:
        return _join(self.summary, *self.steps)


class ResourceMemory(Record):
    """A document, file or page the user worked with, with its (possibly long) content."""

    memory_type: ClassVar[MemoryType] = MemoryType.RESOURCE
    id_prefix: ClassVar[str] = "res"

    title: Text
    resource_type: Text = "document"
    summary: Text = ""
    content: Text = ""

    def headline(self) -> str:
        return _first_line(self.title)

    def index_text(self) -> str:
        return _join(self.title, self.summary, self.content)


class VaultEntry(Record):
    """A credential, address or other sensitive fact. `secret_value` is encrypted at rest."""

    memory_type: ClassVar[MemoryType] = MemoryType.KNOWLEDGE_VAULT
    id_prefix: ClassVar[str] = "kv"

    entry_type: Text = "credential"
    source: Text = ""
    sensitivity: Literal["low", "medium", "high"] = "medium"
    secret_value: Text
    caption: Text

    def headline(self) -> str:
        return _first_line(self.caption)

    def index_text(self) -> str:
        # Never the secret itself: it would land in the keyword index and the vectors.
        return _join(self.caption, self.entry_type, self.source)

    #: Shown to a person in place of a value they have not asked to see.
    MASK: ClassVar[str] = "•" * 8
    #: Shown to a model in place of a value it must never see.
    WITHHELD: ClassVar[str] = "[value withheld]"

    @property
    def withheld(self) -> bool:
        """Whether the value is kept from every model (high sensitivity: passwords, keys)."""
        return self.sensitivity == "high"

    def shown_value(self, reveal: bool = False) -> str:
        """The value as a person sees it: masked until they ask to reveal it."""
        return self.secret_value if reveal else self.MASK

    def prompt_value(self) -> str:
        """The value as it may appear in any prompt: withheld when its sensitivity is high."""
        return self.WITHHELD if self.withheld else self.secret_value

    #: Values with fewer characters (spaces aside) are not matched inside other text: a
    #: three-digit PIN would hit every room number. They are withheld only where a whole field
    #: is the value (`storage.secrets.SecretSet`).
    MIN_SCRUB_CHARS: ClassVar[int] = 4

    def scrub_pattern(self) -> re.Pattern[str] | None:
        """How this entry's value is found in other text, None when it is not: only a
        high-sensitivity value of MIN_SCRUB_CHARS or more. Any case, and any whitespace between
        its characters, and any separator for a separator (OCR splits codes; a person types
        "7391 4482 door" for "7391-4482-DOOR"), so a variant matches too."""
        core = [ch for ch in self.secret_value if not (ch.isspace() or ch in _SEPARATORS)]
        if not self.withheld or len(core) < self.MIN_SCRUB_CHARS:
            return None
        gap = f"[\\s{re.escape(_SEPARATORS)}]*"
        return re.compile(gap.join(re.escape(ch) for ch in core), re.IGNORECASE)

    def scrub(self, text: str) -> str:
        """`text` with this entry's value withheld wherever it shows up (an episode may hold
        the moment it was typed); short values are left, they would match too much."""
        pattern = self.scrub_pattern()
        return pattern.sub(self.WITHHELD, text) if pattern else text

    def masked(self) -> VaultEntry:
        """A copy safe to hold in a list or print: the value replaced by MASK."""
        return self.model_copy(update={"secret_value": self.MASK})


AnyRecord = (
    CoreBlock | EpisodicMemory | SemanticMemory | ProceduralMemory | ResourceMemory | VaultEntry
)

RECORD_CLASSES: dict[MemoryType, type[Record]] = {
    MemoryType.CORE: CoreBlock,
    MemoryType.EPISODIC: EpisodicMemory,
    MemoryType.SEMANTIC: SemanticMemory,
    MemoryType.PROCEDURAL: ProceduralMemory,
    MemoryType.RESOURCE: ResourceMemory,
    MemoryType.KNOWLEDGE_VAULT: VaultEntry,
}


def record_class(memory_type: MemoryType | str) -> type[Record]:
    try:
        return RECORD_CLASSES[MemoryType(memory_type)]
    except ValueError:
        known = ", ".join(t.value for t in MemoryType)
        raise InvalidText(f"unknown memory type {memory_type!r}; known types: {known}") from None


def record_from_dict(memory_type: MemoryType | str, data: dict[str, Any]) -> Record:
    return record_class(memory_type).model_validate(data)


def record_to_dict(record: Record) -> dict[str, Any]:
    return record.model_dump(mode="json")


class Event(BaseModel):
    """One observation (a screen read, a chat turn) waiting in the durable queue for the agents."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(default_factory=lambda: new_id("evt"))
    occurred_at: AwareDatetime = Field(default_factory=utcnow)
    source: Literal["screen", "chat", "import", "manual"] = "manual"
    app: str = ""
    window_title: str = ""
    monitor: int | None = None
    text: Text
    metadata: dict[str, str | int | float | bool] = Field(default_factory=dict)
    #: Later times the same read was seen again (storage/events.py merges repeated reads).
    seen_at: tuple[AwareDatetime, ...] = ()
    #: The turns just before a chat turn or an imported message in its conversation, indexed
    #: with it so "Yes, last Sunday!" is found by what it answers; never shown as its text
    #: (storage/events.py fills it in as the event is stored).
    context: str = ""

    #: What a search hit or a citation calls an event, beside the memory types' names.
    kind: ClassVar[Literal["event"]] = "event"

    @property
    def timestamp(self) -> datetime:
        return self.occurred_at

    @property
    def last_seen(self) -> datetime:
        return max((self.occurred_at, *self.seen_at))

    @property
    def provenance(self) -> tuple[str, ...]:
        """An event is its own source."""
        return (self.id,)

    def origin(self) -> str:
        """Where it came from, as a person says it: "seen on screen in xterm, 2026-03-02 14:05",
        "you said", "imported from locomo"."""
        when = self.occurred_at.astimezone().strftime("%Y-%m-%d %H:%M")
        if self.source == "screen":
            where = f" in {self.app}" if self.app else ""
            return f"seen on screen{where}, {when}"
        if self.source == "chat":
            return f"you said, {when}"
        if self.source == "import":
            return f"imported from {self.app or self.window_title or 'a file'}, {when}"
        return f"noted, {when}"

    def headline(self) -> str:
        return _first_line(self.text)

    def index_text(self) -> str:
        """What is embedded: the window title and the text read."""
        return _join(self.window_title, self.text)

    def keyword_text(self) -> str:
        """What is keyword-indexed: `index_text` and a conversation turn's context. The
        context's words find a reply by what it answers; in the vector they would blur what
        the turn itself says (LoCoMo, agents mode: frac@10 fell 5 points with them)."""
        return _join(self.index_text(), self.context)


def _first_line(text: str) -> str:
    return first_line(text, 120)


def _join(*parts: str) -> str:
    return "\n".join(p for p in parts if p)
