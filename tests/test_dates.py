"""The follow-up field's typed dates (core/dates.py): what a CRE types, what the desk stores."""

from __future__ import annotations

from datetime import date, time

import pytest

from crm_desktop.core.dates import FollowUp, InvalidDate, parse_follow_up

TODAY = date(2026, 11, 30)  # a Monday


@pytest.mark.parametrize(
    ("typed", "day", "at"),
    [
        ("3", date(2026, 12, 3), None),  # the 3rd has passed this month: next month's
        ("30", date(2026, 11, 30), None),
        ("3rd", date(2026, 12, 3), None),
        ("3/12", date(2026, 12, 3), None),  # day first
        ("3-12-2026", date(2026, 12, 3), None),
        ("3/1", date(2027, 1, 3), None),  # passed this year: next year
        ("1/11/26", date(2026, 11, 1), None),
        ("3 dec", date(2026, 12, 3), None),
        ("Dec 3", date(2026, 12, 3), None),
        ("3 December", date(2026, 12, 3), None),
        ("+2", date(2026, 12, 2), None),
        ("+ 2 days", date(2026, 12, 2), None),
        ("+1w", date(2026, 12, 7), None),
        ("mon", date(2026, 12, 7), None),  # on a Monday, "mon" is next Monday
        ("Wednesday", date(2026, 12, 2), None),
        ("next fri", date(2026, 12, 4), None),
        ("today", TODAY, None),
        ("tomorrow", date(2026, 12, 1), None),
        ("tmrw", date(2026, 12, 1), None),
        ("day after tomorrow", date(2026, 12, 2), None),
        ("2026-12-24", date(2026, 12, 24), None),
        ("tomorrow 5pm", date(2026, 12, 1), time(17, 0)),
        ("3/12 17:30", date(2026, 12, 3), time(17, 30)),
        ("mon 5", date(2026, 12, 7), time(17, 0)),  # a desk's 5 is 5 pm
        ("mon 10", date(2026, 12, 7), time(10, 0)),
        ("+2 at 11", date(2026, 12, 2), time(11, 0)),
        ("5:30 pm", TODAY, time(17, 30)),
        ("5pm", TODAY, time(17, 0)),
        ("dec 3 9am", date(2026, 12, 3), time(9, 0)),
        ("  TOMORROW   12 PM ", date(2026, 12, 1), time(12, 0)),
    ],
)
def test_typed_follow_ups(typed: str, day: date, at: time | None) -> None:
    assert parse_follow_up(typed, TODAY) == FollowUp(day, at)


@pytest.mark.parametrize("typed", ["", "   "])
def test_blank_is_no_follow_up(typed: str) -> None:
    assert parse_follow_up(typed, TODAY) is None


@pytest.mark.parametrize(
    ("typed", "says"),
    [
        ("soon", "Type a date"),
        ("32", "not a day of the month"),
        ("3/13", "not a month"),
        ("31/2/2027", "not a real date"),
        ("30/2", "not a real date"),
        ("tomorrow 13pm", "not a time"),
        ("tomorrow 25:00", "not a time of day"),
        ("3 foo", "Type a date"),
    ],
)
def test_what_is_not_a_date_says_what_to_type(typed: str, says: str) -> None:
    with pytest.raises(InvalidDate, match=says):
        parse_follow_up(typed, TODAY)


def test_describe_reads_back_the_day_and_how_far() -> None:
    assert FollowUp(date(2026, 12, 3), time(17, 30)).describe(TODAY) == "Thu 3 Dec 2026 · in 3 days · 17:30"
    assert FollowUp(date(2026, 12, 1)).describe(TODAY) == "Tue 1 Dec 2026 · tomorrow"
