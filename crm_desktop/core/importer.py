"""Importing a campaign export (Meta lead ads, Google, an affiliate's sheet) as leads, Qt-free.

The steps, each a plain function so the dialog, the tests and the benchmark run the same code:
1. `read_sheet(path)`: a CSV (any of UTF-8 with or without BOM, cp1252; comma, semicolon or tab) or an XLSX (first
   sheet) as header + text rows, blank rows dropped but file row numbers kept (the team lead looks rows up by them).
2. `guess_mapping(headers)`: which column holds the name, the phone, … from the odd names exports use; the dialog
   lets the team lead correct it and remembers it per source.
3. `preview(...)`: every row with its phone verdict from the desk's own normaliser (`core.phone`): valid (a new
   number), duplicate (already a lead in the cache) or invalid with the reason. Excel's scientific notation
   (9.19876543210E+11) is read back into digits when no digit was lost, and refused with that reason when one was.
4. `plan_batches(...)`: the rows to send in batches of at most 1,000, each with a client_ref derived from the file's
   content and the choices, so importing the same file with the same choices again (a resumed import) reuses the
   refs and the server answers the batches already done with their first answer instead of creating twice.
5. `ImportJournal`: what was sent and answered, on disk after every batch, so an import cancelled or cut off resumes.
6. `summarise(...)` and `write_rejected(...)`: the server's counts, and every row not imported, with the reason,
   saved next to the file."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import sqlite3
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

from crm_desktop.core import phone as phones
from crm_desktop.core.drill import lead_table

DESK_TZ = ZoneInfo("Asia/Kolkata")
BATCH_ROWS = 1000  # import_leads takes at most 1,000 rows a call
# ...and at this many bytes of JSON: 1,000 rows with remarks are 100-150 KB, which PostgREST and the reference server
# (4 MiB) take; a row of 2,000-character remarks is not typical, and a proxy in front of the server may allow less.
BATCH_BYTES = 1_000_000
NAME_MAX, MODEL_MAX, REMARK_MAX = 120, 80, 2000  # the server's bounds (create_lead's _text_field lengths)

FIELDS: tuple[tuple[str, str, bool], ...] = (
    ("customer_name", "Customer name", True),
    ("phone", "Mobile number", True),
    ("model_interested", "Model", False),
    ("remark", "Remark", False),
    ("received_at", "Received at", False),
)
Field = str
Mapping = dict[Field, str]  # field -> header text as in the file (header text, so it can be remembered per source)

# Header words seen in real exports, folded (lower case, letters and digits only). Order matters within a field:
# the first header that matches wins.
_SYNONYMS: dict[Field, tuple[str, ...]] = {
    "customer_name": (
        "fullname", "name", "customername", "leadname", "firstname", "username", "custname", "contactname",
        "customer", "clientname",
    ),
    "phone": (
        "phonenumber", "phone", "mobile", "mobilenumber", "mobileno", "userphone", "contactnumber", "contactno",
        "contact", "phoneno", "whatsappnumber", "cellphone", "number", "mob",
    ),
    "model_interested": ("model", "modelinterested", "vehicle", "vehiclemodel", "product", "variant", "interestedin"),
    "remark": ("remark", "remarks", "comment", "comments", "notes", "note", "message", "adname", "campaignname"),
    "received_at": (
        "createdtime", "createdat", "receivedat", "date", "leaddate", "submittedat", "timestamp", "submissiondate",
        "datetime", "created",
    ),
}  # fmt: skip

Verdict = Literal["valid", "duplicate", "invalid"]


class SheetError(ValueError):
    """The file cannot be read as a table: says why in the team lead's words."""


@dataclass(frozen=True, slots=True)
class Sheet:
    """A file's header and its non-blank rows as text, with their row numbers in the file (1 = the header's row
    for a file whose first line is the header). `encoding` is what a CSV was read as ("xlsx" for a workbook)."""

    path: Path
    headers: tuple[str, ...]
    rows: tuple[tuple[int, tuple[str, ...]], ...]
    encoding: str
    sha256: str
    blank_rows: int = 0


@dataclass(frozen=True, slots=True)
class PreviewRow:
    """One data row as it will be imported, and the phone verdict: `reason` says why an invalid row is left out;
    `lead_uid` names the cached lead a duplicate belongs to."""

    row_no: int
    customer_name: str
    phone_raw: str
    e164: str | None
    verdict: Verdict
    reason: str = ""
    lead_uid: str = ""
    exact: bool = False  # a duplicate that already has this source and sub-source (server: exact_duplicate)
    model_interested: str | None = None
    remark: str | None = None
    received_at: str | None = None


@dataclass(frozen=True, slots=True)
class PreviewCounts:
    valid: int
    duplicate: int
    invalid: int

    @property
    def to_send(self) -> int:
        return self.valid + self.duplicate


@dataclass(frozen=True, slots=True)
class Batch:
    index: int
    client_ref: str
    row_nos: tuple[int, ...]  # file row number of each row in `payload["rows"]`, same order
    payload: dict[str, Any]


@dataclass
class ImportSummary:
    """What the server did with the whole file, plus the rows never sent (invalid in the preview)."""

    created: int = 0
    added_source: int = 0
    exact_duplicate: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (file row number, reason), server and local
    batches_done: int = 0
    batches_total: int = 0
    replayed: int = 0

    @property
    def complete(self) -> bool:
        return self.batches_done == self.batches_total


# -- reading ------------------------------------------------------------------------------------------------------


def _fold_header(text: str) -> str:
    return re.sub(r"[^0-9a-z]", "", text.casefold())


def _decode(data: bytes) -> tuple[str, str]:
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8"), "utf-8-sig"
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16"), "utf-16"
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        # Excel on Windows saves "CSV" in the machine's ANSI code page: cp1252 for English Windows. cp1252 leaves 5
        # bytes undefined; latin-1 then keeps them readable rather than failing the whole file.
        try:
            return data.decode("cp1252"), "cp1252"
        except UnicodeDecodeError:
            return data.decode("latin-1"), "latin-1"


def _cell_text(value: Any) -> str:
    """A cell as the text a person sees, with a number Excel stored as a float given back as its digits."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        if value.is_integer():
            return str(int(value))
        return repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, time):
        return value.isoformat()
    return str(value).strip()


def _read_xlsx(path: Path) -> list[list[str]]:
    from python_calamine import CalamineWorkbook  # Rust reader: a 10k-row sheet in a fraction of openpyxl's time

    try:
        sheet = CalamineWorkbook.from_path(str(path)).get_sheet_by_index(0)
        return [[_cell_text(v) for v in row] for row in sheet.to_python(skip_empty_area=False)]
    except Exception as exc:  # calamine raises its own error types for a damaged or foreign file
        raise SheetError(f"{path.name} is not a readable Excel workbook ({exc}).") from exc


def _read_csv(data: bytes) -> tuple[list[list[str]], str]:
    text, encoding = _decode(data)
    # The delimiter is the one the header line uses most (csv.Sniffer guesses wrong on exports with blank rows and
    # empty cells): comma, semicolon (Excel in comma-decimal locales), tab, or a pipe.
    header = next((line for line in text.splitlines() if line.strip()), "")
    delimiter = max(",;\t|", key=header.count) if header else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    return [[c.strip() for c in row] for row in reader], encoding


def read_sheet(path: Path | str) -> Sheet:
    """The file as a table. The header is the first non-blank row; blank rows are dropped (and counted)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SheetError(f"{path.name} could not be opened: {exc.strerror or exc}.") from exc
    digest = hashlib.sha256(data).hexdigest()
    if data[:4] == b"PK\x03\x04":
        table, encoding = _read_xlsx(path), "xlsx"
    elif path.suffix.lower() in (".xlsx", ".xlsm", ".xls"):
        raise SheetError(f"{path.name} is not an Excel workbook (.xlsx). Save it as .xlsx or CSV and open it again.")
    else:
        table, encoding = _read_csv(data)
    header: tuple[str, ...] | None = None
    rows: list[tuple[int, tuple[str, ...]]] = []
    blank = 0
    for number, cells in enumerate(table, start=1):
        if not any(c.strip() for c in cells):
            if header is not None:
                blank += 1
            continue
        if header is None:
            header = tuple(c.strip() for c in cells)
            continue
        rows.append((number, tuple(cells)))
    if header is None:
        raise SheetError(f"{path.name} is empty.")
    return Sheet(path, header, tuple(rows), encoding, digest, blank)


# -- mapping ------------------------------------------------------------------------------------------------------


def guess_mapping(headers: Sequence[str], remembered: Mapping | None = None) -> Mapping:
    """Field -> header. A remembered mapping (this source's last one) wins where its headers are in this file."""
    out: Mapping = {}
    present = set(headers)
    if remembered:
        out = {f: h for f, h in remembered.items() if h in present}
    folded = {h: _fold_header(h) for h in headers}
    taken = set(out.values())
    for name, _label, _required in FIELDS:
        if name in out:
            continue
        for word in _SYNONYMS[name]:
            hit = next((h for h in headers if folded[h] == word and h not in taken), None)
            if hit is None:  # "Mobile No. (WhatsApp)" still names the mobile
                hit = next((h for h in headers if word in folded[h] and len(word) >= 5 and h not in taken), None)
            if hit is not None:
                out[name] = hit
                taken.add(hit)
                break
    return out


def missing_fields(mapping: Mapping) -> list[str]:
    """Labels of the required fields that have no column yet (the dialog says so before the preview)."""
    return [label for name, label, required in FIELDS if required and not mapping.get(name)]


# -- preview ------------------------------------------------------------------------------------------------------

# What the server's _has_visible_letters() strips before asking whether anything is left: a "name" of digits and
# punctuation ("123", "--") is refused there, so it is invalid in the preview too.
_NOT_LETTERS = re.compile("[\\s!-@\\[-`{-~\u00a0\u00ad\u2000-\u206f\u3000\ufeff\ufe00-\ufe0f]")
_SCIENTIFIC = re.compile(r"^\s*[+]?(\d)(?:[.,](\d+))?[eE][+]?(\d{1,2})\s*$")


def unmangle_number(text: str) -> tuple[str, str | None]:
    """Excel's scientific notation for a long number ("9.19876543210E+11") as its digits, or (text, reason) when
    Excel kept fewer digits than the number had (9.19877E+11): the lost digits cannot be guessed."""
    m = _SCIENTIFIC.match(text)
    if m is None:
        return text, None
    lead, frac, exp = m.group(1), (m.group(2) or ""), int(m.group(3))
    try:
        value = Decimal(f"{lead}.{frac or '0'}E{exp}")
    except InvalidOperation:  # pragma: no cover - the pattern only lets well-formed numbers through
        return text, None
    if len(lead + frac) < exp + 1:
        # Fewer digits written than the number has: Excel rounded it (9.19877E+11), the rest cannot be guessed.
        return text, f"Excel rounded this number ({text.strip()}); the digits are lost. Ask for the file as text."
    return str(int(value)), None


def _parse_received(text: str) -> str | None:
    """A timestamp in the export as ISO 8601 with an offset (desk time when it has none); None when unreadable
    (the lead is still imported, with the server's receive time)."""
    text = text.strip()
    if not text:
        return None
    candidate = text.replace("Z", "+00:00")
    moment: datetime | None
    try:
        moment = datetime.fromisoformat(candidate)
    except ValueError:
        moment = None
        for fmt in ("%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M", "%d/%m/%Y", "%d-%m-%Y %H:%M", "%d-%m-%Y", "%m/%d/%Y %H:%M"):
            try:
                moment = datetime.strptime(text, fmt)
                break
            except ValueError:
                continue
        if moment is None:
            return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=DESK_TZ)
    return moment.isoformat()


def cached_sources(conn: sqlite3.Connection, e164s: Iterable[str]) -> dict[str, tuple[str, list[tuple[str, str]]]]:
    """Phone -> (UID, [(source, sub_source), …]) for the numbers already in the lead cache; one statement."""
    wanted = json.dumps(sorted(set(e164s)))
    table = lead_table(conn)
    sql = f"SELECT phone, uid, sources FROM {table} WHERE phone IN (SELECT value FROM json_each(:phones))"
    out: dict[str, tuple[str, list[tuple[str, str]]]] = {}
    for number, uid, sources in conn.execute(sql, {"phones": wanted}):
        try:
            items = [s for s in json.loads(sources) if isinstance(s, dict)]
            seen = [(str(s.get("source")), str(s.get("sub_source"))) for s in items]
        except (TypeError, ValueError):
            seen = []
        out[number] = (uid, seen)
    return out


def preview(
    sheet: Sheet,
    mapping: Mapping,
    known: Callable[[Iterable[str]], dict[str, tuple[str, list[tuple[str, str]]]]],
    *,
    source: str = "",
    sub_source: str = "",
    models: Iterable[str] = (),
) -> list[PreviewRow]:
    """Every data row with its verdict. `known` answers which numbers are cached leads (`cached_sources` over the
    cache). A model the catalogue does not know goes into the remark instead (the server refuses unknown models)."""
    at = {name: sheet.headers.index(h) for name, h in mapping.items() if h in sheet.headers}
    catalogue = {m.casefold(): m for m in models}

    def cell(cells: tuple[str, ...], name: str) -> str:
        i = at.get(name)
        return cells[i].strip() if i is not None and i < len(cells) else ""

    parsed: list[tuple[int, str, str, str | None, str]] = []  # row, name, raw phone, e164, reason
    for row_no, cells in sheet.rows:
        name, raw = cell(cells, "customer_name"), cell(cells, "phone")
        digits, reason = unmangle_number(raw)
        e164: str | None = None
        if reason is None:
            try:
                e164 = phones.normalize(digits)
            except phones.InvalidPhone as exc:
                reason = str(exc)
        if e164 is not None and not name:
            reason, e164 = "No customer name.", None
        elif e164 is not None and not _NOT_LETTERS.sub("", name):
            reason, e164 = "The name has no letters.", None
        elif e164 is not None and len(name) > NAME_MAX:
            reason, e164 = f"The name is longer than {NAME_MAX} characters.", None
        parsed.append((row_no, name, raw, e164, reason or ""))

    cached = known(e for _r, _n, _p, e, _x in parsed if e is not None)
    first_row: dict[str, int] = {}
    out: list[PreviewRow] = []
    for (row_no, name, raw, e164, reason), (_n, cells) in zip(parsed, sheet.rows, strict=True):
        if e164 is None:
            out.append(PreviewRow(row_no, name, raw, None, "invalid", reason or "No mobile number."))
            continue
        if e164 in first_row:
            why = f"The same number as row {first_row[e164]} of this file."
            out.append(PreviewRow(row_no, name, raw, e164, "invalid", why))
            continue
        first_row[e164] = row_no
        model_text = cell(cells, "model_interested")
        remark = cell(cells, "remark") or None
        model = catalogue.get(model_text.casefold()) if model_text else None
        if model_text and model is None:
            remark = f"{remark} · Model: {model_text}" if remark else f"Model: {model_text}"
        if remark and len(remark) > REMARK_MAX:
            remark = remark[: REMARK_MAX - 1] + "…"
        received = _parse_received(cell(cells, "received_at"))
        hit = cached.get(e164)
        if hit is None:
            out.append(PreviewRow(row_no, name, raw, e164, "valid", "", "", False, model, remark, received))
        else:
            uid, seen = hit
            exact = (source, sub_source) in seen
            why = f"Already a lead: {uid}" + (" (this source too)" if exact else "")
            out.append(PreviewRow(row_no, name, raw, e164, "duplicate", why, uid, exact, model, remark, received))
    return out


def count(rows: Sequence[PreviewRow]) -> PreviewCounts:
    valid = sum(1 for r in rows if r.verdict == "valid")
    duplicate = sum(1 for r in rows if r.verdict == "duplicate")
    return PreviewCounts(valid, duplicate, len(rows) - valid - duplicate)


# -- sending ------------------------------------------------------------------------------------------------------

# uuid5 namespace of import batches: a fixed, random UUID of this project (never change it: resumed imports of files
# chosen before the change would get new refs).
_BATCH_NAMESPACE = uuid.UUID("6f1c9c52-3f7e-4a53-9a1d-8f0e7e4f2b61")


def plan_batches(
    sheet: Sheet,
    rows: Sequence[PreviewRow],
    *,
    source: str,
    sub_source: str,
    branch: str | None = None,
    assign_to: Sequence[str] | None = None,
    size: int = BATCH_ROWS,
    max_bytes: int = BATCH_BYTES,
) -> list[Batch]:
    """The valid and duplicate rows in batches of at most `size` (≤ 1,000) rows and about `max_bytes` of JSON, each
    with a derived client_ref.

    The ref is a UUID5 of the file's SHA-256, the batch number and the batch's own content: the same file with the
    same choices gives the same refs (a resume replays, never creates twice), and any other choice gives new refs
    (the server would refuse a reused ref with another payload)."""
    if not 1 <= size <= BATCH_ROWS:
        raise ValueError(f"batch size must be 1..{BATCH_ROWS}")
    sendable = [r for r in rows if r.verdict != "invalid"]
    parts: list[list[tuple[PreviewRow, dict[str, Any]]]] = [[]]
    used = 0
    for r in sendable:
        item: dict[str, Any] = {"customer_name": r.customer_name, "phone": r.e164}
        if r.model_interested:
            item["model_interested"] = r.model_interested
        if r.remark:
            item["remark"] = r.remark
        if r.received_at:
            item["received_at"] = r.received_at
        cost = len(json.dumps(item)) + 2  # as httpx sends it: ASCII-escaped, ", " separators
        if parts[-1] and (len(parts[-1]) >= size or used + cost > max_bytes):
            parts.append([])
            used = 0
        parts[-1].append((r, item))
        used += cost
    batches: list[Batch] = []
    for index, part in enumerate(p for p in parts if p):
        payload_rows = [item for _r, item in part]
        body: dict[str, Any] = {
            "source": source,
            "sub_source": sub_source,
            "assign_to": list(assign_to) if assign_to else None,
            "rows": payload_rows,
        }
        if branch:
            body["branch"] = branch
        canonical = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        content = hashlib.sha256(canonical.encode()).hexdigest()
        ref = str(uuid.uuid5(_BATCH_NAMESPACE, f"{sheet.sha256}:{index}:{content}"))
        batches.append(Batch(index, ref, tuple(r.row_no for r, _item in part), {"client_ref": ref, **body}))
    return batches


class ImportJournal:
    """The answers of the batches sent so far for one file, kept as JSON in `directory` (the desk's data folder),
    named by the file's hash. Written (atomically: temp file + rename) after every batch, so a cancelled, failed or
    killed import resumes where it stopped. Answers are keyed by client_ref: a batch whose choices changed is new."""

    def __init__(self, directory: Path, sheet: Sheet) -> None:
        self.path = Path(directory) / f"import-{sheet.sha256[:32]}.json"
        self.file = str(sheet.path)
        self.answers: dict[str, dict[str, Any]] = {}
        if self.path.exists():
            try:
                data = json.loads(self.path.read_text(encoding="utf-8"))
                self.answers = {str(k): dict(v) for k, v in dict(data.get("answers", {})).items()}
            except (OSError, ValueError, TypeError, AttributeError):
                self.answers = {}  # unreadable: the batches are sent again, and the server replays them

    def done(self, batch: Batch) -> bool:
        return batch.client_ref in self.answers

    def pending(self, batches: Sequence[Batch]) -> list[Batch]:
        return [b for b in batches if not self.done(b)]

    def record(self, batch: Batch, answer: dict[str, Any]) -> None:
        self.answers[batch.client_ref] = answer
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"file": self.file, "answers": self.answers}), encoding="utf-8")
        os.replace(tmp, self.path)

    def forget(self) -> None:
        """The import is finished and summarised: nothing left to resume."""
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass


def send_batch(rpc: Callable[[str, dict[str, Any]], Any], batch: Batch) -> dict[str, Any]:
    """One `import_leads` call (blocking; a pool thread runs it). The answer must be the contract's dict."""
    answer = rpc("import_leads", {"batch": batch.payload})
    if not isinstance(answer, dict) or "created" not in answer:
        raise ValueError("The server sent an unreadable import answer.")
    return dict(answer)


def summarise(batches: Sequence[Batch], journal: ImportJournal, rows: Sequence[PreviewRow]) -> ImportSummary:
    """The server's counts over every answered batch, and every row not imported with its reason (the preview's
    invalid rows and the rows the server rejected), by file row number."""
    summary = ImportSummary(batches_total=len(batches))
    summary.rejected = [(r.row_no, r.reason) for r in rows if r.verdict == "invalid"]
    for batch in batches:
        answer = journal.answers.get(batch.client_ref)
        if answer is None:
            continue
        summary.batches_done += 1
        summary.created += int(answer.get("created") or 0)
        summary.added_source += int(answer.get("added_source") or 0)
        summary.exact_duplicate += int(answer.get("exact_duplicate") or 0)
        summary.replayed += 1 if answer.get("replayed") else 0
        for bad in answer.get("rejected") or []:
            try:
                row_no = batch.row_nos[int(bad["row"])]
            except (KeyError, IndexError, TypeError, ValueError):
                continue
            summary.rejected.append((row_no, str(bad.get("message") or bad.get("code") or "Rejected by the server")))
    summary.rejected.sort()
    return summary


def run_import(
    rpc: Callable[[str, dict[str, Any]], Any],
    batches: Sequence[Batch],
    journal: ImportJournal,
    *,
    cancelled: Callable[[], bool] = lambda: False,
    progress: Callable[[int, int], None] = lambda done, total: None,
) -> int:
    """Send every batch the journal has no answer for, in order, until done or `cancelled()`; returns batches sent.
    The dialog sends one batch per worker job instead (so it can show each); this is the loop for tools and bench."""
    sent = 0
    for batch in journal.pending(batches):
        if cancelled():
            break
        journal.record(batch, send_batch(rpc, batch))
        sent += 1
        progress(len(batches) - len(journal.pending(batches)), len(batches))
    return sent


def rejected_path(sheet: Sheet) -> Path:
    return sheet.path.with_name(f"{sheet.path.stem} - not imported.csv")


def write_rejected(sheet: Sheet, rejected: Sequence[tuple[int, str]]) -> Path | None:
    """The rows not imported, as they were in the file plus the row number and the reason, in a UTF-8 CSV (with a
    BOM so Excel opens it right) next to the file. None when every row went in."""
    if not rejected:
        return None
    by_row = dict(sheet.rows)
    path = rejected_path(sheet)
    with path.open("w", encoding="utf-8-sig", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["Row", "Reason", *sheet.headers])
        for row_no, reason in rejected:
            writer.writerow([row_no, reason, *by_row.get(row_no, ())])
    return path


def summary_dict(summary: ImportSummary) -> dict[str, Any]:
    return asdict(summary)
