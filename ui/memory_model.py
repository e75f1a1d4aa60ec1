"""Item models over records: a table per memory type (sortable through a proxy) and a tree by
`tree_path`. Vault secrets are held masked; a revealed value is kept apart, by id, until hidden.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QStandardItem, QStandardItemModel

from storage.kinds import kind_spec
from storage.origin import origin_label
from storage.records import CoreBlock, Event, MemoryType, Record, VaultEntry
from storage.store import EventHit, Hit
from storage.text import first_line, word_diff

SORT_ROLE = Qt.ItemDataRole.UserRole
RECORD_ROLE = Qt.ItemDataRole.UserRole + 1
ID_ROLE = Qt.ItemDataRole.UserRole + 2
#: How many suggestions of the agents wait on a memory (the user decides; agents never edit it).
SUGGESTED_ROLE = Qt.ItemDataRole.UserRole + 3
#: The badge shown before a memory the agents suggest a change to.
BADGE = "◆ "
_ROOT = QModelIndex()


def local_time(value: datetime) -> str:
    return value.astimezone().strftime("%Y-%m-%d %H:%M")


def _line(text: str) -> str:
    return first_line(text, 160)


Getter = Callable[[Any], Any]
# (title, display getter, sort getter or None for the display value)
Column = tuple[str, Getter | None, Getter | None]

_WHEN: Column = ("When", lambda r: local_time(r.timestamp), lambda r: r.timestamp.timestamp())
_UPDATED: Column = (
    "Updated",
    lambda r: local_time(r.updated_at),
    lambda r: r.updated_at.timestamp(),
)
_FOLDER: Column = ("Folder", lambda r: "/".join(r.tree_path), None)

COLUMNS: dict[MemoryType, list[Column]] = {
    MemoryType.CORE: [
        ("Label", lambda r: r.label, None),
        ("Value", lambda r: _line(r.value), None),
        ("Size", lambda r: f"{len(r.value):,} / {r.limit:,}", lambda r: len(r.value)),
        _UPDATED,
    ],
    MemoryType.EPISODIC: [
        _WHEN,
        ("Summary", lambda r: _line(r.summary), None),
        ("Actor", lambda r: r.actor, None),
        ("Event", lambda r: r.event_type, None),
        _FOLDER,
    ],
    MemoryType.SEMANTIC: [
        ("Name", lambda r: r.name, None),
        ("Summary", lambda r: _line(r.summary), None),
        ("Source", lambda r: r.source, None),
        _UPDATED,
        _FOLDER,
    ],
    MemoryType.PROCEDURAL: [
        ("Kind", lambda r: r.entry_type, None),
        ("Summary", lambda r: _line(r.summary), None),
        ("Steps", lambda r: len(r.steps), None),
        _UPDATED,
        _FOLDER,
    ],
    MemoryType.RESOURCE: [
        ("Title", lambda r: r.title, None),
        ("Kind", lambda r: r.resource_type, None),
        ("Summary", lambda r: _line(r.summary or r.content), None),
        _UPDATED,
        _FOLDER,
    ],
    MemoryType.KNOWLEDGE_VAULT: [
        ("Caption", lambda r: r.caption, None),
        ("Secret", None, None),  # filled by the model: masked unless revealed
        ("Sensitivity", lambda r: r.sensitivity, None),
        ("Kind", lambda r: r.entry_type, None),
        _UPDATED,
    ],
}


class MemoryTableModel(QAbstractTableModel):
    """Records of one memory type; with search scores when the rows are search hits."""

    def __init__(self, memory_type: MemoryType = MemoryType.EPISODIC, parent: Any = None) -> None:
        super().__init__(parent)
        self.memory_type = memory_type
        self._records: list[Record] = []
        self._scores: list[float] | None = None
        self._revealed: dict[str, str] = {}
        self._suggested: dict[str, int] = {}

    # ----- filling ---------------------------------------------------------------------------

    def set_records(
        self,
        memory_type: MemoryType,
        records: Sequence[Record],
        scores: Sequence[float] | None = None,
    ) -> None:
        self.beginResetModel()
        self.memory_type = memory_type
        self._records = [r.masked() if isinstance(r, VaultEntry) else r for r in records]
        self._scores = list(scores) if scores is not None else None
        self._revealed.clear()
        self.endResetModel()

    def prepend(self, record: Record) -> None:
        self.beginInsertRows(QModelIndex(), 0, 0)
        self._records.insert(0, record.masked() if isinstance(record, VaultEntry) else record)
        if self._scores is not None:
            self._scores.insert(0, 0.0)
        self.endInsertRows()

    def reveal(self, memory_id: str, secret: str) -> None:
        self._revealed[memory_id] = secret
        self._changed(memory_id)

    def hide(self, memory_id: str | None = None) -> None:
        ids = [memory_id] if memory_id else list(self._revealed)
        for i in ids:
            if self._revealed.pop(i, None) is not None:
                self._changed(i)

    def set_suggested(self, counts: dict[str, int]) -> None:
        """Pending suggestions per memory id: a badge on each memory that has some."""
        changed = set(counts) ^ set(self._suggested) | {
            i for i in counts if counts[i] != self._suggested.get(i)
        }
        self._suggested = dict(counts)
        for memory_id in changed:
            self._changed(memory_id)

    def suggested(self, memory_id: str) -> int:
        return self._suggested.get(memory_id, 0)

    def is_revealed(self, memory_id: str) -> bool:
        return memory_id in self._revealed

    def row_of(self, memory_id: str) -> int | None:
        return next((n for n, r in enumerate(self._records) if r.id == memory_id), None)

    def record(self, row: int) -> Record:
        return self._records[row]

    def records(self) -> list[Record]:
        return list(self._records)

    def _changed(self, memory_id: str) -> None:
        row = self.row_of(memory_id)
        if row is not None:
            self.dataChanged.emit(self.index(row, 0), self.index(row, self.columnCount() - 1))

    # ----- the model interface ---------------------------------------------------------------

    def _columns(self) -> list[Column]:
        cols = list(COLUMNS[self.memory_type])
        if self._scores is not None:
            cols.append(("Score", lambda _r: "", None))
        return cols

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = _ROOT) -> int:
        return 0 if parent.isValid() else len(self._records)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = _ROOT) -> int:
        return 0 if parent.isValid() else len(self._columns())

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = 0) -> Any:
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            cols = self._columns()
            return cols[section][0] if 0 <= section < len(cols) else None
        return None

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = 0) -> Any:
        if not index.isValid() or index.row() >= len(self._records):
            return None
        record = self._records[index.row()]
        if role == RECORD_ROLE:
            return record
        if role == ID_ROLE:
            return record.id
        if role == SUGGESTED_ROLE:
            return self.suggested(record.id)
        pending = self.suggested(record.id) if index.column() == 0 else 0
        if pending and role == Qt.ItemDataRole.ToolTipRole:
            return f"{pending} suggested change(s) from the memory agents: accept or dismiss"
        title, getter, sorter = self._columns()[index.column()]
        if title == "Score":
            assert self._scores is not None
            return _score(self._scores[index.row()], role)
        if title == "Secret":
            value = self._revealed.get(record.id, VaultEntry.MASK)
            if role in (Qt.ItemDataRole.DisplayRole, SORT_ROLE):
                return value
            if role == Qt.ItemDataRole.ToolTipRole:
                return None if record.id in self._revealed else "Select and press Reveal"
            return None
        assert getter is not None
        if role == Qt.ItemDataRole.DisplayRole:
            return BADGE + getter(record) if pending else getter(record)
        if role == SORT_ROLE:
            value = (sorter or getter)(record)
            return value.lower() if isinstance(value, str) else value
        if role == Qt.ItemDataRole.ToolTipRole:
            return f"{record.headline()}\nWritten by {origin_label(record.origin)}"
        return None


def tree_model(records: Sequence[Record]) -> QStandardItemModel:
    """Folders from each record's `tree_path`; a memory is a leaf under its folder."""
    model = QStandardItemModel()
    model.setHorizontalHeaderLabels(["Memory", "When"])
    folders: dict[tuple[str, ...], QStandardItem] = {}

    def folder(path: tuple[str, ...]) -> QStandardItem:
        if not path:
            return model.invisibleRootItem()
        if path not in folders:
            item = QStandardItem(path[-1])
            item.setEditable(False)
            folder(path[:-1]).appendRow([item, _blank()])
            folders[path] = item
        return folders[path]

    for record in records:
        path = record.tree_path or ("(no folder)",)
        leaf = QStandardItem(record.headline())
        leaf.setEditable(False)
        leaf.setData(record.id, ID_ROLE)
        when = QStandardItem(local_time(record.timestamp))
        when.setEditable(False)
        folder(tuple(path)).appendRow([leaf, when])
    return model


def _blank() -> QStandardItem:
    item = QStandardItem("")
    item.setEditable(False)
    return item


#: Most characters of one field the details show (a resource's content can be long).
DETAIL_CHARS = 5000


def record_details(record: Record, revealed: str | None = None) -> str:
    """Markdown with every field of a memory (the vault secret masked unless revealed)."""
    lines = [f"### {record.headline() or record.id}", ""]
    fields: list[tuple[str, str]] = []
    for spec in kind_spec(record.kind).fields:
        value = getattr(record, spec.name)
        if spec.widget == "datetime":
            shown = local_time(value)
        elif spec.widget == "lines":
            shown = "\n".join(f"{n}. {s}" for n, s in enumerate(value, 1))
        elif spec.widget == "secret":
            shown = revealed if revealed is not None else VaultEntry.MASK
        else:
            shown = str(value)[:DETAIL_CHARS]
        fields.append((spec.heading, shown))
    if isinstance(record, CoreBlock):
        fields.append(("Size", f"{len(record.value):,} of {record.limit:,} characters"))
    fields += [
        ("Folder", "/".join(record.tree_path)),
        ("Created", local_time(record.created_at)),
        ("Updated", local_time(record.updated_at)),
        ("Written by", origin_label(record.origin)),
    ]
    if record.provenance:
        fields.append(("Sources", f"{len(record.provenance)} (press “Why do I know this?”)"))
    fields.append(("Id", f"`{record.id}`"))
    for name, value in fields:
        if value:
            text = value if "\n" not in value else "\n\n" + value
            lines.append(f"**{name}:** {text}  ")
    return "\n".join(lines)


def _score(score: float, role: int) -> Any:
    """A search score's cell: text to show, a number to sort by, nothing else (any other
    role answered with a value makes Qt draw it, e.g. a check box for CheckStateRole)."""
    if role == SORT_ROLE:
        return round(score, 4)
    if role == Qt.ItemDataRole.DisplayRole:
        return f"{score:.3f}"
    return None


#: What a captured event is called in the "All" list, by its source.
EVENT_KINDS = {
    "screen": "screen event",
    "chat": "chat event",
    "import": "imported event",
    "manual": "event",
}


def hit_kind(item: Record | Event) -> str:
    """A search result's kind as a person reads it: "semantic", "vault", "screen event"…"""
    if isinstance(item, Event):
        return EVENT_KINDS.get(item.source, "event")
    return kind_spec(item.kind).noun


def hit_text(item: Record | Event) -> str:
    if isinstance(item, Event):
        title = f"{item.window_title}: " if item.window_title else ""
        return _line(title + " ".join(item.text.split()))
    return _line(item.headline())


class SearchResultsModel(QAbstractTableModel):
    """The "All" list: memories of every type and captured events, ranked, with their kind."""

    HEADERS = ("Kind", "Result", "When", "Score")

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self._hits: list[Hit] = []
        self._suggested: dict[str, int] = {}

    def set_hits(self, hits: Sequence[Hit]) -> None:
        self.beginResetModel()
        self._hits = [
            h
            if isinstance(h, EventHit) or not isinstance(h.record, VaultEntry)
            else type(h)(h.record.masked(), h.score, h.ranks)
            for h in hits
        ]
        self.endResetModel()

    def set_suggested(self, counts: dict[str, int]) -> None:
        self.beginResetModel()
        self._suggested = dict(counts)
        self.endResetModel()

    def item(self, row: int) -> Record | Event:
        return self._hits[row].item

    def items(self) -> list[Record | Event]:
        return [h.item for h in self._hits]

    def kinds(self) -> list[str]:
        return [hit_kind(h.item) for h in self._hits]

    def row_of(self, item_id: str) -> int | None:
        return next((n for n, h in enumerate(self._hits) if h.item.id == item_id), None)

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = _ROOT) -> int:
        return 0 if parent.isValid() else len(self._hits)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = _ROOT) -> int:
        return 0 if parent.isValid() else len(self.HEADERS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = 0) -> Any:
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return self.HEADERS[section] if 0 <= section < len(self.HEADERS) else None
        return None

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = 0) -> Any:
        if not index.isValid() or index.row() >= len(self._hits):
            return None
        hit = self._hits[index.row()]
        item, column = hit.item, index.column()
        if role == RECORD_ROLE:
            return item
        if role == ID_ROLE:
            return item.id
        if column == 3:
            return _score(hit.score, role)
        if column == 0:
            shown = hit_kind(item)
        elif column == 1:
            badge = BADGE if self._suggested.get(item.id) else ""
            shown = badge + hit_text(item)
        else:
            shown = local_time(item.timestamp)
        if role == Qt.ItemDataRole.DisplayRole:
            return shown
        if role == SORT_ROLE:
            return item.timestamp.timestamp() if column == 2 else shown.lower()
        if role == Qt.ItemDataRole.ToolTipRole and column == 1:
            return item.origin() if isinstance(item, Event) else item.headline()
        return None


def event_details(event: Event) -> str:
    """Markdown for a captured event: where it came from and the text read."""
    lines = [f"### {event.origin()}", ""]
    for name, value in [
        ("Application", event.app),
        ("Window", event.window_title),
        (
            "Seen",
            f"{len(event.seen_at) + 1} times, last {local_time(event.last_seen)}"
            if event.seen_at
            else "",
        ),
        ("Id", f"`{event.id}`"),
    ]:
        if value:
            lines.append(f"**{name}:** {value}  ")
    lines += ["", "```", event.text[:DETAIL_CHARS], "```"]
    return "\n".join(lines)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


ADDED_STYLE = "background-color:#d7f5dd; color:#1b5e20; font-weight:bold"
REMOVED_STYLE = "background-color:#fbdada; color:#b00020; text-decoration:line-through"


def diff_html(before: str, after: str) -> str:
    """`before` → `after` as HTML, word by word: added words green, removed ones struck out."""
    parts = []
    for op, text in word_diff(before, after):
        shown = _escape(text).replace("\n", "<br>")
        if op == "added":
            parts.append(f'<span style="{ADDED_STYLE}">{shown}</span>')
        elif op == "removed":
            parts.append(f'<span style="{REMOVED_STYLE}">{shown}</span>')
        else:
            parts.append(shown)
    return "".join(parts)
