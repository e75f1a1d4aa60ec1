"""Chat: a streamed answer, Markdown, citation links that open the memory, stop, history,
conversations kept across a restart, reopened and deleted from the list."""

from __future__ import annotations

from datetime import UTC, datetime

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
    engram.controller.services.add(
        SemanticMemory(name="Questions", summary="The first question and a second one")
    )
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
    engram.controller.services.add(SemanticMemory(name="Story", summary="A long story of Lyon"))
    chat = engram.window.chat
    chat.input.setText("Tell me a long story")
    chat.send()
    qtbot.waitUntil(lambda: len(model.calls) > 0, timeout=10_000)
    chat.stop_button.click()
    qtbot.waitUntil(lambda: chat.task is None, timeout=5_000)
    assert chat.turns[-1].state == "stopped"
    assert "(stopped)" in chat.transcript.toPlainText()


def _ask(qtbot, chat, question: str) -> None:
    chat.input.setText(question)
    chat.send()
    qtbot.waitUntil(lambda: chat.task is None, timeout=10_000)


def _listed(chat) -> list[str]:
    return [chat.conversations.item(i).text() for i in range(chat.conversations.count())]


def test_past_conversations_are_listed_reopened_and_deleted(qtbot, engram, model):
    services = engram.controller.services
    cat = services.add(SemanticMemory(name="Miso", summary="Miso is the user's grey cat")).record
    chat = engram.window.chat
    assert chat.empty_history.isVisibleTo(chat) and not chat.delete_button.isEnabled()
    _ask(qtbot, chat, "What is my cat called?")
    first = chat.conversation_id
    qtbot.waitUntil(lambda: len(_listed(chat)) == 1)
    assert _listed(chat)[0].startswith("What is my cat called?\n1 question")

    chat.new_button.click()
    assert chat.turns == [] and chat.conversation_id is None
    _ask(qtbot, chat, "Is Miso a grey cat?")
    qtbot.waitUntil(lambda: len(_listed(chat)) == 2)
    assert chat.conversation_id not in (None, first)
    assert _listed(chat)[0].startswith("Is Miso a grey cat?")  # the latest first

    chat.open_conversation(first)
    qtbot.waitUntil(lambda: chat.conversation_id == first)
    [turn] = chat.turns
    assert turn.question == "What is my cat called?" and turn.state == "done"
    assert turn.answer == "Your cat is called Miso [M1]. She likes naps."
    assert [c.memory_id for c in turn.citations] == [cat.id]
    assert memory_url(cat.id) in chat.transcript.toHtml()  # its sources are links again
    assert chat.delete_button.isEnabled()
    # continuing it sends its turns as history
    _ask(qtbot, chat, "And what colour is my cat?")
    last = [c for c in model.calls if c.schema is None][-1]
    assert any(m.content == "What is my cat called?" for m in last.messages)
    assert not any(m.content == "Is Miso a grey cat?" for m in last.messages)
    qtbot.waitUntil(lambda: "2 questions" in _listed(chat)[0])

    chat.delete_conversation(first)
    qtbot.waitUntil(lambda: len(_listed(chat)) == 1)
    assert chat.turns == [] and chat.conversation_id is None
    store = services.store()
    assert [c.title for c in store.conversations.recent()] == ["Is Miso a grey cat?"]
    chats = store.events.between(datetime(2000, 1, 1, tzinfo=UTC), datetime.now(UTC))
    assert ["Is Miso a grey cat?" in e.text for e in chats if e.source == "chat"] == [True]


def test_the_latest_conversation_is_shown_again_after_a_restart(qtbot, engram_home, model, screen):
    from tests.ui.conftest import make_services
    from ui.app import EngramApp

    def started() -> EngramApp:
        app = EngramApp(make_services(engram_home, model, screen), autostart_capture=False,
                        load_model=False)  # fmt: skip
        qtbot.addWidget(app.window)
        with qtbot.waitSignal(app.controller.store_ready, timeout=10_000):
            app.start()
        return app

    app = started()
    try:
        app.controller.services.add(SemanticMemory(name="Miso", summary="The cat is Miso"))
        _ask(qtbot, app.window.chat, "What is my cat called?")
    finally:
        app.quit()
    app = started()
    try:
        chat = app.window.chat
        qtbot.waitUntil(lambda: len(chat.turns) == 1, timeout=10_000)
        assert chat.turns[0].question == "What is my cat called?"
        assert "Your cat is called Miso" in chat.transcript.toPlainText()
        assert len(_listed(chat)) == 1 and chat.conversations.currentRow() == 0
        # the model's history is the reopened conversation's
        assert [m.content for m in app.controller.services.history()] == [
            "What is my cat called?",
            "Your cat is called Miso [M1]. She likes naps.",
        ]
    finally:
        app.quit()
