"""Import campaign leads: the team lead's dialog over `core/importer.py`.

Four pages, in the order of the job: choose (file, source, sub-source, who gets the leads, which column is what),
preview (every row with its phone verdict and the counts), sending (a progress bar that can be cancelled), summary
(the server's counts and where the rows not imported were saved). Reading the file, the verdicts (the cache lookup)
and each batch run on the reader pool; the GUI thread only shows. Each batch's answer is journalled on disk as it
arrives, so a cancelled or cut-off import resumes — now, or when the same file is opened again later — without
creating anything twice (the batch refs are derived from the file and the choices; see core/importer.py).

The column mapping is remembered per source (the next Meta export has the same odd headers)."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QSettings,
    QSortFilterProxyModel,
    Qt,
    Signal,
    Slot,
)
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QButtonGroup,
    QComboBox,
    QDialog,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QStackedWidget,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from crm_desktop.core import importer as imp
from crm_desktop.core.api import ApiError
from crm_desktop.ui.reassign import cache_connection
from crm_desktop.ui.workers import reader_pool, run_in

log = logging.getLogger(__name__)

Rpc = Callable[[str, dict[str, Any]], Any]
AnyIndex = QModelIndex | QPersistentModelIndex
ROW_ROLE = Qt.ItemDataRole.UserRole + 1
NO_COLUMN = "(none)"
VERDICT_TEXT = {"valid": "New", "duplicate": "Already a lead", "invalid": "Not imported"}
VERDICT_COLOUR = {"valid": QColor("#1b7f3b"), "duplicate": QColor("#8a5a00"), "invalid": QColor("#c62828")}


class Memory(Protocol):
    """Where the column mappings are remembered: a QSettings, or `SettingsMemory` over the app's settings."""

    def value(self, key: str, defaultValue: Any = ...) -> Any: ...
    def setValue(self, key: str, value: Any) -> None: ...


class SettingsMemory:
    """The app's `Settings` as a mapping memory: kept with the window state (remembered, not a preference)."""

    def __init__(self, settings: Any) -> None:
        self._settings = settings

    def value(self, key: str, defaultValue: Any = None) -> Any:
        return self._settings.window_value(key, defaultValue)

    def setValue(self, key: str, value: Any) -> None:
        self._settings.set_window_value(key, value)


def load_preview(
    path: Path, cache: Path, mapping: imp.Mapping | None, source: str, sub_source: str, models: Sequence[str]
) -> tuple[imp.Sheet, imp.Mapping, list[imp.PreviewRow]]:
    """Runs on the reader pool: read the file, settle the mapping, give every row its verdict."""
    sheet = imp.read_sheet(path)
    mapping = imp.guess_mapping(sheet.headers, mapping)
    rows: list[imp.PreviewRow] = []
    if not imp.missing_fields(mapping):
        conn = cache_connection(cache)
        rows = imp.preview(
            sheet, mapping, lambda phones: imp.cached_sources(conn, phones),
            source=source, sub_source=sub_source, models=models,
        )  # fmt: skip
    return sheet, mapping, rows


def _save_and_forget(sheet: imp.Sheet, summary: imp.ImportSummary, journal: imp.ImportJournal) -> Path | None:
    """Runs on the reader pool once every batch is answered: the rejected rows beside the file, then the journal
    goes (the import is finished: nothing to resume)."""
    path = imp.write_rejected(sheet, summary.rejected)
    journal.forget()
    return path


class PreviewModel(QAbstractTableModel):
    """The preview's rows: file row number, name, the mobile as written, the verdict and its reason."""

    ROW, NAME, PHONE, VERDICT, REASON = range(5)
    HEADERS = ("Row", "Customer", "Mobile (as in the file)", "Verdict", "Reason")

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._rows: list[imp.PreviewRow] = []

    def set_rows(self, rows: Sequence[imp.PreviewRow]) -> None:
        self.beginResetModel()
        self._rows = list(rows)
        self.endResetModel()

    def rowCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008 - Qt's own default
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: AnyIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.HEADERS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        horizontal = orientation == Qt.Orientation.Horizontal
        if horizontal and role == Qt.ItemDataRole.DisplayRole and 0 <= section < len(self.HEADERS):
            return self.HEADERS[section]
        return None

    def flags(self, index: AnyIndex) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemNeverHasChildren

    def data(self, index: AnyIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self._rows) or not 0 <= index.column() < len(self.HEADERS):
            return None
        row = self._rows[index.row()]
        col = index.column()
        if role == ROW_ROLE:
            return row
        if role == Qt.ItemDataRole.DisplayRole:
            return (row.row_no, row.customer_name, row.phone_raw, VERDICT_TEXT[row.verdict], row.reason)[col]
        if role == Qt.ItemDataRole.ForegroundRole and col == self.VERDICT:
            return VERDICT_COLOUR[row.verdict]
        return None


class ImportDialog(QDialog):
    """Signals: previewed(object PreviewCounts) once the preview is on screen; progress(int done, int total) per
    batch answered; imported(object ImportSummary) on the summary page; stopped(object ImportSummary) when a cancel
    took effect (the import can be resumed); failed(str) with the line shown when something did not work."""

    previewed = Signal(object)
    progress = Signal(int, int)
    imported = Signal(object)
    stopped = Signal(object)
    failed = Signal(str)

    def __init__(
        self,
        rpc: Rpc,
        cache_path: Path,
        catalog: dict[str, Any],
        journal_dir: Path,
        settings: Memory | QSettings | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Import campaign leads")
        self.resize(1000, 640)
        self._rpc = rpc
        self._cache = cache_path
        self._journal_dir = journal_dir
        self._settings = settings
        self._models = [str(m) for m in catalog.get("models") or []]
        self._sources: dict[str, list[str]] = {
            str(s.get("code")): [str(x) for x in s.get("sub_sources") or []]
            for s in catalog.get("sources") or []
            if isinstance(s, dict)
        }
        self._cres = [c for c in catalog.get("cres") or [] if isinstance(c, dict) and c.get("email")]
        self._branches = [str(b) for b in catalog.get("branches") or [] if b]
        self.sheet: imp.Sheet | None = None
        self.rows: list[imp.PreviewRow] = []
        self.batches: list[imp.Batch] = []
        self.journal: imp.ImportJournal | None = None
        self.summary: imp.ImportSummary | None = None
        self.rejected_file: Path | None = None
        self._mapping: imp.Mapping = {}
        self._cancel = False
        self._sending = False

        self.pages = QStackedWidget()
        self.pages.addWidget(self._build_choose())
        self.pages.addWidget(self._build_preview())
        self.pages.addWidget(self._build_sending())
        self.pages.addWidget(self._build_summary())
        self.message_label = QLabel()
        self.message_label.setWordWrap(True)
        root = QVBoxLayout(self)
        root.addWidget(self.pages, 1)
        root.addWidget(self.message_label)

    # -- pages ----------------------------------------------------------------------------------------------------

    def _build_choose(self) -> QWidget:
        page = QWidget()
        self.file_edit = QLineEdit()
        self.file_edit.setReadOnly(True)
        self.file_edit.setPlaceholderText("A CSV or Excel export (Meta lead ads, Google, an affiliate's sheet)")
        self.open_button = QPushButton("&Open file…")
        self.open_button.clicked.connect(self._on_open_clicked)
        self.source_combo = QComboBox()
        self.source_combo.addItems(list(self._sources))
        self.sub_source_combo = QComboBox()
        self.source_combo.currentTextChanged.connect(self._on_source_changed)
        self._on_source_changed(self.source_combo.currentText())
        self.branch_combo = QComboBox()
        self.branch_combo.setAccessibleName("Branch")
        self.branch_combo.addItem("(none: the CRE sets it at the first call)", "")
        for branch in self._branches:
            self.branch_combo.addItem(branch, branch)
        self.round_robin_radio = QRadioButton("&Round robin over all active CREs")
        self.chosen_radio = QRadioButton("&Chosen CREs, in turn:")
        self.round_robin_radio.setChecked(True)
        group = QButtonGroup(page)
        group.addButton(self.round_robin_radio)
        group.addButton(self.chosen_radio)
        self.cre_list = QListWidget()
        self.cre_list.setMaximumHeight(110)
        for cre in self._cres:
            item = QListWidgetItem(f"{cre.get('name') or cre['email']} ({cre.get('branch') or 'no branch'})")
            item.setData(Qt.ItemDataRole.UserRole, str(cre["email"]))
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Unchecked)
            self.cre_list.addItem(item)
        self.cre_list.itemChanged.connect(lambda _item: self.chosen_radio.setChecked(True))
        self.mapping_combos: dict[str, QComboBox] = {}
        mapping = QGridLayout()
        for i, (name, label, required) in enumerate(imp.FIELDS):
            combo = QComboBox()
            combo.setAccessibleName(label)
            self.mapping_combos[name] = combo
            mapping.addWidget(QLabel(label + (" *" if required else "")), i // 2, (i % 2) * 2)
            mapping.addWidget(combo, i // 2, (i % 2) * 2 + 1)
        self.preview_button = QPushButton("&Preview")
        self.preview_button.setDefault(True)
        self.preview_button.setEnabled(False)
        self.preview_button.clicked.connect(self._on_preview_clicked)
        form = QFormLayout()
        file_row = QHBoxLayout()
        file_row.addWidget(self.file_edit, 1)
        file_row.addWidget(self.open_button)
        form.addRow("File", file_row)
        form.addRow("Source", self.source_combo)
        form.addRow("Sub-source", self.sub_source_combo)
        form.addRow("Branch", self.branch_combo)
        who = QVBoxLayout()
        who.addWidget(self.round_robin_radio)
        who.addWidget(self.chosen_radio)
        who.addWidget(self.cre_list)
        form.addRow("Assign to", who)
        layout = QVBoxLayout(page)
        layout.addLayout(form)
        layout.addWidget(QLabel("Columns (remembered for this source):"))
        layout.addLayout(mapping)
        layout.addStretch(1)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.preview_button)
        layout.addLayout(buttons)
        return page

    def _build_preview(self) -> QWidget:
        page = QWidget()
        self.counts_label = QLabel()
        font = self.counts_label.font()
        font.setBold(True)
        self.counts_label.setFont(font)
        self.preview_model = PreviewModel(self)
        self.preview_proxy = QSortFilterProxyModel(self)
        self.preview_proxy.setSourceModel(self.preview_model)
        self.preview_proxy.setFilterKeyColumn(PreviewModel.VERDICT)
        self.preview_view = QTableView()
        self.preview_view.setModel(self.preview_proxy)
        self.preview_view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.preview_view.verticalHeader().setVisible(False)
        self.preview_view.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.preview_view.horizontalHeader().setStretchLastSection(True)
        self.preview_view.setColumnWidth(0, 60)
        self.preview_view.setColumnWidth(1, 200)
        self.preview_view.setColumnWidth(2, 170)
        self.preview_view.setColumnWidth(3, 110)
        self.show_combo = QComboBox()
        self.show_combo.setAccessibleName("Show rows")
        for label, verdict in (("All rows", ""), *((VERDICT_TEXT[v], VERDICT_TEXT[v]) for v in VERDICT_TEXT)):
            self.show_combo.addItem(label, verdict)
        self.show_combo.currentIndexChanged.connect(
            lambda _i: self.preview_proxy.setFilterFixedString(str(self.show_combo.currentData()))
        )
        self.back_button = QPushButton("&Back")
        self.back_button.clicked.connect(lambda: self.pages.setCurrentIndex(0))
        self.import_button = QPushButton("&Import")
        self.import_button.setDefault(True)
        self.import_button.clicked.connect(self._on_import_clicked)
        head = QHBoxLayout()
        head.addWidget(self.counts_label, 1)
        head.addWidget(QLabel("Show:"))
        head.addWidget(self.show_combo)
        self.export_button = QPushButton("&Export…")
        self.export_button.setToolTip("Save the rows shown, with their verdicts, as CSV or Excel")
        self.export_button.clicked.connect(self._on_export_clicked)
        buttons = QHBoxLayout()
        buttons.addWidget(self.back_button)
        buttons.addWidget(self.export_button)
        buttons.addStretch(1)
        buttons.addWidget(self.import_button)
        layout = QVBoxLayout(page)
        layout.addLayout(head)
        layout.addWidget(self.preview_view, 1)
        layout.addLayout(buttons)
        return page

    def _build_sending(self) -> QWidget:
        page = QWidget()
        self.progress_label = QLabel()
        self.progress_bar = QProgressBar()
        self.cancel_button = QPushButton("&Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        self.resume_button = QPushButton("&Resume")
        self.resume_button.clicked.connect(self._on_resume_clicked)
        self.resume_button.setVisible(False)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.resume_button)
        buttons.addWidget(self.cancel_button)
        layout = QVBoxLayout(page)
        layout.addStretch(1)
        layout.addWidget(self.progress_label)
        layout.addWidget(self.progress_bar)
        layout.addLayout(buttons)
        layout.addStretch(1)
        return page

    def _build_summary(self) -> QWidget:
        page = QWidget()
        self.summary_label = QLabel()
        self.summary_label.setWordWrap(True)
        self.summary_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.close_button = QPushButton("Close")
        self.close_button.clicked.connect(self.accept)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.close_button)
        layout = QVBoxLayout(page)
        layout.addWidget(self.summary_label)
        layout.addStretch(1)
        layout.addLayout(buttons)
        return page

    # -- choose ---------------------------------------------------------------------------------------------------

    @Slot(str)
    def _on_source_changed(self, source: str) -> None:
        self.sub_source_combo.clear()
        self.sub_source_combo.addItems(self._sources.get(source, []))

    def set_source(self, source: str, sub_source: str) -> None:
        self.source_combo.setCurrentText(source)
        self.sub_source_combo.setCurrentText(sub_source)

    def choose_cres(self, emails: Sequence[str]) -> None:
        for i in range(self.cre_list.count()):
            item = self.cre_list.item(i)
            wanted = item.data(Qt.ItemDataRole.UserRole) in emails
            item.setCheckState(Qt.CheckState.Checked if wanted else Qt.CheckState.Unchecked)
        (self.chosen_radio if emails else self.round_robin_radio).setChecked(True)

    def assign_to(self) -> list[str] | None:
        if self.round_robin_radio.isChecked():
            return None
        return [
            str(self.cre_list.item(i).data(Qt.ItemDataRole.UserRole))
            for i in range(self.cre_list.count())
            if self.cre_list.item(i).checkState() == Qt.CheckState.Checked
        ]

    @Slot()
    def _on_open_clicked(self) -> None:
        path, _filter = QFileDialog.getOpenFileName(
            self, "Open a campaign export", "", "Spreadsheets (*.csv *.xlsx *.txt);;All files (*)"
        )
        if path:
            self.open_file(Path(path))

    def _remembered(self, source: str) -> imp.Mapping | None:
        if self._settings is None:
            return None
        text = self._settings.value(f"import/mapping/{source}", "")
        try:
            data = json.loads(str(text)) if text else None
        except ValueError:
            return None
        return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else None

    def _remember(self, source: str, mapping: imp.Mapping) -> None:
        if self._settings is not None:
            self._settings.setValue(f"import/mapping/{source}", json.dumps(mapping))

    def open_file(self, path: Path) -> None:
        """Read the file (on the pool) and fill the column choices: this source's remembered mapping first, then
        guesses from the header names."""
        self.file_edit.setText(str(path))
        self._say("Reading the file…")
        self.preview_button.setEnabled(False)
        source = self.source_combo.currentText()
        remembered = self._remembered(source)
        run_in(
            reader_pool(),
            lambda: self._read(path, remembered),
            self._on_file_read,
            self._on_worker_failed,
        )

    @staticmethod
    def _read(path: Path, remembered: imp.Mapping | None) -> tuple[imp.Sheet, imp.Mapping]:
        sheet = imp.read_sheet(path)
        return sheet, imp.guess_mapping(sheet.headers, remembered)

    def _on_file_read(self, answer: tuple[imp.Sheet, imp.Mapping]) -> None:
        sheet, mapping = answer
        self.sheet = sheet
        for name, combo in self.mapping_combos.items():
            combo.clear()
            combo.addItem(NO_COLUMN, "")
            for header in sheet.headers:
                combo.addItem(header, header)
            combo.setCurrentIndex(max(0, combo.findData(mapping.get(name, ""))))
        blank = f", {sheet.blank_rows} blank rows skipped" if sheet.blank_rows else ""
        self._say(f"{sheet.path.name}: {len(sheet.rows):,} rows{blank} ({sheet.encoding}).")
        self.preview_button.setEnabled(True)
        self.preview_button.setFocus()

    def mapping(self) -> imp.Mapping:
        return {name: str(combo.currentData()) for name, combo in self.mapping_combos.items() if combo.currentData()}

    # -- preview --------------------------------------------------------------------------------------------------

    @Slot()
    def _on_preview_clicked(self) -> None:
        self.preview()

    def preview(self) -> None:
        if self.sheet is None:
            return
        mapping = self.mapping()
        missing = imp.missing_fields(mapping)
        if missing:
            self._say("Choose the column for: " + ", ".join(missing) + ".")
            return
        source, sub = self.source_combo.currentText(), self.sub_source_combo.currentText()
        if self.chosen_radio.isChecked() and not self.assign_to():
            self._say("Tick the CREs who get the leads, or choose round robin.")
            return
        self._mapping = mapping
        self._remember(source, mapping)
        self.preview_button.setEnabled(False)
        self._say("Checking every row…")
        path, cache, models = self.sheet.path, self._cache, list(self._models)
        run_in(
            reader_pool(),
            lambda: load_preview(path, cache, mapping, source, sub, models),
            self._on_previewed,
            self._on_worker_failed,
        )

    def _on_previewed(self, answer: tuple[imp.Sheet, imp.Mapping, list[imp.PreviewRow]]) -> None:
        self.sheet, _mapping, self.rows = answer
        self.preview_button.setEnabled(True)
        counts = imp.count(self.rows)
        self.preview_model.set_rows(self.rows)
        self.counts_label.setText(
            f"{counts.valid:,} new · {counts.duplicate:,} already leads (a new source is recorded on them) · "
            f"{counts.invalid:,} not imported"
        )
        self.batches = imp.plan_batches(
            self.sheet, self.rows, source=self.source_combo.currentText(),
            sub_source=self.sub_source_combo.currentText(), assign_to=self.assign_to(),
            branch=str(self.branch_combo.currentData() or "") or None,
        )  # fmt: skip
        self.journal = imp.ImportJournal(self._journal_dir, self.sheet)
        done = len(self.batches) - len(self.journal.pending(self.batches))
        if done:
            self.import_button.setText(f"&Resume: {len(self.batches) - done} of {len(self.batches)} batches to send")
        else:
            self.import_button.setText(f"&Import {counts.to_send:,} rows")
        self.import_button.setEnabled(counts.to_send > 0)
        self.pages.setCurrentIndex(1)
        self.import_button.setFocus()
        self._say("")
        self.previewed.emit(counts)

    @Slot()
    def _on_export_clicked(self) -> None:
        from crm_desktop.ui.export import export_model_dialog

        name = self.sheet.path.stem if self.sheet is not None else "import"
        export_model_dialog(self, self.preview_proxy, f"{name} - preview")

    # -- sending --------------------------------------------------------------------------------------------------

    @Slot()
    def _on_import_clicked(self) -> None:
        self.start_import()

    @Slot()
    def _on_resume_clicked(self) -> None:
        self.start_import()

    def start_import(self) -> None:
        if self.journal is None or self._sending:
            return
        self._cancel = False
        self._sending = True
        self.pages.setCurrentIndex(2)
        self.resume_button.setVisible(False)
        self.cancel_button.setEnabled(True)
        self.cancel_button.setFocus()
        self.progress_bar.setRange(0, max(1, len(self.batches)))
        self._next_batch()

    @Slot()
    def cancel(self) -> None:
        """Stop after the batch on the line (it is answered and journalled either way)."""
        if self._sending:
            self._cancel = True
            self.cancel_button.setEnabled(False)
            self.progress_label.setText(self.progress_label.text() + " — stopping after this batch…")

    def _show_progress(self) -> None:
        assert self.journal is not None
        done = len(self.batches) - len(self.journal.pending(self.batches))
        self.progress_bar.setValue(done)
        rows = sum(len(b.row_nos) for b in self.batches if self.journal.done(b))
        total = sum(len(b.row_nos) for b in self.batches)
        self.progress_label.setText(f"Sent {rows:,} of {total:,} rows ({done} of {len(self.batches)} batches)")
        self.progress.emit(done, len(self.batches))

    def _next_batch(self) -> None:
        assert self.journal is not None
        self._show_progress()
        pending = self.journal.pending(self.batches)
        if not pending:
            self._sending = False
            self._finish()
            return
        if self._cancel:
            self._sending = False
            self._stop()
            return
        batch, journal, rpc = pending[0], self.journal, self._rpc
        run_in(
            reader_pool(),
            lambda: journal.record(batch, imp.send_batch(rpc, batch)),
            self._on_batch_sent,
            self._on_batch_failed,
        )

    def _on_batch_sent(self, _result: Any) -> None:
        self._next_batch()

    def _on_batch_failed(self, exc: BaseException) -> None:
        self._sending = False
        self._stop(f"A batch was not sent: {str(exc).strip() or type(exc).__name__}.")
        if not isinstance(exc, ApiError | ValueError | OSError):
            sys.excepthook(type(exc), exc, exc.__traceback__)
        else:
            log.warning("import batch not sent: %s", exc)

    def _stop(self, reason: str = "") -> None:
        assert self.journal is not None
        summary = imp.summarise(self.batches, self.journal, self.rows)
        self.summary = summary
        self.resume_button.setVisible(True)
        self.cancel_button.setEnabled(False)
        self.resume_button.setFocus()
        text = (
            f"{reason + ' ' if reason else ''}Stopped after {summary.batches_done} of {summary.batches_total} "
            "batches. Resume now, or open this file again later: what was sent is not sent twice."
        )
        self.progress_label.setText(text)
        if reason:
            self.failed.emit(text)
        self.stopped.emit(summary)

    def _finish(self) -> None:
        assert self.journal is not None and self.sheet is not None
        summary = imp.summarise(self.batches, self.journal, self.rows)
        self.summary = summary
        sheet, journal = self.sheet, self.journal
        run_in(
            reader_pool(),
            lambda: _save_and_forget(sheet, summary, journal),
            lambda path: self._on_summary_saved(summary, path),
            self._on_worker_failed,
        )

    def _on_summary_saved(self, summary: imp.ImportSummary, path: Path | None) -> None:
        self.rejected_file = path
        lines = [
            f"<b>{summary.created:,}</b> new leads created",
            f"<b>{summary.added_source:,}</b> already leads: this source recorded on them",
            f"<b>{summary.exact_duplicate:,}</b> already leads from this source: nothing new",
            f"<b>{len(summary.rejected):,}</b> rows not imported",
        ]
        if path is not None:
            lines.append(f"The rows not imported, with the reason, are saved in <b>{path}</b>.")
        self.summary_label.setText("<br>".join(lines))
        self.pages.setCurrentIndex(3)
        self.close_button.setFocus()
        self.imported.emit(summary)

    # -- errors ---------------------------------------------------------------------------------------------------

    def _on_worker_failed(self, exc: BaseException) -> None:
        self.preview_button.setEnabled(self.sheet is not None)
        if isinstance(exc, imp.SheetError | OSError | ValueError):
            message = str(exc)
            log.warning("import: %s", message)
            self._say(message)
            self.failed.emit(message)
            return
        sys.excepthook(type(exc), exc, exc.__traceback__)

    def _say(self, text: str) -> None:
        self.message_label.setText(text)
