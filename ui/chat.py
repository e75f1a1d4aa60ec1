"""The chat tab: a streamed, Markdown-rendered conversation whose cited memories are links.

Tokens arrive on the GUI thread as the task's `reported` signal and the transcript is re-rendered
from the turns (cheap: a conversation is a few KB). A citation is an `engram://memory/<id>` link;
clicking it asks the main window to open that memory in the memory browser.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from PySide6.QtCore import QUrl, Signal
from PySide6.QtGui import QTextCursor
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from agents.chat import ChatResult, Citation
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


class ChatView(QWidget):
    open_memory = Signal(str)

    def __init__(self, controller: Controller, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.turns: list[Turn] = []
        self.task: Task | None = None
        self.model_state = "not loaded"

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
        layout = QVBoxLayout(self)
        layout.addWidget(self.transcript, 1)
        layout.addLayout(row)
        controller.model_changed.connect(self._model_changed)

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
        self.controller.services.new_conversation()
        self.refresh()

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
        self._busy(False)
        self.refresh()

    def _busy(self, busy: bool) -> None:
        self.send_button.setEnabled(not busy)
        self.stop_button.setEnabled(busy)

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
