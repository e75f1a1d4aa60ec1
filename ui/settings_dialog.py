"""The settings dialog: the chat model (a built-in one, a GGUF file, or an OpenAI-compatible
endpoint) and the memory agents' built-in model, each listed by name, size and speed; GPU
layers, context size, capture interval and monitors, data folder, Chroma server URL, how long
captured events are kept (with the count retention will remove) and start at login.

Values are validated by the one Settings model (app.services.settings_with); a bad value is
explained in the dialog, which stays open, and nothing is saved.
"""

from __future__ import annotations

import os
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.llm_config import SAME_AS_CHAT
from app.model_files import model_statuses
from app.services import settings_with
from app.settings import Settings, SettingsError

AUTO_LAYERS = -2  # the spin box's "Auto" value: None in the settings


class SettingsDialog(QDialog):
    saved = Signal(object)  # the new Settings
    #: Days to keep events: how many would retention remove? (answered by `show_retention`)
    retention_asked = Signal(int)

    def __init__(self, settings: Settings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Engram settings")
        self.settings = settings
        llm, capture = settings.llm, settings.capture

        model_box = QGroupBox("Chat model")
        model_form = QFormLayout(model_box)
        self.use_embedded = QRadioButton("A built-in model")
        self.use_gguf = QRadioButton("A GGUF model file")
        self.use_endpoint = QRadioButton("An OpenAI-compatible server (llama-server, Ollama, vLLM)")
        group = QButtonGroup(self)
        for button in (self.use_embedded, self.use_gguf, self.use_endpoint):
            group.addButton(button)
        # Each built-in model by name, size and speed; one whose file fails its check says so.
        statuses = model_statuses()
        self.builtin = QComboBox()
        self.agent_builtin = QComboBox()
        self.agent_builtin.addItem("The chat model", SAME_AS_CHAT)
        for status in statuses:
            self.builtin.addItem(status.choice(), status.model.key)
            self.agent_builtin.addItem(status.choice(), status.model.key)
        self.builtin.setCurrentIndex(max(self.builtin.findData(llm.model), 0))
        self.agent_builtin.setCurrentIndex(max(self.agent_builtin.findData(llm.agent_model), 0))
        self.builtin.activated.connect(lambda _i: self.use_embedded.setChecked(True))
        self.gguf = QLineEdit(str(llm.model_path) if llm.model_path else "")
        self.gguf.setPlaceholderText("/path/to/model.gguf")
        browse = QPushButton("Choose…")
        browse.clicked.connect(self._pick_gguf)
        gguf_row = QHBoxLayout()
        gguf_row.addWidget(self.gguf, 1)
        gguf_row.addWidget(browse)
        self.endpoint = QLineEdit(llm.openai_base_url or "")
        self.endpoint.setPlaceholderText("http://127.0.0.1:8080/v1")
        self.endpoint_model = QLineEdit(llm.openai_model)
        self.gpu_layers = QSpinBox()
        self.gpu_layers.setRange(AUTO_LAYERS, 999)
        self.gpu_layers.setSpecialValueText("Auto (all when the GPU build allows)")
        self.gpu_layers.setValue(AUTO_LAYERS if llm.n_gpu_layers is None else llm.n_gpu_layers)
        self.gpu_layers.setToolTip("0 = CPU only, -1 = all layers")
        self.n_ctx = QSpinBox()
        self.n_ctx.setRange(1, 262_144)
        self.n_ctx.setSingleStep(512)
        self.n_ctx.setValue(llm.n_ctx)
        self.n_ctx.setSuffix(" tokens")
        model_form.addRow(self.use_embedded)
        model_form.addRow("Chat model", self.builtin)
        model_form.addRow(self.use_gguf)
        model_form.addRow("Model file", gguf_row)
        model_form.addRow(self.use_endpoint)
        model_form.addRow("Endpoint URL", self.endpoint)
        model_form.addRow("Endpoint model", self.endpoint_model)
        model_form.addRow("GPU layers", self.gpu_layers)
        model_form.addRow("Context size", self.n_ctx)
        model_form.addRow("Memory agents' model", self.agent_builtin)
        if llm.openai_base_url:
            self.use_endpoint.setChecked(True)
        elif llm.model_path:
            self.use_gguf.setChecked(True)
        else:
            self.use_embedded.setChecked(True)

        capture_box = QGroupBox("Screen capture")
        capture_form = QFormLayout(capture_box)
        self.interval = QDoubleSpinBox()
        self.interval.setRange(0.0, 3600)
        self.interval.setDecimals(1)
        self.interval.setSuffix(" s")
        self.interval.setValue(capture.interval_s)
        self.monitors = QLineEdit(", ".join(str(m) for m in capture.monitors))
        self.monitors.setPlaceholderText("all monitors (or e.g. 1, 2)")
        capture_form.addRow("Look every", self.interval)
        capture_form.addRow("Monitors", self.monitors)

        storage_box = QGroupBox("Storage")
        storage_form = QFormLayout(storage_box)
        self.data_dir = QLineEdit(str(settings.data_dir) if settings.data_dir else "")
        self.data_dir.setPlaceholderText(str(settings.resolved_data_dir()))
        folder = QPushButton("Choose…")
        folder.clicked.connect(self._pick_folder)
        folder_row = QHBoxLayout()
        folder_row.addWidget(self.data_dir, 1)
        folder_row.addWidget(folder)
        self.chroma_url = QLineEdit(settings.chroma_url or "")
        self.chroma_url.setPlaceholderText("empty: vectors stay in the data folder")
        storage_form.addRow("Data folder", folder_row)
        if os.environ.get("ENGRAM_HOME"):
            storage_form.addRow(QLabel("ENGRAM_HOME is set, so it decides the data folder."))
        storage_form.addRow("Chroma server URL", self.chroma_url)
        self.keep_days = QSpinBox()
        self.keep_days.setRange(0, 36_500)
        self.keep_days.setSuffix(" days")
        self.keep_days.setSpecialValueText("forever")
        self.keep_days.setValue(settings.keep_events_days)
        self.keep_days.valueChanged.connect(self.retention_asked)
        #: What retention will remove at its next run (filled in by the window: it needs the store).
        self.retention = QLabel("")
        self.retention.setWordWrap(True)
        storage_form.addRow("Keep captured events", self.keep_days)
        storage_form.addRow("", self.retention)
        self.start_at_login = QCheckBox("Start Engram in the tray when I log in")
        self.start_at_login.setChecked(settings.start_at_login)
        storage_form.addRow(self.start_at_login)

        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setStyleSheet("color: #b00020")
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        for widget in (model_box, capture_box, storage_box, self.message, buttons):
            layout.addWidget(widget)
        self.result_settings: Settings | None = None

    def _pick_gguf(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Choose a GGUF model", "", "GGUF models (*.gguf);;All files (*)"
        )
        if path:
            self.gguf.setText(path)
            self.use_gguf.setChecked(True)

    def _pick_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Choose the data folder")
        if path:
            self.data_dir.setText(path)

    def changes(self) -> dict[str, Any]:
        """The form as a partial settings dict (strings are validated by Settings)."""
        monitors_text = self.monitors.text().replace(",", " ").split()
        try:
            monitors = [int(m) for m in monitors_text]
        except ValueError:
            raise SettingsError(
                f"Monitors: “{self.monitors.text()}” is not a list of monitor numbers "
                "(e.g. 1, 2; empty for all)"
            ) from None
        layers = self.gpu_layers.value()
        return {
            "llm": {
                "model": self.builtin.currentData(),
                "agent_model": self.agent_builtin.currentData(),
                "model_path": self.gguf.text().strip() or None
                if self.use_gguf.isChecked()
                else None,
                "openai_base_url": self.endpoint.text().strip() or None
                if self.use_endpoint.isChecked()
                else None,
                "openai_model": self.endpoint_model.text().strip() or "default",
                "n_gpu_layers": None if layers == AUTO_LAYERS else layers,
                "n_ctx": self.n_ctx.value(),
            },
            "capture": {"interval_s": self.interval.value(), "monitors": monitors},
            "data_dir": self.data_dir.text().strip() or None,
            "chroma_url": self.chroma_url.text().strip() or None,
            "keep_events_days": self.keep_days.value(),
            "start_at_login": self.start_at_login.isChecked(),
        }

    def show_retention(self, days: int, count: int) -> None:
        """The count retention will remove, before it runs (an answer to an older value of
        the spin box is dropped)."""
        if days != self.keep_days.value():
            return
        if days == 0:
            self.retention.setText("Captured events are kept forever; retention removes none.")
        else:
            self.retention.setText(
                f"Retention will remove {count:,} captured event(s) older than {days} days at "
                "its next run (once a day); memories made from them stay."
            )

    def validated(self) -> Settings:
        changes = self.changes()
        if self.use_gguf.isChecked() and not changes["llm"]["model_path"]:
            raise SettingsError("Model file: choose a .gguf file, or pick a built-in model")
        if self.use_endpoint.isChecked() and not changes["llm"]["openai_base_url"]:
            raise SettingsError(
                "Endpoint URL: enter the server's address, e.g. http://127.0.0.1:8080/v1"
            )
        return settings_with(self.settings, changes)

    def accept(self) -> None:
        try:
            new = self.validated()
        except SettingsError as exc:
            self.message.setText(str(exc))
            return
        self.result_settings = new
        self.saved.emit(new)
        super().accept()
