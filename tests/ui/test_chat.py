"""Chat: a streamed answer, Markdown, citation links that open the memory, stop, history."""

from __future__ import annotations

from PySide6.QtCore import QUrl

from agents.llm.fakes import Stall
from storage.records import SemanticMemory
from ui.chat import memory_url


def test_streamed_answer_with_a_citation_link_that_opens_the_memory(qtbot, engram):
    cat = engram.controller.services.add(
        SemanticMemory(name="Miso", summary="Miso is the user's cat, a grey tabby")
    ).record
    chat = engram.window.chat
    tokens: list[str] = []
    chat.input.setText("What is my cat called?")
    chat.send_button.click()
    assert chat.task is not None and chat.stop_button.isEnabled()
    chat.task.reported.connect(tokens.append)
    qtbot.waitUntil(lambda: chat.task is None, timeout=10_000)

    turn = chat.turns[-1]
    assert turn.state == "done"
    assert len(tokens) > 3, "the answer arrived token by token"
    assert "".join(tokens).strip() == turn.answer
    assert [c.memory_id for c in turn.citations] == [cat.id]
    html = chat.transcript.toHtml()
    assert memory_url(cat.id) in html  # the source, and the inline [M1], are links
    assert "<b>" in html or "font-weight" in html  # Markdown was rendered, not shown raw
    assert "Miso" in chat.transcript.toPlainText()
    assert not chat.stop_button.isEnabled() and chat.send_button.isEnabled()

    chat.transcript.anchorClicked.emit(QUrl(memory_url(cat.id)))
    browser = engram.window.memories
    qtbot.waitUntil(lambda: browser.current() is not None and browser.current().id == cat.id)
    assert engram.window.tabs.currentWidget() is browser


def test_the_conversation_is_kept_and_sent_as_history(qtbot, engram, model):
    chat = engram.window.chat
    for question in ("First question?", "And a second one?"):
        chat.input.setText(question)
        chat.send()
        qtbot.waitUntil(lambda: chat.task is None, timeout=10_000)
    assert [t.question for t in chat.turns] == ["First question?", "And a second one?"]
    last = [c for c in model.calls if c.schema is None][-1]
    assert any(m.content == "First question?" for m in last.messages)
    chat.new_conversation()
    assert chat.turns == [] and engram.controller.services.history() == ()


def test_stop_button_ends_the_answer(qtbot, engram, model):
    model.queue(Stall(30))
    chat = engram.window.chat
    chat.input.setText("Tell me a long story")
    chat.send()
    qtbot.waitUntil(lambda: len(model.calls) > 0, timeout=10_000)
    chat.stop_button.click()
    qtbot.waitUntil(lambda: chat.task is None, timeout=5_000)
    assert chat.turns[-1].state == "stopped"
    assert "(stopped)" in chat.transcript.toPlainText()
