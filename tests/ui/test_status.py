"""Status that explains itself: a short problem line with details and advice, shown once and
cleared when the condition ends; one backlog count everywhere; the model's friendly name; the
activity panel — on real widgets over a real store."""

from __future__ import annotations

from datetime import UTC, datetime

from PySide6.QtWidgets import QApplication

from agents.loop import BatchReport
from agents.operations import Rejection
from app.status import SHORT_LINE
from storage.errors import StoreLocked
from storage.records import Event, SemanticMemory
from ui.status import ProblemDialog


def _fail(controller, label: str, error: BaseException):
    def boom():
        raise error

    return controller.run(label, boom)


def test_an_error_is_one_short_line_with_details_and_what_to_do(qtbot, engram):
    window, controller = engram.window, engram.controller
    long = "the Engram data folder /home/someone/.local/share/engram is in use by another " * 3
    task = _fail(controller, "Importing", StoreLocked(long))
    qtbot.waitUntil(window.error_button.isVisible)
    assert window.error_button.text() == "⚠ Importing failed"
    assert len(window.error_button.text()) <= SHORT_LINE + 2
    del task

    window.error_button.click()
    dialog = window.dialog
    assert isinstance(dialog, ProblemDialog) and dialog.isVisible()
    texts = " ".join(label.text() for label in dialog.findChildren(type(window.activity_label)))
    assert "is in use by another" in texts  # what happened
    assert "Close the other Engram" in texts  # what to do
    dialog.copy_buttons[0].click()
    copied = QApplication.clipboard().text()
    assert "What happened: the Engram data folder" in copied
    assert "What to do: Close the other Engram" in copied and "StoreLocked" in copied
    dialog.dismiss_button.click()
    assert not window.error_button.isVisible()


def test_a_problem_is_shown_once_and_cleared_when_it_ends(qtbot, engram):
    window, controller = engram.window, engram.controller
    seen: list[str] = []
    controller.error.connect(seen.append)
    for _ in range(3):  # the agents fail the same way batch after batch
        controller._on_batch(None, RuntimeError("the model server at :9 refused"))
    qtbot.waitUntil(
        lambda: len(controller.problems) == 1 and controller.problems.active()[0].times == 3
    )
    assert len(seen) == 1  # said once, not three times
    assert window.error_button.text() == "⚠ Memory agents failed"

    _fail(controller, "Saving settings", OSError("disk full"))
    qtbot.waitUntil(lambda: "(+1 more)" in window.error_button.text())

    report = BatchReport("b_1", ("evt_1",))
    controller._on_batch(report, None)  # a batch went through: that condition ended
    qtbot.waitUntil(lambda: len(controller.problems) == 1)
    assert window.error_button.text() == "⚠ Saving settings failed"
    controller.run("Saving settings", lambda: None)  # it works now
    qtbot.waitUntil(lambda: not window.error_button.isVisible())


def test_the_status_bar_and_the_capture_tab_show_one_waiting_count(qtbot, engram, services):
    store = services.store()
    for n in range(7):
        store.events.put(Event(text=f"read {n}"))
    store.events.claim(2)  # in progress: still waiting to become memories
    engram.controller.refresh_backlog()
    window = engram.window
    qtbot.waitUntil(lambda: window.backlog_button.text() == "Agents: 7 waiting")
    assert "7 event(s) waiting for the memory agents" in window.capture.labels["backlog"].text()
    engram.controller.refresh_capture()  # a capture tick does not bring its own count back
    qtbot.waitUntil(lambda: "looks" in window.capture.labels["counts"].text())
    assert "7 event(s) waiting for the memory agents" in window.capture.labels["backlog"].text()


def test_the_model_is_shown_by_its_friendly_name(qtbot, engram):
    controller, window = engram.controller, engram.window
    with qtbot.waitSignal(
        controller.model_changed, timeout=10_000, check_params_cb=lambda s, _d: s == "ready"
    ):
        controller.start_model()
    from app.llm_config import DEFAULT_CHAT_MODEL
    from app.model_files import CATALOGUE

    default = CATALOGUE[DEFAULT_CHAT_MODEL]  # the settings name the default, Qwen2.5-Coder 1.5B
    assert window.model_label.text() == f"Model: {default.name}"
    assert default.file_name in window.model_label.toolTip()


def test_the_activity_panel_shows_backlog_rate_memories_and_rejections(qtbot, engram, services):
    store = services.store()
    now = datetime.now(UTC)
    for n in range(5):
        store.events.put(Event(text=f"read {n}", occurred_at=now))
    services.add(SemanticMemory(name="garden", summary="beans in May"))
    window, controller = engram.window, engram.controller
    window.backlog_button.click()
    panel = window.activity
    assert window.activity_dock.isVisible()
    qtbot.waitUntil(lambda: panel.labels["today"].text() == "1")
    assert panel.labels["rate"].text().startswith("0.5")  # 5 events in 10 minutes
    controller.refresh_backlog()
    qtbot.waitUntil(lambda: panel.labels["waiting"].text() == "5 waiting")

    report = BatchReport(
        "b_2",
        ("evt_1", "evt_2"),
        writes=[("insert", "semantic", "sem_1")],
        rejected=[Rejection("episodic", "update", "not-found", "no memory epi_9 to update")],
        seconds=1.5,
    )
    controller._on_batch(report, None)  # as the memory worker reports a batch
    qtbot.waitUntil(lambda: panel.rejected.count() == 1)
    assert "2 event(s), 1 write(s), 1 rejected" in panel.labels["batch"].text()
    line = panel.rejected.item(0).text()
    assert "episodic: update" in line and "not-found" in line and "epi_9" in line
    window.backlog_button.click()
    assert not window.activity_dock.isVisible()
