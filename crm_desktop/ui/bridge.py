"""Turns the Qt-free sync engine's callbacks (called on its threads) into Qt signals delivered on the GUI thread."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QObject, Signal

from crm_desktop.core.models import OutboxItem
from crm_desktop.core.sync import ConnectionState, SyncEngine, SyncProgress


class SyncBridge(QObject):
    """Signals (all queued to the GUI thread): progress(SyncProgress), item_changed(OutboxItem),
    connection_changed(str state, str detail), leads_changed(int rows), catalog_changed(dict), error(object)."""

    progress = Signal(object)
    item_changed = Signal(object)
    connection_changed = Signal(str, str)
    leads_changed = Signal(int)
    catalog_changed = Signal(object)
    error = Signal(object)

    def __init__(self, engine: SyncEngine, parent: QObject | None = None) -> None:
        super().__init__(parent)
        ls = engine.listeners
        ls.progress.append(self._emit_progress)
        ls.item.append(self._emit_item)
        ls.connection.append(self._emit_connection)
        ls.leads_changed.append(self._emit_leads)
        ls.catalog.append(self._emit_catalog)
        ls.error.append(self._emit_error)

    # Emitting from another thread is safe; receivers in the GUI thread get a queued call.
    def _emit_progress(self, p: SyncProgress) -> None:
        self.progress.emit(p)

    def _emit_item(self, item: OutboxItem) -> None:
        self.item_changed.emit(item)

    def _emit_connection(self, state: ConnectionState, detail: str) -> None:
        self.connection_changed.emit(state, detail)

    def _emit_leads(self, n: int) -> None:
        self.leads_changed.emit(n)

    def _emit_catalog(self, catalog: dict[str, Any]) -> None:
        self.catalog_changed.emit(catalog)

    def _emit_error(self, exc: Exception) -> None:
        self.error.emit(exc)
