"""The chat tab: a streamed, Markdown-rendered conversation whose cited memories are links,
beside the list of past conversations.

Tokens arrive on the GUI thread as the task's `reported` signal and the transcript is re-rendered
from the turns (cheap: a conversation is a few KB). A citation is an `engram://memory/<id>` link;
clicking it asks the main window to open that memory in the memory browser. Conversations are
kept in the store (app/chat_session.py): the latest one is shown again after a restart, any past
one can be reopened or deleted from the list, and "New conversation" starts afresh.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from PySide6.QtCore import Qt, QUrl, Signal
from PySide6.QtGui import QKeySequence, QShortcut, QTextCursor
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPushButton,
    QSplitter,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from agents.chat import ChatResult, Citation
from storage.conversations import ChatTurn, Conversation
from storage.errors import EngramError
from ui.controller import Controller
from ui.tasks import Task, TaskContext

MEMORY_SCHEME = "engram"
_TAG = re.compile(r"\[(M\d{1,3})\]")


def memory_url(memory_id: str) -> str:
    return f"{MEMORY_SCHEME}://memory/{memory_id}"


def memory_id_from(url: QUrl) -> str | None:
    if url.scheme() != MEMORY_SCHEME or url.host() != "memory":
        return None
    return url.path().lstrip("/") or None


def _link_text(text: str) -> str:
    return text.replace("[", "(").replace("]", ")").replace("\n", " ")


@dataclass
class Turn:
    question: str
    answer: str = ""
    citations: tuple[Citation, ...] = ()
    state: str = "waiting"  # waiting, streaming, done, stopped, failed
    error: str = ""
    tokens: int = 0
    result: ChatResult | None = None

    def markdown(self, model_state: str) -> str:
        out = [f"**You:** {self.question}", ""]
        answer = self.answer
        by_tag = {c.tag: c for c in self.citations}
        if by_tag:  # the answer's own [M1] tags become links to the memories
            answer = _TAG.sub(
                lambda m: (
                    f"[\\[{m.group(1)}\\]]({memory_url(by_tag[m.group(1)].memory_id)})"
                    if m.group(1) in by_tag
                    else m.group(0)
                ),
                answer,
            )
        if self.state == "waiting":
            wait = "Loading the model…" if model_state == "loading" else "Thinking…"
            out.append(f"**Engram:** _{wait}_")
        else:
            cursor = " ▍" if self.state == "streaming" else ""
            out.append(f"**Engram:** {answer}{cursor}")
        if self.state == "stopped":
            out += ["", "_(stopped)_"]
        if self.state == "failed":
            out += ["", f"_Could not answer: {self.error}_"]
        if self.citations:
            links = [
                f"[{c.tag} · {c.memory_type}: {_link_text(c.headline)}]({memory_url(c.memory_id)})"
                for c in self.citations
            ]
            out += ["", "Sources: " + " · ".join(links)]
        out += ["", "---", ""]
        return "\n".join(out)


def _listed(conv: Conversation) -> str:
    when = conv.updated_at.astimezone()
    turns = f"{conv.turns} question{'s' if conv.turns != 1 else ''}"
    return f"{conv.title}\n{turns} · {when.day} {when:%b %Y, %H:%M}"


def _replayed(turn: ChatTurn, citations: tuple[Citation, ...]) -> Turn:
    state = "stopped" if turn.cancelled else "done"
    return Turn(turn.question, turn.answer, citations, state)


class ChatView(QWidget):
    open_memory = Signal(str)

    def __init__(self, controller: Controller, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.turns: list[Turn] = []
        self.task: Task | None = None
        self.model_state = "not loaded"
        self.conversation_id: str | None = None  # the one shown; None: a new one

        self.conversations = QListWidget()
        self.conversations.setAccessibleName("Past conversations")
        self.conversations.setWordWrap(True)
        self.conversations.setSpacing(3)
        self.conversations.itemActivated.connect(self._activated)
        self.conversations.currentItemChanged.connect(lambda *_: self._busy(self.task is not None))
        self.open_button = QPushButton("Open")
        self.open_button.clicked.connect(self._open_selected)
        self.delete_button = QPushButton("Delete…")
        self.delete_button.setToolTip("Delete this conversation and its questions and answers")
        self.delete_button.clicked.connect(self._delete_selected)
        delete_key = QShortcut(QKeySequence.StandardKey.Delete, self.conversations)
        delete_key.setContext(Qt.ShortcutContext.WidgetShortcut)
        delete_key.activated.connect(self._delete_selected)
        self.empty_history = QLabel("Past conversations appear here.")
        self.empty_history.setWordWrap(True)

        self.transcript = QTextBrowser()
        self.transcript.setOpenLinks(False)
        self.transcript.setOpenExternalLinks(False)
        self.transcript.anchorClicked.connect(self._link_clicked)
        self.transcript.setPlaceholderText(
            "Ask about anything Engram has seen or been told. Answers cite the memories they "
            "use; click a source to open it."
        )
        self.input = QLineEdit()
        self.input.setPlaceholderText("Ask your memory…")
        self.input.returnPressed.connect(self.send)
        self.send_button = QPushButton("Send")
        self.send_button.clicked.connect(self.send)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setEnabled(False)
        self.stop_button.clicked.connect(self.stop)
        self.new_button = QPushButton("New conversation")
        self.new_button.clicked.connect(self.new_conversation)

        row = QHBoxLayout()
        row.addWidget(self.input, 1)
        row.addWidget(self.send_button)
        row.addWidget(self.stop_button)
        row.addWidget(self.new_button)
        talk = QWidget()
        right = QVBoxLayout(talk)
        right.setContentsMargins(0, 0, 0, 0)
        right.addWidget(self.transcript, 1)
        right.addLayout(row)

        past = QWidget()
        left = QVBoxLayout(past)
        left.setContentsMargins(0, 0, 0, 0)
        left.addWidget(QLabel("Conversations"))
        left.addWidget(self.conversations, 1)
        left.addWidget(self.empty_history)
        buttons = QHBoxLayout()
        buttons.addWidget(self.open_button)
        buttons.addWidget(self.delete_button)
        left.addLayout(buttons)

        splitter = QSplitter()
        splitter.addWidget(past)
        splitter.addWidget(talk)
        splitter.setStretchFactor(1, 3)
        splitter.setSizes([220, 660])
        layout = QVBoxLayout(self)
        layout.addWidget(splitter)
        controller.model_changed.connect(self._model_changed)
        controller.store_ready.connect(lambda: self.reload_conversations(reopen_latest=True))
        self._busy(False)

    # ----- asking ----------------------------------------------------------------------------

    def send(self) -> None:
        question = self.input.text().strip()
        if not question or self.task is not None:
            return
        turn = Turn(question)
        self.turns.append(turn)
        self.input.clear()
        services = self.controller.services

        def work(ctx: TaskContext) -> ChatResult:  # on the llm thread
            return services.ask(question, ctx.report, on_reply=lambda r: ctx.on_cancel(r.cancel))

        task = self.controller.tasks.stream("Answering", work, kind="llm")
        task.reported.connect(lambda chunk: self._token(turn, chunk))
        task.done.connect(lambda result: self._finished(turn, result))
        task.failed.connect(lambda exc: self._failed(turn, exc))
        self.task = task
        self._busy(True)
        self.refresh()

    def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()

    def new_conversation(self) -> None:
        self.stop()
        self.turns.clear()
        self.conversation_id = None
        self.controller.services.new_conversation()
        self.conversations.setCurrentRow(-1)
        self.refresh()
        self.input.setFocus()

    # ----- past conversations ----------------------------------------------------------------

    def reload_conversations(self, reopen_latest: bool = False) -> Task:
        """Refill the list from the store; with `reopen_latest`, show the latest conversation
        if nothing is shown yet (what a restart does)."""
        services = self.controller.services

        def listed(found: list[Conversation]) -> None:
            self._fill(found)
            if reopen_latest and found and not self.turns and self.task is None:
                self.open_conversation(found[0].id)

        return self.controller.run(
            "Loading conversations", services.conversations, on_done=listed, quiet=True
        )

    def _fill(self, found: list[Conversation]) -> None:
        self.conversations.blockSignals(True)
        self.conversations.clear()
        for conv in found:
            item = QListWidgetItem(_listed(conv))
            item.setData(Qt.ItemDataRole.UserRole, conv.id)
            item.setToolTip(conv.title)
            self.conversations.addItem(item)
            if conv.id == self.conversation_id:
                self.conversations.setCurrentItem(item)
        self.conversations.blockSignals(False)
        self.empty_history.setVisible(not found)
        self._busy(self.task is not None)

    def _selected(self) -> str | None:
        item = self.conversations.currentItem()
        return str(item.data(Qt.ItemDataRole.UserRole)) if item is not None else None

    def _activated(self, item: QListWidgetItem) -> None:
        self.open_conversation(str(item.data(Qt.ItemDataRole.UserRole)))

    def _open_selected(self) -> None:
        conversation_id = self._selected()
        if conversation_id:
            self.open_conversation(conversation_id)

    def open_conversation(self, conversation_id: str) -> Task | None:
        """Show a past conversation and continue it (its turns become the model's history)."""
        if self.task is not None:
            return None
        services = self.controller.services

        def shown(turns: list[tuple[ChatTurn, tuple[Citation, ...]]]) -> None:
            self.conversation_id = conversation_id
            self.turns = [_replayed(turn, cited) for turn, cited in turns]
            self.refresh()
            for row in range(self.conversations.count()):
                item = self.conversations.item(row)
                if item.data(Qt.ItemDataRole.UserRole) == conversation_id:
                    self.conversations.setCurrentItem(item)

        return self.controller.run(
            "Opening the conversation", services.open_conversation, conversation_id, on_done=shown
        )

    def _delete_selected(self) -> None:
        conversation_id = self._selected()
        if conversation_id is None or self.task is not None:
            return
        item = self.conversations.currentItem()
        title = str(item.toolTip()) if item is not None else "this conversation"
        answer = QMessageBox.question(
            self,
            "Delete conversation",
            f"Delete “{title}” with all its questions and answers? This cannot be undone. "
            "Memories made from it stay.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
            QMessageBox.StandardButton.Cancel,
        )
        if answer == QMessageBox.StandardButton.Yes:
            self.delete_conversation(conversation_id)

    def delete_conversation(self, conversation_id: str) -> Task:
        """Delete a conversation and its turns from the store (no question asked: the Delete
        button asks first); if it is the one shown, the pane starts afresh."""
        services = self.controller.services

        def deleted(_count: int) -> None:
            if conversation_id == self.conversation_id:
                self.turns.clear()
                self.conversation_id = None
                self.refresh()
            self.reload_conversations()

        return self.controller.run(
            "Deleting the conversation",
            services.delete_conversation,
            conversation_id,
            on_done=deleted,
        )

    def _token(self, turn: Turn, chunk: str) -> None:
        turn.state = "streaming"
        turn.answer += chunk
        turn.tokens += 1
        self.refresh()

    def _finished(self, turn: Turn, result: ChatResult) -> None:
        turn.result = result
        turn.answer = result.answer
        turn.citations = result.citations
        turn.state = "stopped" if result.cancelled else "done"
        self._done()

    def _failed(self, turn: Turn, exc: BaseException) -> None:
        turn.state = "failed"
        turn.error = str(exc) if isinstance(exc, EngramError) else f"{type(exc).__name__}: {exc}"
        self._done()

    def _done(self) -> None:
        self.task = None
        self.conversation_id = self.controller.services.chat.current
        self._busy(False)
        self.refresh()
        self.reload_conversations()

    def _busy(self, busy: bool) -> None:
        self.send_button.setEnabled(not busy)
        self.stop_button.setEnabled(busy)
        chosen = self.conversations.currentItem() is not None
        self.open_button.setEnabled(chosen and not busy)
        self.delete_button.setEnabled(chosen and not busy)

    def _model_changed(self, state: str, _detail: str) -> None:
        self.model_state = state
        if self.turns and self.turns[-1].state == "waiting":
            self.refresh()

    # ----- showing ---------------------------------------------------------------------------

    def refresh(self) -> None:
        bar = self.transcript.verticalScrollBar()
        at_end = bar.value() >= bar.maximum() - 4
        self.transcript.setMarkdown("".join(t.markdown(self.model_state) for t in self.turns))
        if at_end:
            self.transcript.moveCursor(QTextCursor.MoveOperation.End)
            bar.setValue(bar.maximum())

    def _link_clicked(self, url: QUrl) -> None:
        memory_id = memory_id_from(url)
        if memory_id:
            self.open_memory.emit(memory_id)
