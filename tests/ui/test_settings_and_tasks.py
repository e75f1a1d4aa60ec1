"""The settings dialog round trip and its messages; the task manager's thread hand-off; the
launcher and the single-instance socket."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

from app.settings import Settings, load_settings, save_settings
from ui.settings_dialog import SettingsDialog
from ui.single_instance import SingleInstance, server_name
from ui.tasks import TaskManager


def _open_settings(qtbot, engram) -> SettingsDialog:
    engram.window.settings_action.trigger()
    dialog = engram.window.dialog
    assert isinstance(dialog, SettingsDialog) and dialog.isVisible()
    return dialog


def test_settings_round_trip(qtbot, engram, tmp_path: Path):
    gguf = tmp_path / "tiny.gguf"
    gguf.write_bytes(b"GGUF")
    data = tmp_path / "memories"
    dialog = _open_settings(qtbot, engram)
    dialog.use_gguf.setChecked(True)
    dialog.gguf.setText(str(gguf))
    dialog.gpu_layers.setValue(12)
    dialog.n_ctx.setValue(8192)
    dialog.interval.setValue(7.5)
    dialog.monitors.setText("2, 1")
    dialog.data_dir.setText(str(data))
    dialog.chroma_url.setText("http://127.0.0.1:8001")
    dialog.accept()
    qtbot.waitUntil(lambda: "Settings saved" in engram.window.activity_label.text())
    assert "Restart Engram to apply" in engram.window.activity_label.text()

    saved = load_settings()
    assert saved.llm.model_path == gguf and saved.llm.openai_base_url is None
    assert (saved.llm.n_gpu_layers, saved.llm.n_ctx) == (12, 8192)
    assert (saved.capture.interval_s, saved.capture.monitors) == (7.5, (2, 1))
    assert (saved.data_dir, saved.chroma_url) == (data, "http://127.0.0.1:8001")
    assert engram.controller.services.settings == saved

    again = _open_settings(qtbot, engram)  # shows what was saved
    assert again.use_gguf.isChecked() and again.gguf.text() == str(gguf)
    assert again.gpu_layers.value() == 12 and again.monitors.text() == "2, 1"
    again.use_endpoint.setChecked(True)
    again.endpoint.setText("http://127.0.0.1:8080/v1")
    again.gpu_layers.setValue(again.gpu_layers.minimum())  # Auto
    again.accept()
    qtbot.waitUntil(lambda: load_settings().llm.openai_base_url == "http://127.0.0.1:8080/v1")
    assert load_settings().llm.model_path is None and load_settings().llm.n_gpu_layers is None


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("chroma_url", "localhost:8000", "Chroma server URL: chroma_url must start with http://"),
        ("n_ctx", 100, "Context size: Input should be greater than or equal to 512"),
        ("monitors", "one", "Monitors: “one” is not a list of monitor numbers"),
        ("monitors", "0", "Monitors: monitors are counted from 1"),
        ("interval", 0.0, "Capture interval: Input should be greater than or equal to 0.1"),
        ("gguf", "/nowhere/model.gguf", "Model file: chat model file /nowhere/model.gguf does not"),
        ("data_dir", "relative/folder", "Data folder: relative/folder must be an absolute path"),
    ],
)
def test_a_bad_setting_gets_a_clear_message_and_nothing_is_saved(
    qtbot, engram, field, value, message
):
    save_settings(Settings())
    before = load_settings()
    dialog = _open_settings(qtbot, engram)
    widget = getattr(dialog, field)
    if field == "gguf":
        dialog.use_gguf.setChecked(True)
    widget.setValue(value) if hasattr(widget, "setValue") else widget.setText(value)
    dialog.accept()
    assert dialog.isVisible(), "the dialog stays open to fix the value"
    assert message in dialog.message.text()
    assert load_settings() == before


def test_tasks_deliver_results_and_errors_on_the_gui_thread(qtbot):
    tasks = TaskManager()
    gui = threading.current_thread()
    seen: list[tuple[str, object, bool]] = []

    def work(ctx):
        for n in range(3):
            ctx.report(n)
        ctx.progress(3, 3)
        return threading.current_thread().name

    task = tasks.stream("Counting", work)
    task.reported.connect(lambda v: seen.append(("report", v, threading.current_thread() is gui)))
    with qtbot.waitSignal(task.done, timeout=5_000) as done:
        pass
    assert done.args[0].startswith("engram-io")  # it ran on a worker
    assert seen == [("report", n, True) for n in range(3)]

    failing = tasks.submit("Failing", lambda: 1 / 0)
    errors: list[tuple[str, str]] = []
    tasks.error.connect(lambda label, msg: errors.append((label, msg)))
    with qtbot.waitSignal(failing.failed, timeout=5_000) as failed:
        pass
    assert isinstance(failed.args[0], ZeroDivisionError)
    assert errors == [("Failing", "division by zero")]

    gate = threading.Event()
    blocker = tasks.stream("Waiting", lambda ctx: ctx.cancelled.wait(10) and "stopped")
    queued = [tasks.submit("Queued", gate.wait) for _ in range(2)]  # io pool of 2 is full
    blocker.cancel()
    with qtbot.waitSignal(blocker.done, timeout=5_000) as stopped:
        pass
    assert stopped.args[0] == "stopped"
    gate.set()
    qtbot.waitUntil(lambda: not tasks.running(), timeout=5_000)
    assert all(q.error is None for q in queued)
    tasks.shutdown()


def test_a_second_launch_raises_the_first(qtbot, tmp_path: Path):
    name = server_name(tmp_path)
    first, second = SingleInstance(name), SingleInstance(name)
    assert not first.notify_running(timeout_ms=200)  # nobody there yet
    assert first.listen()
    with qtbot.waitSignal(first.activated, timeout=5_000):
        assert second.notify_running()
    first.close()
    assert server_name(tmp_path) != server_name(tmp_path / "other")


def test_cli_arguments_do_not_load_qt(engram_home: Path):
    code = (
        "import sys; from ui.launcher import main; rc = main(['stats']); "
        "print('QT' if 'PySide6' in sys.modules else 'NO-QT', rc)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.strip().splitlines()[-1] == "NO-QT 0"


def test_qt_warnings_are_caught_by_the_failing_handler(qt_warnings_fail: list[str]):
    from PySide6.QtCore import qWarning

    qWarning("something is wrong")
    assert qt_warnings_fail == ["QtWarningMsg: something is wrong"]
    qt_warnings_fail.clear()  # this test expected it; any other test would fail here


def test_settings_show_how_many_events_retention_will_remove_before_it_runs(qtbot, engram):
    from datetime import UTC, datetime, timedelta

    from storage.records import Event

    store = engram.controller.services.store()
    now = datetime.now(UTC)
    ages = [200, 120, 100, 40, 3]
    events = [
        store.events.put(Event(source="screen", app="xterm", text=f"read {n}",
                               occurred_at=now - timedelta(days=n)))
        for n in ages
    ]  # fmt: skip
    store.events.done([e.id for e in events])
    dialog = _open_settings(qtbot, engram)
    assert dialog.keep_days.value() == 90
    qtbot.waitUntil(lambda: "Retention will remove 3 captured event(s) older than 90 days"
                    in dialog.retention.text())  # fmt: skip
    dialog.keep_days.setValue(30)
    qtbot.waitUntil(lambda: "remove 4 captured event(s) older than 30 days"
                    in dialog.retention.text())  # fmt: skip
    dialog.keep_days.setValue(0)
    qtbot.waitUntil(lambda: "kept forever" in dialog.retention.text())
    assert store.events.counts()["done"] == 5  # counting removed nothing
    dialog.keep_days.setValue(150)
    dialog.accept()
    qtbot.waitUntil(lambda: load_settings().keep_events_days == 150)


def test_about_shows_the_versions_engram_version_prints(qtbot, engram):
    from PySide6.QtWidgets import QMessageBox

    from app.version import engram_version

    engram.window.show_about()
    box = engram.window.findChild(QMessageBox, "about-box")
    qtbot.waitUntil(lambda: box is not None and box.isVisible(), timeout=5_000)
    assert f"engram {engram_version()}" in box.informativeText()
    assert "Chroma: " in box.informativeText()
    box.close()


def test_the_model_drop_downs_name_size_speed_and_a_broken_file(
    qtbot, engram, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """Every built-in model is listed with its size and speed (measured here once doctor has
    run, else the reference figure); a file that fails its check is named; the chat and the
    agents' choices are saved."""
    from app.model_files import CATALOGUE, record_speed

    folder = tmp_path / "models"
    folder.mkdir()
    monkeypatch.setenv("ENGRAM_MODELS_DIR", str(folder))
    broken = folder / CATALOGUE["qwen-0.5b"].file_name
    broken.write_bytes(b"GGUF")
    record_speed("smollm2", 61.04, 1)
    dialog = _open_settings(qtbot, engram)
    items = {dialog.builtin.itemData(i): dialog.builtin.itemText(i) for i in range(3)}
    assert set(items) == set(CATALOGUE) and dialog.builtin.count() == len(CATALOGUE)
    assert items["smollm2"] == "SmolLM2 135M (98 MB) · 61 tokens/s measured here (1 threads)"
    assert items["qwen-1.5b"].startswith("Qwen2.5-Coder 1.5B (1.12 GB) · about 20 tokens/s")
    assert (
        f"cannot be used: {folder / CATALOGUE['qwen-1.5b'].file_name} is missing"
        in (items["qwen-1.5b"])
    )
    assert f"cannot be used: {broken} is 4 bytes" in items["qwen-0.5b"]
    assert dialog.agent_builtin.itemData(0) == "chat"  # "the chat model"
    dialog.builtin.setCurrentIndex(dialog.builtin.findData("smollm2"))
    dialog.agent_builtin.setCurrentIndex(dialog.agent_builtin.findData("qwen-1.5b"))
    dialog.accept()
    qtbot.waitUntil(lambda: load_settings().llm.agent_model == "qwen-1.5b")
    assert load_settings().llm.model == "smollm2"
