"""File → Import from other apps…: a real import on the app's store, with progress, a summary
and Cancel."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from app.importers import base
from ui.import_dialog import ImportDialog


def _open(engram) -> ImportDialog:
    action = next(
        a for a in engram.window.menuBar().actions()[0].menu().actions() if "other apps" in a.text()
    )
    action.trigger()
    dialog = engram.window.dialog
    assert isinstance(dialog, ImportDialog) and dialog.isVisible()
    return dialog


def _export(path: Path, n: int) -> Path:
    path.write_text(
        "".join(
            json.dumps({"time": f"2024-02-0{1 + i % 9}T10:00", "speaker": "Ann", "text": f"m{i}"})
            + "\n"
            for i in range(n)
        )
    )
    return path


def test_import_a_chat_export_with_progress_and_summary(qtbot, engram, tmp_path: Path):
    dialog = _open(engram)
    dialog.kind.setCurrentIndex(0)
    dialog.path.setText(str(_export(tmp_path / "chat.jsonl", 12)))
    progressed: list[int] = []
    dialog.start_button.click()
    assert dialog.task is not None
    dialog.task.progressed.connect(lambda done, _total: progressed.append(done))
    qtbot.waitUntil(lambda: dialog.task is None, timeout=10_000)
    assert "chat.jsonl: 12 new, 0 already there" in dialog.status.text()
    assert progressed and progressed[-1] == 12
    assert dialog.cancel_button.text() == "Close"
    assert engram.controller.services.backlog()["pending"] == 12

    dialog.start_button.click()  # again: nothing new
    qtbot.waitUntil(lambda: dialog.task is None, timeout=10_000)
    assert "0 new, 12 already there" in dialog.status.text()

    dialog.path.setText(str(tmp_path / "missing.jsonl"))
    dialog.start_button.click()
    qtbot.waitUntil(lambda: dialog.task is None, timeout=10_000)
    assert (
        "missing.jsonl" in dialog.status.text() and "nothing was imported" in dialog.status.text()
    )
    dialog.cancel_button.click()
    assert not dialog.isVisible()


def test_cancel_stops_between_batches(
    qtbot, engram, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(base, "BATCH", 5)
    dialog = _open(engram)
    dialog.path.setText(str(_export(tmp_path / "chat.jsonl", 40)))
    store = engram.controller.services.store()
    real, pressed, writing = store.events.put_many, threading.Event(), threading.Event()

    def slow(events):  # the first batch waits for the user to press Cancel
        writing.set()
        assert pressed.wait(10)
        real(events)

    monkeypatch.setattr(store.events, "put_many", slow)
    dialog.start_button.click()
    # Cancel once the first batch is being written: pressed earlier, before the task's thread
    # has started it, the task is cancelled outright ("Importing was cancelled"), which is
    # right, but not what this test is about.
    qtbot.waitUntil(writing.is_set, timeout=10_000)
    dialog.cancel_button.click()
    assert dialog.task is not None and dialog.status.text() == "Stopping after this batch…"
    pressed.set()
    qtbot.waitUntil(lambda: dialog.task is None, timeout=10_000)
    assert dialog.status.text().startswith("Stopped: stopped after 5 new")
    assert engram.window.error_button.isHidden()  # a cancel is not an error
