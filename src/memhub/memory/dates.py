"""Dates in a transcript, normalised against the session's date.

``resolve_dates("I saw her yesterday", date(2024, 1, 15))`` finds "yesterday"
and answers ``2024-01-14``. Relative expressions are resolved to the
granularity they carry: a day (``2024-01-14``), a week (``week of
2024-01-08``, its Monday), a month (``2024-01``) or a year (``2023``).
Handled: today / tonight / yesterday / tomorrow; ``last|this|next`` +
weekday, week, weekend, month, year; ``on Friday`` (the latest one before
the session); ``N days|weeks|months|years ago`` and ``in N …``; ``the day
before yesterday``; explicit dates (``2024-01-15``, ``15 January 2024``,
``January 15``, ``May 2023``). Number words up to twelve count as numbers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
MONTHS = (
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
)
_NUMBERS = {
    "a": 1,
    "an": 1,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "a couple of": 2,
    "a few": 3,
}
_MONTH_RE = "|".join(MONTHS) + "|" + "|".join(m[:3] for m in MONTHS if len(m) > 3) + "|sept"
_DAY_RE = "|".join(WEEKDAYS)
_NUM_RE = r"\d{1,3}|a couple of|a few|" + "|".join(k for k in _NUMBERS if " " not in k)

_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("iso", re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b")),
    (
        "dmy",
        re.compile(rf"\b(\d{{1,2}})(?:st|nd|rd|th)?\s+({_MONTH_RE})\.?,?\s+(\d{{4}})\b", re.I),
    ),
    (
        "mdy",
        re.compile(rf"\b({_MONTH_RE})\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?(?:,?\s+(\d{{4}}))?\b", re.I),
    ),
    ("my", re.compile(rf"\b(?:in\s+)?({_MONTH_RE})\s+(\d{{4}})\b", re.I)),
    ("before_yesterday", re.compile(r"\bthe day before yesterday\b", re.I)),
    ("after_tomorrow", re.compile(r"\bthe day after tomorrow\b", re.I)),
    ("ago", re.compile(rf"\b({_NUM_RE})\s+(day|week|month|year)s?\s+ago\b", re.I)),
    ("in", re.compile(rf"\bin\s+({_NUM_RE})\s+(day|week|month|year)s?\b", re.I)),
    ("rel_day", re.compile(rf"\b(last|this|next|on|this past|this coming)\s+({_DAY_RE})\b", re.I)),
    ("rel_unit", re.compile(r"\b(last|this|next|past)\s+(week|weekend|month|year)\b", re.I)),
    ("word", re.compile(r"\b(today|tonight|yesterday|tomorrow|this morning|this evening)\b", re.I)),
]


@dataclass(frozen=True, slots=True)
class DateMention:
    text: str  # as written
    start: int
    end: int
    value: str  # normalised: YYYY-MM-DD, "week of YYYY-MM-DD", YYYY-MM or YYYY
    day: date  # a representative day (the first day of a week, month or year)


def _number(word: str) -> int:
    word = word.lower()
    return int(word) if word.isdigit() else _NUMBERS[word]


def _month(name: str) -> int:
    name = name.lower().rstrip(".")
    return next(i for i, m in enumerate(MONTHS, 1) if m.startswith(name[:3]))


def _add_months(day: date, months: int) -> date:
    total = day.year * 12 + day.month - 1 + months
    return date(total // 12, total % 12 + 1, 1)


def _week(day: date) -> tuple[str, date]:
    monday = day - timedelta(days=day.weekday())
    return f"week of {monday.isoformat()}", monday


def _shift(anchor: date, n: int, unit: str) -> tuple[str, date]:
    unit = unit.lower()
    if unit == "day":
        day = anchor + timedelta(days=n)
        return day.isoformat(), day
    if unit == "week":
        return _week(anchor + timedelta(weeks=n))
    if unit == "month":
        first = _add_months(anchor, n)
        return first.strftime("%Y-%m"), first
    first = date(anchor.year + n, 1, 1)
    return str(first.year), first


def _weekday(anchor: date, which: str, name: str) -> tuple[str, date]:
    target = WEEKDAYS.index(name.lower())
    which = which.lower()
    delta = target - anchor.weekday()
    if which in ("next", "this coming"):
        days = delta if delta > 0 else delta + 7  # the first one after the session
    elif which == "this":
        days = delta
    else:  # last, on, this past: the latest such day before the session
        days = delta if delta < 0 else delta - 7
    day = anchor + timedelta(days=days)
    return day.isoformat(), day


def _resolve(kind: str, m: re.Match[str], anchor: date) -> tuple[str, date] | None:
    g = m.groups()
    try:
        if kind == "iso":
            day = date(int(g[0]), int(g[1]), int(g[2]))
            return day.isoformat(), day
        if kind == "dmy":
            day = date(int(g[2]), _month(g[1]), int(g[0]))
            return day.isoformat(), day
        if kind == "mdy":
            year = int(g[2]) if g[2] else anchor.year
            day = date(year, _month(g[0]), int(g[1]))
            if not g[2] and day > anchor + timedelta(days=180):
                day = day.replace(year=year - 1)
            return day.isoformat(), day
        if kind == "my":
            first = date(int(g[1]), _month(g[0]), 1)
            return first.strftime("%Y-%m"), first
    except (ValueError, StopIteration):
        return None
    if kind == "before_yesterday":
        return _shift(anchor, -2, "day")
    if kind == "after_tomorrow":
        return _shift(anchor, 2, "day")
    if kind == "ago":
        return _shift(anchor, -_number(g[0]), g[1])
    if kind == "in":
        return _shift(anchor, _number(g[0]), g[1])
    if kind == "rel_day":
        return _weekday(anchor, g[0], g[1])
    if kind == "rel_unit":
        n = {"last": -1, "past": -1, "this": 0, "next": 1}[g[0].lower()]
        if g[1].lower() == "weekend":
            saturday = anchor + timedelta(days=5 - anchor.weekday() + 7 * n)
            if n == -1 and anchor.weekday() >= 5:
                saturday = anchor - timedelta(days=anchor.weekday() - 5)
            return f"weekend of {saturday.isoformat()}", saturday
        return _shift(anchor, n, g[1])
    offsets = {"yesterday": -1, "tomorrow": 1}
    return _shift(anchor, offsets.get(g[0].lower(), 0), "day")


def resolve_dates(text: str, anchor: date) -> list[DateMention]:
    """Every date expression in ``text``, resolved against ``anchor``, in text order;
    overlapping matches keep the one found first (patterns go from specific to vague)."""
    found: list[DateMention] = []
    taken: list[tuple[int, int]] = []
    for kind, pattern in _PATTERNS:
        for m in pattern.finditer(text):
            if any(m.start() < end and start < m.end() for start, end in taken):
                continue
            if kind == "mdy" and m.group(1) == "may" and not m.group(3):
                continue  # lowercase "may 5": the verb, not the month
            resolved = _resolve(kind, m, anchor)
            if resolved is None:
                continue
            taken.append((m.start(), m.end()))
            found.append(DateMention(m.group(0), m.start(), m.end(), *resolved))
    return sorted(found, key=lambda d: d.start)


def parse_session_date(value: str | None, today: date) -> date:
    """``YYYY-MM-DD`` (or any ISO date-time); absent means ``today``."""
    if not value:
        return today
    from memhub.errors import BadRequest

    try:
        return date.fromisoformat(value[:10])
    except ValueError as exc:
        raise BadRequest(
            "session_date must be an ISO date (YYYY-MM-DD)", context={"session_date": value}
        ) from exc
