"""Holiday sets from the rules data: fixed dates, nth weekdays, Easter offsets, observed days.

A holiday that falls on a weekend with an observed-day shift bans **both** the actual day and the
observed day (the conservative reading of the state statutes, which name the holiday, while
employers and vendors publish the observed day).
"""

from __future__ import annotations

from datetime import date, timedelta

from .schema import HolidayDay, HolidaySet

_WEEKDAYS = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}


def easter(year: int) -> date:
    """Western (Gregorian) Easter Sunday (anonymous Gregorian algorithm)."""
    a = year % 19
    b, c = divmod(year, 100)
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    el = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * el) // 451
    month, day = divmod(h + el - 7 * m + 114, 31)
    return date(year, month, day + 1)


def day_in_year(day: HolidayDay, year: int) -> date:
    """The date of one holiday in one year."""
    if day.date is not None:
        month, dom = (int(p) for p in day.date.split("-"))
        return date(year, month, dom)
    if day.easter is not None:
        return easter(year) + timedelta(days=day.easter)
    assert day.month is not None and day.weekday is not None and day.nth is not None
    wd = _WEEKDAYS[day.weekday]
    if day.nth > 0:
        first = date(year, day.month, 1)
        found = first + timedelta(days=(wd - first.weekday()) % 7 + 7 * (day.nth - 1))
    else:
        nxt = date(year + (day.month == 12), day.month % 12 + 1, 1)
        last = nxt - timedelta(days=1)
        found = last - timedelta(days=(last.weekday() - wd) % 7)
    return found + timedelta(days=day.after)


def dates_in_year(hs: HolidaySet, year: int) -> dict[date, str]:
    """Banned dates generated from ``year``'s holidays (observed days may spill into next year)."""
    out: dict[date, str] = {}
    for day in hs.days:
        when = day_in_year(day, year)
        out.setdefault(when, day.name)
        if when.weekday() == 5 and hs.observed_shift.get("saturday") == "friday":
            out.setdefault(when - timedelta(days=1), f"{day.name} (observed)")
        if when.weekday() == 6 and hs.observed_shift.get("sunday") == "monday":
            out.setdefault(when + timedelta(days=1), f"{day.name} (observed)")
    for extra in hs.extra_dates:
        if extra.year == year:
            out.setdefault(extra, "proclaimed holiday")
    return out


class HolidayCalendar:
    """Cached lookups of holiday sets by name."""

    def __init__(self, sets: dict[str, HolidaySet]) -> None:
        self.sets = sets
        self._cache: dict[tuple[str, int], dict[date, str]] = {}

    def _year(self, name: str, year: int) -> dict[date, str]:
        key = (name, year)
        hit = self._cache.get(key)
        if hit is None:
            hit = dates_in_year(self.sets[name], year)
            self._cache[key] = hit
        return hit

    def holiday(self, name: str, on: date) -> str | None:
        """The holiday's name if ``on`` is banned by the set, else None."""
        for year in (on.year, on.year - 1, on.year + 1):
            found = self._year(name, year).get(on)
            if found:
                return found
        return None
