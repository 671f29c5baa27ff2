"""Importing campaign files through the dialog, over the real reference server and a real synced cache: a CSV and an
XLSX with every kind of bad row give the same counts in the preview and at the server; a cancelled import resumed
later (another dialog, as after a restart) creates nothing twice; the rows not imported are saved next to the file;
the column mapping is remembered per source."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openpyxl
import psycopg
import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtTest import QTest
from serverproc import Api, ServerProcess, new_lead, phone_for

from crm_desktop.core import importer as imp
from crm_desktop.core.api import ApiClient
from crm_desktop.core.store import Store
from crm_desktop.core.sync import SyncEngine
from crm_desktop.ui.importer import ImportDialog
from crm_desktop.ui.workers import reader_pool

LOAD = 30_000


@pytest.fixture
def lead_client(server: ServerProcess, api: Api) -> Iterator[ApiClient]:
    client = ApiClient(server.url, server.anon_key)
    client.login("lead@demo.local", "demo1234")
    yield client
    reader_pool().waitForDone(30_000)
    client.close()


def sync(client: ApiClient, path: Path) -> None:
    store = Store(path)
    try:
        SyncEngine(client, path).pull(store)
    finally:
        store.close()


@pytest.fixture
def cache(api: Api, lead_client: ApiClient, tmp_path: Path) -> Path:
    """Two leads the desk already has: phone 901 from GOOGLE, phone 902 from META / Meta Know (the import's source)."""
    token = api.token("cre1@demo.local")
    for n, source, sub in ((901, "GOOGLE", "Google Know"), (902, "META", "Meta Know")):
        r = api.rpc("create_lead", token, lead=new_lead(phone_for(n), source=source, sub_source=sub))
        assert r.status_code == 200, r.text
    path = tmp_path / "lead.sqlite3"
    sync(lead_client, path)
    return path


def local(e164: str) -> str:
    return e164[3:]


# Every kind of row a campaign export brings: (name, phone as written, model, expected verdict)
ROWS: list[tuple[str, Any, str, str]] = [
    ("Asha Reddy", f"+91 {local(phone_for(1))[:5]}-{local(phone_for(1))[5:]}", "Rizta Z Duo (2.9 kWh)", "valid"),
    ("Bala Krishna", None, "", "valid"),  # Excel's scientific notation: written by write_csv / write_xlsx
    ("Chitra", "9.19877E+11", "", "invalid"),  # Excel rounded it
    ("Dev Patel", "022 2345 6789", "", "invalid"),  # landline
    ("Esha", "1800 123 4567", "", "invalid"),  # toll-free
    ("Farah", "98765", "", "invalid"),  # too short
    ("", local(phone_for(3)), "", "invalid"),  # no name
    ("12345", local(phone_for(4)), "", "invalid"),  # no letters in the name
    ("Gopal", f"p:{phone_for(1)}", "", "invalid"),  # the same number as Asha's row
    ("Hari Prasad", local(phone_for(901)), "Scooty X", "duplicate"),  # already a lead (GOOGLE): new source
    ("Indu", phone_for(902), "", "duplicate"),  # already a lead from META / Meta Know: exact duplicate
    ("José Müller", f"0{local(phone_for(5))}", "", "valid"),  # a cp1252 name, a trunk 0
    ("ఆశా", f"91{local(phone_for(6))}", "", "valid"),  # Telugu name
]


def _excel(n: int) -> str:
    """The 12-digit 91… number as Excel writes it in scientific notation with every digit kept."""
    digits = "91" + local(phone_for(n))
    return f"{digits[0]}.{digits[1:]}E+11"


def write_csv(path: Path, encoding: str) -> Path:
    rows = [row for row in ROWS if encoding == "utf-8-sig" or row[0] != "ఆశా"]  # cp1252 has no Telugu
    lines = ["full_name,phone_number,Vehicle,created_time"]
    for i, (name, phone, model, _verdict) in enumerate(rows):
        if i == 1:
            phone = _excel(2)
        lines.append(f"{name},{phone},{model},2026-11-29T10:1{i % 10}:00+0530")
        if i == 3:
            lines += ["", ",,,"]  # blank rows
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode(encoding))
    return path


def write_xlsx(path: Path) -> Path:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["Customer Name", "Mobile No.", "Model", "Lead Date"])
    for i, (name, phone, model, _verdict) in enumerate(ROWS):
        value: Any = phone
        if i == 1:
            value = float("91" + local(phone_for(2)))  # a number cell: Excel's own 9.19…E+11
        sheet.append([name or None, value, model or None, None])
        if i == 3:
            sheet.append([None, None, None, None])
            sheet.append(["", " ", None, None])
    book.save(path)
    return path


def open_dialog(qtbot: Any, lead_client: ApiClient, cache: Path, tmp_path: Path, settings: QSettings) -> ImportDialog:
    catalog = lead_client.rpc("catalog", {})
    dialog = ImportDialog(lead_client.rpc, cache, catalog, tmp_path / "journal", settings)
    qtbot.addWidget(dialog)
    dialog.show()
    return dialog


def read_into(qtbot: Any, dialog: ImportDialog, path: Path) -> None:
    dialog.set_source("META", "Meta Know")
    dialog.open_file(path)
    qtbot.waitUntil(lambda: dialog.preview_button.isEnabled(), timeout=LOAD)


def lead_count(db: psycopg.Connection[Any]) -> int:
    return int(db.execute("select count(*) from leads").fetchone()[0])


@pytest.mark.parametrize("kind", ["csv-utf8-bom", "csv-cp1252", "xlsx"])
def test_preview_counts_equal_the_servers_counts(qtbot, server, db, lead_client, cache, tmp_path, kind):
    if kind == "xlsx":
        path, expected_rows = write_xlsx(tmp_path / "google.xlsx"), ROWS
    else:
        encoding = "utf-8-sig" if kind == "csv-utf8-bom" else "cp1252"
        path = write_csv(tmp_path / "meta leads.csv", encoding)
        expected_rows = [r for r in ROWS if encoding == "utf-8-sig" or r[0] != "ఆశా"]
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    dialog = open_dialog(qtbot, lead_client, cache, tmp_path, settings)
    read_into(qtbot, dialog, path)
    assert dialog.sheet is not None and dialog.sheet.blank_rows == 2
    dialog.choose_cres(["cre2@demo.local"])
    dialog.branch_combo.setCurrentIndex(dialog.branch_combo.findData("ATTAPUR"))

    with qtbot.waitSignal(dialog.previewed, timeout=LOAD) as previewed:
        QTest.keyClick(dialog.preview_button, Qt.Key.Key_Return)
    counts: imp.PreviewCounts = previewed.args[0]
    assert [r.verdict for r in dialog.rows] == [v for _n, _p, _m, v in expected_rows]
    assert counts.duplicate == 2 and counts.invalid == 7
    assert dialog.preview_model.rowCount() == len(expected_rows)
    exact = sum(1 for r in dialog.rows if r.exact)
    before = lead_count(db)

    with qtbot.waitSignal(dialog.imported, timeout=LOAD) as done:
        QTest.keyClick(dialog.import_button, Qt.Key.Key_Return)
    summary: imp.ImportSummary = done.args[0]
    assert summary.created == counts.valid == lead_count(db) - before
    assert summary.added_source + summary.exact_duplicate == counts.duplicate
    assert summary.exact_duplicate == exact == 1
    assert len(summary.rejected) == counts.invalid  # the server rejected none of what the preview let through
    assert dialog.pages.currentIndex() == 3 and f"{counts.valid}</b> new leads" in dialog.summary_label.text()

    # Who got them: the chosen CRE; no call yet (the CRE's "Fresh" leads); the export's name and model kept.
    owners = db.execute(
        "select distinct p.email from leads l join profiles p on p.id = l.cre_id where l.phone = any(%s)",
        ([r.e164 for r in dialog.rows if r.verdict == "valid"],),
    ).fetchall()
    assert owners == [("cre2@demo.local",)]
    asha = db.execute(
        "select customer_name, model_interested, branch from leads where phone = %s", (phone_for(1),)
    ).fetchone()
    assert asha == ("Asha Reddy", "Rizta Z Duo (2.9 kWh)", "ATTAPUR")

    # The rows not imported, next to the file, with the reason and the row as it was.
    assert dialog.rejected_file == imp.rejected_path(dialog.sheet) and dialog.rejected_file.parent == path.parent
    saved = imp.read_sheet(dialog.rejected_file)
    assert saved.headers[:2] == ("Row", "Reason") and len(saved.rows) == counts.invalid
    reasons = {cells[2]: cells[1] for _n, cells in saved.rows}
    assert "Excel rounded" in reasons["Chitra"] and "landline" in reasons["Dev Patel"]


def test_a_cancelled_import_resumed_later_creates_nothing_twice(qtbot, server, db, lead_client, cache, tmp_path):
    path = tmp_path / "big.csv"
    path.write_text(
        "name,mobile\n" + "".join(f"Lead {n},{local(phone_for(1000 + n))}\n" for n in range(2500)), encoding="utf-8"
    )
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    before = lead_count(db)

    dialog = open_dialog(qtbot, lead_client, cache, tmp_path, settings)
    read_into(qtbot, dialog, path)
    with qtbot.waitSignal(dialog.previewed, timeout=LOAD):
        dialog.preview()
    assert len(dialog.batches) == 3 and dialog.import_button.text() == "&Import 2,500 rows"

    def cancel_after_first(done: int, _total: int) -> None:
        if done == 1:
            dialog.cancel()

    dialog.progress.connect(cancel_after_first)
    with qtbot.waitSignal(dialog.stopped, timeout=LOAD) as stopped:
        QTest.keyClick(dialog.import_button, Qt.Key.Key_Return)
    assert stopped.args[0].batches_done == 1 and lead_count(db) - before == 1000
    assert dialog.resume_button.isVisible() and "Stopped after 1 of 3" in dialog.progress_label.text()
    dialog.close()

    # Later: the same file in a new dialog (as after a restart). The preview offers to resume the two left.
    dialog = open_dialog(qtbot, lead_client, cache, tmp_path, settings)
    read_into(qtbot, dialog, path)
    with qtbot.waitSignal(dialog.previewed, timeout=LOAD):
        dialog.preview()
    assert dialog.import_button.text() == "&Resume: 2 of 3 batches to send"
    with qtbot.waitSignal(dialog.imported, timeout=LOAD) as done:
        qtbot.mouseClick(dialog.import_button, Qt.MouseButton.LeftButton)
    summary = done.args[0]
    assert (summary.created, summary.batches_done, summary.replayed) == (2500, 3, 0)
    assert lead_count(db) - before == 2500

    # Even with the journal gone (finished imports forget it), the same file again replays: nothing new at all.
    assert not list((tmp_path / "journal").glob("*.json"))
    dialog = open_dialog(qtbot, lead_client, cache, tmp_path, settings)
    read_into(qtbot, dialog, path)
    with qtbot.waitSignal(dialog.previewed, timeout=LOAD):
        dialog.preview()
    with qtbot.waitSignal(dialog.imported, timeout=LOAD) as again:
        dialog.start_import()
    assert (again.args[0].created, again.args[0].replayed) == (2500, 3)  # the first answers, replayed
    assert lead_count(db) - before == 2500


def test_the_column_mapping_is_remembered_per_source(qtbot, server, lead_client, cache, tmp_path):
    path = tmp_path / "affiliate.csv"
    path.write_text(f"Cust,Tel,Misc\nRavi Kumar,{local(phone_for(7))},x\n", encoding="utf-8")
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    dialog = open_dialog(qtbot, lead_client, cache, tmp_path, settings)
    read_into(qtbot, dialog, path)
    assert dialog.mapping() == {}  # nothing in these headers says what they are
    dialog.preview()
    assert dialog.message_label.text() == "Choose the column for: Customer name, Mobile number."
    dialog.mapping_combos["customer_name"].setCurrentText("Cust")
    dialog.mapping_combos["phone"].setCurrentText("Tel")
    with qtbot.waitSignal(dialog.previewed, timeout=LOAD) as previewed:
        dialog.preview()
    assert previewed.args[0] == imp.PreviewCounts(valid=1, duplicate=0, invalid=0)
    dialog.close()

    again = open_dialog(qtbot, lead_client, cache, tmp_path, settings)
    read_into(qtbot, again, path)
    assert again.mapping() == {"customer_name": "Cust", "phone": "Tel"}
    again.set_source("GOOGLE", "Google Know")  # another source has its own (none yet)
    again.open_file(path)
    qtbot.waitUntil(lambda: again.message_label.text().startswith("affiliate.csv"), timeout=LOAD)
    assert again.mapping() == {}


@pytest.mark.expected_log_warnings  # the unreadable file is logged
def test_a_file_that_is_not_a_spreadsheet_says_so_and_nothing_is_sent(qtbot, server, lead_client, cache, tmp_path):
    fake = tmp_path / "leads.xlsx"
    fake.write_text("full_name,phone\nRavi,9876543210\n", encoding="utf-8")  # a CSV saved with the wrong name
    dialog = open_dialog(
        qtbot, lead_client, cache, tmp_path, QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    )
    with qtbot.waitSignal(dialog.failed, timeout=LOAD) as failed:
        dialog.open_file(fake)
    assert "is not an Excel workbook" in failed.args[0] and dialog.message_label.text() == failed.args[0]
    assert not dialog.preview_button.isEnabled() and dialog.pages.currentIndex() == 0
