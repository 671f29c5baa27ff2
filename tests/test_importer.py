"""The campaign importer's core (Qt-free): reading what real exports look like, the verdicts, the batches and their
refs, the journal, and the table export reading back."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import openpyxl
import pytest

from crm_desktop.core import importer as imp
from crm_desktop.core.export import write_table
from crm_desktop.core.store import Store


def write(path: Path, text: str, encoding: str) -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def no_cache(_phones: object) -> dict[str, tuple[str, list[tuple[str, str]]]]:
    return {}


@pytest.mark.parametrize(
    ("encoding", "delimiter"), [("utf-8-sig", ","), ("utf-8", ";"), ("cp1252", ","), ("utf-8", "\t"), ("utf-16", ",")]
)
def test_csv_in_any_of_the_encodings_and_delimiters_exports_use(tmp_path, encoding, delimiter):
    text = delimiter.join(["Full Name", "Phone Number", "Vehicle"]) + "\r\n"
    text += delimiter.join(["José Müller", "+91 98765-43210", "Rizta"]) + "\r\n\r\n"
    text += delimiter.join(["", "", ""]) + "\r\n"
    text += delimiter.join(["Anil", "9876543211", ""]) + "\r\n"
    sheet = imp.read_sheet(write(tmp_path / "leads.csv", text, encoding))
    assert sheet.headers == ("Full Name", "Phone Number", "Vehicle")
    assert [cells[0] for _n, cells in sheet.rows] == ["José Müller", "Anil"]
    assert [n for n, _c in sheet.rows] == [2, 5]  # the file's own row numbers, blank rows skipped
    assert sheet.blank_rows == 2
    assert sheet.encoding == encoding if encoding != "utf-8-sig" else sheet.encoding == "utf-8-sig"


def test_a_cp1252_file_is_not_read_as_mojibake(tmp_path):
    sheet = imp.read_sheet(write(tmp_path / "a.csv", "name,mobile\nCafé Owner – Ravi,9876543210\n", "cp1252"))
    assert sheet.encoding == "cp1252" and sheet.rows[0][1][0] == "Café Owner – Ravi"


@pytest.mark.parametrize(
    ("text", "digits", "refused"),
    [
        ("9.19876543210E+11", "919876543210", False),
        ("9,19876543210E+11", "919876543210", False),  # a comma-decimal locale
        ("9.876543210E+09", "9876543210", False),
        ("9.87654321E+09", None, True),  # 9 digits written for a 10-digit number: the last one is a guess
        ("9.19877E+11", None, True),  # Excel kept 6 digits: the number is gone
        ("+91 98765-43210", "+91 98765-43210", False),  # not scientific: left alone for the normaliser
    ],
)
def test_excel_scientific_notation_is_undone_only_when_no_digit_was_lost(text, digits, refused):
    out, reason = imp.unmangle_number(text)
    assert (reason is not None) == refused
    if not refused:
        assert out == digits


def test_mapping_guesses_odd_headers_and_prefers_the_remembered_one():
    meta = ("id", "created_time", "ad_name", "campaign_name", "full_name", "phone_number", "which_model_?")
    assert imp.guess_mapping(meta) == {
        "customer_name": "full_name", "phone": "phone_number", "remark": "ad_name", "received_at": "created_time",
        "model_interested": "which_model_?",
    }  # fmt: skip
    affiliate = ("S.No", "Customer Name", "Mobile No. (WhatsApp)", "Model", "Lead Date")
    guessed = imp.guess_mapping(affiliate)
    assert guessed["phone"] == "Mobile No. (WhatsApp)" and guessed["model_interested"] == "Model"
    assert imp.guess_mapping(("Cust", "Tel"), {"customer_name": "Cust", "phone": "Tel", "remark": "gone"}) == {
        "customer_name": "Cust", "phone": "Tel",
    }  # fmt: skip
    assert imp.missing_fields({"customer_name": "x"}) == ["Mobile number"]


def sheet_of(tmp_path: Path, rows: list[list[str]]) -> imp.Sheet:
    with (tmp_path / "f.csv").open("w", encoding="utf-8", newline="") as out:
        out.write("name,phone,model,remark\n")
        for row in rows:
            out.write(",".join(row) + "\n")
    return imp.read_sheet(tmp_path / "f.csv")


def test_every_row_gets_a_verdict_with_the_reason(tmp_path):
    sheet = sheet_of(
        tmp_path,
        [
            ["Asha", "9.19876543210E+11", "rizta", "hot"],  # valid; model matched case-insensitively
            ["Bala", "+91 98765-43211", "Scooty", ""],  # valid; an unknown model goes to the remark
            ["Chitra", "9.19877E+11", "", ""],  # Excel rounded it
            ["Dev", "022 2345 6789", "", ""],  # landline
            ["Esha", "1800 123 4567", "", ""],  # toll-free
            ["Farah", "98765", "", ""],  # too short
            ["", "9876543212", "", ""],  # no name
            ["12345", "9876543213", "", ""],  # a name with no letters
            ["Gopal", "p:+919876543211", "", ""],  # the same number as Bala's row
            ["Hari", "9876543214", "", ""],  # already a lead (cache)
            ["Indu", "9876543215", "", ""],  # already a lead from this very source
        ],
    )
    cached = {"+919876543214": ("GK-3214-0001", [("GOOGLE", "Google Know")]),
              "+919876543215": ("MK-3215-0001", [("META", "Meta Know")])}  # fmt: skip
    rows = imp.preview(
        sheet, imp.guess_mapping(sheet.headers), lambda phones: {p: cached[p] for p in phones if p in cached},
        source="META", sub_source="Meta Know", models=["Rizta", "450X"],
    )  # fmt: skip
    verdicts = [(r.customer_name, r.verdict) for r in rows]
    assert [v for _n, v in verdicts] == ["valid", "valid"] + ["invalid"] * 7 + ["duplicate", "duplicate"]
    by_name = {r.customer_name: r for r in rows}
    assert by_name["Asha"].e164 == "+919876543210" and by_name["Asha"].model_interested == "Rizta"
    assert by_name["Bala"].model_interested is None and by_name["Bala"].remark == "Model: Scooty"
    assert "Excel rounded" in by_name["Chitra"].reason
    assert "landline" in by_name["Dev"].reason
    assert "The same number as row 3" in by_name["Gopal"].reason
    assert by_name[""].reason == "No customer name." and by_name["12345"].reason == "The name has no letters."
    assert by_name["Hari"].lead_uid == "GK-3214-0001" and not by_name["Hari"].exact
    assert by_name["Indu"].exact
    assert imp.count(rows) == imp.PreviewCounts(valid=2, duplicate=2, invalid=7)


def test_batches_have_refs_derived_from_the_file_and_the_choices(tmp_path):
    sheet = sheet_of(tmp_path, [[f"Lead {n}", f"98765{n:05d}", "", ""] for n in range(2500)])
    rows = imp.preview(sheet, imp.guess_mapping(sheet.headers), no_cache)
    batches = imp.plan_batches(sheet, rows, source="META", sub_source="Meta Know")
    assert [len(b.row_nos) for b in batches] == [1000, 1000, 500]
    assert batches[1].row_nos[0] == 1002  # file row numbers: header is row 1
    again = imp.plan_batches(imp.read_sheet(sheet.path), rows, source="META", sub_source="Meta Know")
    assert [b.client_ref for b in again] == [b.client_ref for b in batches]  # a resumed import reuses them
    other = imp.plan_batches(sheet, rows, source="META", sub_source="Meta Know", assign_to=["cre2@demo.local"])
    assert not {b.client_ref for b in other} & {b.client_ref for b in batches}  # other choices, other refs
    assert len({b.client_ref for b in batches}) == 3
    with pytest.raises(ValueError):
        imp.plan_batches(sheet, rows, source="META", sub_source="Meta Know", size=1001)


def test_the_journal_survives_a_restart_and_a_damaged_one_only_costs_replays(tmp_path):
    sheet = sheet_of(tmp_path, [["A", "9876543210", "", ""], ["B", "9876543211", "", ""]])
    rows = imp.preview(sheet, imp.guess_mapping(sheet.headers), no_cache)
    batches = imp.plan_batches(sheet, rows, source="META", sub_source="Meta Know", size=1)
    journal = imp.ImportJournal(tmp_path / "j", sheet)
    journal.record(batches[0], {"created": 1, "added_source": 0, "exact_duplicate": 0, "rejected": []})
    reopened = imp.ImportJournal(tmp_path / "j", sheet)
    assert reopened.pending(batches) == [batches[1]]
    reopened.record(batches[1], {"created": 0, "added_source": 0, "exact_duplicate": 0,
                                 "rejected": [{"row": 0, "code": "x", "message": "No."}]})  # fmt: skip
    summary = imp.summarise(batches, reopened, rows)
    assert (summary.created, summary.complete, summary.rejected) == (1, True, [(3, "No.")])
    reopened.path.write_text("{not json", encoding="utf-8")
    assert imp.ImportJournal(tmp_path / "j", sheet).pending(batches) == batches
    reopened.forget()
    assert not reopened.path.exists()


def test_cached_sources_reads_the_cache_file(tmp_path):
    store = Store(tmp_path / "c.sqlite3")
    cols = ["change_id", "lead_id", "phone", "uid", "customer_name", "sources", "lead_status", "final_status",
            "cre_name", "ps_name", "branch", "created_at", "follow_up_date"]  # fmt: skip
    store.apply_changes(cols, [[1, 7, "+919876543210", "GK-3210-0001", "A", [{"source": "GOOGLE",
                        "sub_source": "Google Know", "at": "2026-11-28T10:00:00+00:00"}], None, "Pending", "Asha",
                        None, None, "2026-11-28T10:00:00+00:00", None]], 1)  # fmt: skip
    store.close()
    conn = sqlite3.connect(tmp_path / "c.sqlite3")
    try:
        found = imp.cached_sources(conn, ["+919876543210", "+919876543211"])
    finally:
        conn.close()
    assert found == {"+919876543210": ("GK-3210-0001", [("GOOGLE", "Google Know")])}


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_export_round_trips_text_numbers_and_names(tmp_path, suffix):
    rows = [["GK-3210-0001", "ఆశా రెడ్డి", "+91 98765 43210", 12], ["MK-1", "José", "+919876543211", 0]]
    path = tmp_path / f"out{suffix}"
    assert write_table(path, ["UID", "Name", "Mobile", "Calls"], rows, title="Overdue / Asha") == 2
    sheet = imp.read_sheet(path)
    assert sheet.headers == ("UID", "Name", "Mobile", "Calls")
    assert [list(c) for _n, c in sheet.rows] == [[str(v) for v in r] for r in rows]
    if suffix == ".xlsx":
        ws = openpyxl.load_workbook(path).worksheets[0]
        assert ws.title == "Overdue - Asha"
        assert ws["C2"].data_type == "s" and ws["D2"].data_type == "n"  # the phone stays text, the count a number
    with pytest.raises(ValueError):
        write_table(tmp_path / "out.txt", ["a"], [])
    assert not list(tmp_path.glob(".*.part"))


def test_a_batch_stays_under_the_servers_body_limit(tmp_path):
    """1,000 rows with long remarks (and names in Telugu, which JSON escapes to six bytes a letter) are ~400 KB: a
    batch is also cut by size, here a proxy's 64 KiB; the default limit (1 MB) keeps them in one batch."""
    import json

    rows = [[f"ఆశా రెడ్డి {n}", f"98765{n:05d}", "", "x" * 300] for n in range(1000)]
    sheet = sheet_of(tmp_path, rows)
    preview = imp.preview(sheet, imp.guess_mapping(sheet.headers), no_cache)
    assert len(imp.plan_batches(sheet, preview, source="META", sub_source="Meta Know")) == 1
    batches = imp.plan_batches(sheet, preview, source="META", sub_source="Meta Know", max_bytes=60_000)
    assert len(batches) > 1 and sum(len(b.row_nos) for b in batches) == 1000
    assert all(len(json.dumps({"batch": b.payload})) < 64 * 1024 for b in batches)
    assert [n for b in batches for n in b.row_nos] == [n for n, _c in sheet.rows]  # file order kept
