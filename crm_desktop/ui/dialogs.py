"""Sign-in, settings, diagnostics and the unexpected-error dialog."""

from __future__ import annotations

import platform
import sys
from collections.abc import Callable
from typing import Any

from PySide6 import __version__ as pyside_version
from PySide6.QtCore import Qt, Slot
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from crm_desktop.ui.server_config import ServerConfig, resolve_server
from crm_desktop.ui.settings import SETTINGS, Settings
from crm_desktop.ui.workers import reader_pool, run_in


class LoginDialog(QDialog):
    """Sign-in for a CRE: e-mail and password. The server comes from setup (server_config.resolve_server) and is
    shown, not asked; "Server settings…" opens its two fields for IT (and they open by themselves when setup gave
    none). `attempt(url, key, email, password)` runs on a worker and returns whatever the caller needs; errors are
    shown inline and the dialog stays open."""

    def __init__(
        self,
        settings: Settings,
        attempt: Callable[[str, str, str, str], Any],
        note: str = "",
        parent: QWidget | None = None,
        server: ServerConfig | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Sign in — CRE Desk")
        self._attempt = attempt
        self.result_value: Any = None
        server = server or resolve_server(settings)
        self.url = QLineEdit(server.url)
        self.url.setPlaceholderText("https://<project>.supabase.co")
        self.anon_key = QLineEdit(server.anon_key)
        self.anon_key.setPlaceholderText("the project's anon (public) key, from IT")
        self.email = QLineEdit(str(settings.get("account/email")))
        self.email.setPlaceholderText("you@dealership.in")
        self.password = QLineEdit()
        self.password.setEchoMode(QLineEdit.EchoMode.Password)
        self.error = QLabel()
        self.error.setObjectName("fieldError")
        self.error.setWordWrap(True)
        self.note = QLabel(note)
        self.note.setWordWrap(True)
        self.note.setVisible(bool(note))
        self.server_label = QLabel()
        self.server_label.setObjectName("serverLabel")
        self.server_label.setWordWrap(True)
        self.server_button = QPushButton("Server settings…")
        self.server_button.setAutoDefault(False)
        self.server_button.clicked.connect(self._on_server_button_clicked)
        self._origin, self._origin_url = server.origin, server.url
        form = QFormLayout()
        form.addRow("&E-mail", self.email)
        form.addRow("&Password", self.password)
        self.server_box = QWidget()
        server_form = QFormLayout(self.server_box)
        server_form.setContentsMargins(0, 0, 0, 0)
        server_form.addRow("Server", self.url)
        server_form.addRow("Anon key", self.anon_key)
        server_row = QHBoxLayout()
        server_row.addWidget(self.server_label, 1)
        server_row.addWidget(self.server_button)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Sign in")
        self.buttons.accepted.connect(self._on_buttons_accepted)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.note)
        layout.addLayout(form)
        layout.addLayout(server_row)
        layout.addWidget(self.server_box)
        layout.addWidget(self.error)
        layout.addWidget(self.buttons)
        self.server_box.setVisible(not server.complete)
        self.url.textChanged.connect(self._show_server)
        self._show_server()
        (self.password if self.email.text() else self.email).setFocus()

    @Slot()
    def _show_server(self) -> None:
        url = self.url.text().strip()
        if url:
            origin = f" ({self._origin})" if self._origin and url == self._origin_url else ""
            self.server_label.setText(f"Server: {url}{origin}")
        else:
            self.server_label.setText("No server set up on this desk yet: ask IT for the address and key.")

    @Slot()
    def _on_server_button_clicked(self) -> None:
        self.server_box.setVisible(not self.server_box.isVisible())
        if self.server_box.isVisible():
            self.url.setFocus()

    @Slot()
    def _on_buttons_accepted(self) -> None:
        url, key, email, pw = (self.url.text().strip(), self.anon_key.text().strip(), self.email.text().strip(),
                               self.password.text())  # fmt: skip
        if not url.startswith(("http://", "https://")) or not key:
            self.server_box.show()
            self.error.setText("This desk has no server set up: enter the server address (https://…) and the key "
                               "IT gave you, or ask IT for the config file.")  # fmt: skip
            return
        if not email or not pw:
            self.error.setText("Enter your e-mail and your password.")
            (self.email if not email else self.password).setFocus()
            return
        self.error.setText("Signing in…")
        self.buttons.setEnabled(False)
        run_in(reader_pool(), lambda: self._attempt(url, key, email, pw), self._on_signed_in, self._on_failed)

    def _on_signed_in(self, value: Any) -> None:
        self.result_value = value
        self.accept()

    def _on_failed(self, exc: BaseException) -> None:
        self.buttons.setEnabled(True)
        self.error.setText(str(exc) or type(exc).__name__)


class SettingsDialog(QDialog):
    """The declared settings (settings.SETTINGS), edited in one place; a setting with choices is a list."""

    def __init__(self, settings: Settings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings — CRE Desk")
        self._settings = settings
        self._editors: dict[str, QWidget] = {}
        form = QFormLayout()
        for spec in SETTINGS:
            editor: QWidget
            if spec.type is int:
                spin = QSpinBox()
                spin.setRange(5, 3600)
                spin.setValue(int(settings.get(spec.key)))
                editor = spin
            elif spec.choices:
                combo = QComboBox()
                for value, label in spec.choices:
                    combo.addItem(f"{label} ({value})", value)
                combo.setCurrentIndex(max(0, combo.findData(settings.get(spec.key))))
                editor = combo
            else:
                line = QLineEdit(str(settings.get(spec.key)))
                editor = line
            editor.setToolTip(spec.description)
            self._editors[spec.key] = editor
            form.addRow(spec.label, editor)
        note = QLabel("Server changes apply at the next sign-in; intervals and the phone region at the next start.")
        note.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self._on_buttons_accepted)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(note)
        layout.addWidget(buttons)

    @Slot()
    def _on_buttons_accepted(self) -> None:
        for key, editor in self._editors.items():
            if isinstance(editor, QSpinBox):
                value: Any = editor.value()
            elif isinstance(editor, QComboBox):
                value = editor.currentData()
            else:
                value = editor.text().strip()  # type: ignore[attr-defined]
            self._settings.set(key, value)
        self._settings.sync()
        self.accept()


def environment_report(extra: dict[str, str]) -> str:
    import httpx

    lines = [
        "CRE Desk 0.1.0",
        f"Python {sys.version.split()[0]} on {platform.platform()}",
        f"PySide6 {pyside_version}, httpx {httpx.__version__}",
    ]
    lines += [f"{k}: {v}" for k, v in extra.items()]
    return "\n".join(lines)


class DiagnosticsDialog(QDialog):
    """About / Diagnostics: versions, paths, recent log lines, "Copy details"."""

    def __init__(self, report: str, log_lines: list[str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("About / Diagnostics — CRE Desk")
        self.resize(760, 520)
        self.text = QPlainTextEdit()
        self.text.setReadOnly(True)
        self.text.setPlainText(report + "\n\nRecent log lines:\n" + "\n".join(log_lines[-300:]))
        copy = QPushButton("Copy details")
        copy.clicked.connect(lambda: QGuiApplication.clipboard().setText(self.text.toPlainText()))
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.reject)
        close.addButton(copy, QDialogButtonBox.ButtonRole.ActionRole)
        layout = QVBoxLayout(self)
        layout.addWidget(self.text)
        layout.addWidget(close)


def show_unexpected_error(parent: QWidget | None, summary: str, details: str) -> None:
    """Tier 3: a bug. Say so plainly, offer the details to copy for IT."""
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Critical)
    box.setWindowTitle("Something went wrong — CRE Desk")
    box.setText("Something unexpected went wrong. Your queued leads are safe.")
    box.setInformativeText(summary)
    box.setDetailedText(details)
    copy = box.addButton("Copy details", QMessageBox.ButtonRole.ActionRole)
    box.addButton(QMessageBox.StandardButton.Close)
    box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    box.exec()
    if box.clickedButton() is copy:
        QGuiApplication.clipboard().setText(f"{summary}\n\n{details}")
