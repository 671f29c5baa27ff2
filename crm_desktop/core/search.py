"""Search as the CRE types, across every cached lead: a name (any script, by the start of any of its words, case-
and accent-insensitive), the last digits of a phone, or a UID. Local SQL, so it answers offline and per keystroke.

What is typed decides the kind: only digits (spaces, +, - allowed) → phone, by its last digits (at least four: the
"number ending 3210" a caller reads out; a whole number is looked up directly); a UID shape (letters, a dash, digits:
``GA-3210``) → UID prefix; anything else → words of the name, each a prefix (``ra ku`` finds "Ravi Kumar"), through
the FTS5 index (cache.py). Leads this desk queued and the server does not know yet are searched too (by name and
phone), so a lead created offline can be found and called again.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from typing import Any

from crm_desktop.core.cache import SUMMARY_COLUMNS
from crm_desktop.core.models import LeadSummary, OutboxItem
from crm_desktop.core.worklist import WorklistStore

MIN_DIGITS = 4
DEFAULT_LIMIT = 50

_UID = re.compile(r"^[A-Za-z]{1,3}-[0-9A-Za-z-]*$")
_PHONE_CHARS = re.compile(r"^[\d\s+\-().]+$")

_BY_LAST4 = f"""
    SELECT {SUMMARY_COLUMNS}, 0, NULL FROM lead_cache
     WHERE substr(phone, -4) = :last4 AND phone LIKE :pattern
     ORDER BY customer_name LIMIT :limit
"""
# Indexed range on uid: "GA-32" finds GA-3210-0001, GA-3299-...
_BY_UID = f"SELECT {SUMMARY_COLUMNS}, 0, NULL FROM lead_cache WHERE uid >= :lo AND uid < :hi ORDER BY uid LIMIT :limit"
# The FTS query picks the rows (its own LIMIT keeps a one-letter prefix cheap); the outer ORDER BY sorts that page.
_BY_NAME = f"""
    SELECT {SUMMARY_COLUMNS}, 0, NULL FROM lead_cache
     WHERE rowid IN (SELECT rowid FROM lead_names WHERE lead_names MATCH :match LIMIT :limit)
     ORDER BY customer_name
"""


def _fold(text: str) -> str:
    """Case- and accent-free text, like the FTS tokenizer's, for matching the few queued leads in Python."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    # Only the combining diacritics of Latin letters are dropped (as remove_diacritics does); an Indic vowel sign is
    # part of the word.
    return "".join(c for c in decomposed if not 0x0300 <= ord(c) <= 0x036F)


def words(text: str) -> list[str]:
    """The words of a name as the FTS tokenizer sees them: runs of letters, digits and marks. Python's \\w leaves
    out the marks, which would cut a Devanagari or Telugu word at every vowel sign."""
    out: list[str] = []
    current: list[str] = []
    for c in text:
        if unicodedata.category(c)[0] in "LNM":
            current.append(c)
        elif current:
            out.append("".join(current))
            current = []
    if current:
        out.append("".join(current))
    return out


def match_expression(text: str) -> str | None:
    """The FTS5 MATCH expression for what was typed: every word a quoted prefix, all required. None: nothing to
    search. Quoting makes every character literal, so no typed text can be read as FTS syntax."""
    typed = words(text)
    if not typed:
        return None
    return " ".join('"' + w.replace('"', '""') + '"*' for w in typed)


def query_kind(text: str) -> str:
    """'phone', 'uid', 'name' or 'none' for what was typed."""
    t = text.strip()
    if not t:
        return "none"
    if _PHONE_CHARS.match(t):
        return "phone" if sum(c.isdigit() for c in t) >= MIN_DIGITS else "none"
    if _UID.match(t):
        return "uid"
    return "name"


class SearchStore(WorklistStore):
    """`search` on top of the cache and the overlay."""

    def search(self, text: str, limit: int = DEFAULT_LIMIT, saving: Sequence[OutboxItem] = ()) -> list[LeadSummary]:
        """Leads matching what was typed, this desk's queue laid over them (with the calls still `saving`, as in
        worklist.py); at most `limit`."""
        kind = query_kind(text)
        if kind == "none":
            return []
        params: dict[str, Any] = {"limit": int(limit)}
        if kind == "phone":
            digits = "".join(c for c in text if c.isdigit())
            if len(digits) > 10:
                digits = digits[-10:]  # +91 98765 43210 → its national number
            sql = _BY_LAST4
            params.update(last4=digits[-4:], pattern=f"%{digits}")
        elif kind == "uid":
            lo = text.strip().upper()
            sql = _BY_UID
            params.update(lo=lo, hi=lo + "\uffff")
        else:
            match = match_expression(text)
            if match is None:
                return []
            sql = _BY_NAME
            params["match"] = match
        with self._blame("cache"):
            rows = self._cache_db().execute(sql, params).fetchall()
        found = [self._lead(r) for r in rows]
        return self._with_queue(found, text, kind, limit, saving)

    def _with_queue(
        self, found: list[LeadSummary], text: str, kind: str, limit: int, saving: Sequence[OutboxItem]
    ) -> list[LeadSummary]:
        overlay = self.overlay(saving=saving)
        if not overlay:
            return found
        out: list[LeadSummary] = []
        seen: set[str] = set()
        for lead in found:
            row = overlay.get(lead.phone)
            if row is not None:
                lead = self.lead_from_overlay(row)
            out.append(lead)
            seen.add(lead.phone)
        # Queued leads the cache does not hold yet, when they match.
        wanted = [_fold(w) for w in words(text)]
        digits = "".join(c for c in text if c.isdigit())[-10:]
        for phone, row in overlay.items():
            if phone in seen or row.get("lead_id"):
                continue
            name_words = [_fold(w) for w in words(str(row.get("customer_name") or ""))]
            if (kind == "phone" and phone.endswith(digits)) or (
                kind == "name" and all(any(n.startswith(w) for n in name_words) for w in wanted)
            ):
                out.insert(0, self.lead_from_overlay(row))
        return out[:limit]
