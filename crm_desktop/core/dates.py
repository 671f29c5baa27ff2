"""What a CRE types for a follow-up -> a date and an optional time of day.

A caller says "call me on the 3rd", "in two days", "Monday after 5". The follow-up field takes that as typed, in one
field: `3`, `3/12`, `3/12/26`, `3 dec`, `dec 3`, `+2` (days), `+1w`, `mon`, `today`, `tomorrow`, `2026-12-03`, each
optionally followed by a time: `5pm`, `5:30 pm`, `17:30`, `at 5`. A bare day or day/month that has passed means the
next one (the 3rd typed on the 20th is next month's 3rd): a follow-up is in the future. Qt-free so it is unit-tested
fast and the same rules serve any other field (the lead view's "next call").

Days before months (`3/12` = 3 December), as everywhere in India.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, time, timedelta

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_WORDS = {"today": 0, "tod": 0, "tomorrow": 1, "tmrw": 1, "tmr": 1, "tom": 1, "tomo": 1, "dayafter": 2}


class InvalidDate(ValueError):
    """The text is not a follow-up the desk understands; str() says what to type instead."""


@dataclass(frozen=True, slots=True)
class FollowUp:
    day: date
    at: time | None = None

    def describe(self, today: date) -> str:
        """'Thu 3 Dec 2026 · in 3 days · 17:30': what the CRE reads back to the caller."""
        delta = (self.day - today).days
        when = {0: "today", 1: "tomorrow", -1: "yesterday"}.get(delta)
        if when is None:
            when = f"in {delta} days" if delta > 0 else f"{-delta} days ago"
        text = f"{self.day.strftime('%a')} {self.day.day} {self.day.strftime('%b %Y')} · {when}"
        if self.at is not None:
            text += f" · {self.at.strftime('%H:%M')}"
        return text


def parse_follow_up(text: str, today: date) -> FollowUp | None:
    """None for blank text; raises InvalidDate with a sentence for the CRE otherwise."""
    raw = " ".join(text.strip().lower().split())
    if not raw:
        return None
    day_part, at = _split_time(raw, today)
    day = _parse_day(day_part, today) if day_part else today
    if day is None:
        raise InvalidDate("Type a date: 3, 3/12, +2 (days), mon, tomorrow … and a time if wanted (5pm, 17:30).")
    return FollowUp(day, at)


def _split_time(raw: str, today: date) -> tuple[str, time | None]:
    # A time needs a marker (am/pm, a colon, "at"), or must follow a whole date: "3" alone is a day, "dec 3" is a
    # date, "mon 5" is Monday 17:00.
    m = (
        re.search(r"(?:^|\s)(?:at\s*|@\s*)?(?P<h>\d{1,2})(?::(?P<m>\d{2}))?\s*(?P<ap>[ap])\.?m\.?$", raw)
        or re.search(r"(?:^|\s)(?:at\s*|@\s*)?(?P<h>\d{1,2}):(?P<m>\d{2})$", raw)
        or re.search(r"(?:^|\s)(?:at|@)\s*(?P<h>\d{1,2})$", raw)
    )
    if m is None:
        m = re.search(r"\s(?P<h>\d{1,2})$", raw)
        if m is None or _parse_day(raw, today) is not None or _parse_day(raw[: m.start()].strip(), today) is None:
            return raw, None
    groups = m.groupdict()
    hour, minute, ampm = int(groups["h"]), int(groups.get("m") or 0), groups.get("ap")
    if ampm:
        if not 1 <= hour <= 12:
            raise InvalidDate(f"{hour} {ampm}m is not a time. Type 5pm or 17:30.")
        hour = hour % 12 + (12 if ampm == "p" else 0)
    elif hour < 8 and not groups.get("m"):
        hour += 12  # "mon 5", "at 5": a call desk works days; 5 means 5 pm
    if hour > 23 or minute > 59:
        raise InvalidDate(f"{m.group(0).strip()} is not a time of day. Type 5pm or 17:30.")
    return raw[: m.start()].strip(), time(hour, minute)


def _parse_day(s: str, today: date) -> date | None:
    s = s.replace("day after tomorrow", "dayafter").replace("day after", "dayafter")
    if s in _WORDS:
        return today + timedelta(days=_WORDS[s])
    m = re.fullmatch(r"\+\s*(\d{1,3})\s*(d|day|days|w|wk|week|weeks)?", s)
    if m:
        n = int(m.group(1))
        return today + timedelta(days=n * 7 if (m.group(2) or "d").startswith("w") else n)
    m = re.fullmatch(r"(?:next\s+)?([a-z]{3})[a-z]*", s)
    if m and m.group(1) in WEEKDAYS:
        ahead = (WEEKDAYS.index(m.group(1)) - today.weekday()) % 7 or 7  # "mon" on a Monday: next Monday
        return today + timedelta(days=ahead)
    m = re.fullmatch(r"(\d{4})-(\d{1,2})-(\d{1,2})", s)
    if m:
        return _real(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    m = re.fullmatch(r"(\d{1,2})(?:st|nd|rd|th)?", s)
    if m:
        return _next_day_of_month(int(m.group(1)), today)
    m = re.fullmatch(r"(\d{1,2})\s*[/.-]\s*(\d{1,2})(?:\s*[/.-]\s*(\d{2}|\d{4}))?", s)
    if m:
        return _day_month(int(m.group(1)), int(m.group(2)), m.group(3), today)
    m = re.fullmatch(r"(\d{1,2})(?:st|nd|rd|th)?\s*([a-z]{3})[a-z]*(?:\s+(\d{4}))?", s) or re.fullmatch(
        r"([a-z]{3})[a-z]*\s*(\d{1,2})(?:st|nd|rd|th)?(?:\s+(\d{4}))?", s
    )
    if m:
        a, b, year = m.group(1), m.group(2), m.group(3)
        day_s, mon_s = (a, b) if a.isdigit() else (b, a)
        if mon_s not in MONTHS:
            return None
        return _day_month(int(day_s), MONTHS.index(mon_s) + 1, year, today)
    return None


def _real(y: int, m: int, d: int) -> date:
    try:
        return date(y, m, d)
    except ValueError:
        raise InvalidDate(f"{d}/{m}/{y} is not a real date.") from None


def _next_day_of_month(day: int, today: date) -> date:
    if not 1 <= day <= 31:
        raise InvalidDate(f"{day} is not a day of the month.")
    y, m = today.year, today.month
    for _ in range(13):
        try:
            candidate = date(y, m, day)
        except ValueError:
            candidate = None
        if candidate is not None and candidate >= today:
            return candidate
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    raise InvalidDate(f"{day} is not a day of the month.")


def _day_month(day: int, month: int, year: str | None, today: date) -> date:
    if not 1 <= month <= 12:
        raise InvalidDate(f"{month} is not a month (the day comes first: 3/12 is 3 December).")
    if year is not None:
        y = int(year) + (2000 if len(year) == 2 else 0)
        return _real(y, month, day)
    candidate = _real(today.year, month, day) if _valid(today.year, month, day) else None
    if candidate is None or candidate < today:
        if not _valid(today.year + 1, month, day):
            raise InvalidDate(f"{day}/{month} is not a real date.")
        candidate = date(today.year + 1, month, day)
    return candidate


def _valid(y: int, m: int, d: int) -> bool:
    try:
        date(y, m, d)
    except ValueError:
        return False
    return True
