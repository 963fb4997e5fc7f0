"""Holiday sets from the rules data: fixed dates, nth weekdays, Easter offsets, observed days.

A holiday that falls on a weekend with an observed-day shift bans **both** the actual day and the
observed day (the conservative reading of the state statutes, which name the holiday, while
employers and vendors publish the observed day). Every shift the schema accepts is applied:
Saturday to Friday (one day back) or Monday (two days on), Sunday to Monday (one day on) or
Friday (two days back). An observed day that falls on another holiday of the set (actual or
observed) moves on, in the same direction, to the next weekday that is none (Christmas on a
Saturday and Boxing Day on a Sunday, both shifted to Monday: Monday and Tuesday), as the
substitute-day rules of Australia and the United Kingdom do.

An nth weekday that a year lacks (``nth: 5`` in a month with four such weekdays) gives no
holiday that year.
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


def day_in_year(day: HolidayDay, year: int) -> date | None:
    """The date of one holiday in one year; None when the year has no such day (the fifth
    Monday of a month with four Mondays)."""
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
        if found.month != day.month:  # past the month's last such weekday: none this year
            return None
    else:
        nxt = date(year + (day.month == 12), day.month % 12 + 1, 1)
        last = nxt - timedelta(days=1)
        found = last - timedelta(days=(last.weekday() - wd) % 7)
    return found + timedelta(days=day.after)


#: Days from a weekend day to its observed day, for every shift the schema accepts
#: (:attr:`HolidaySet.observed_shift`).
_SHIFT_DAYS = {("saturday", "friday"): -1, ("saturday", "monday"): 2,
               ("sunday", "friday"): -2, ("sunday", "monday"): 1}
_WEEKEND = {"saturday": 5, "sunday": 6}


def dates_in_year(hs: HolidaySet, year: int) -> dict[date, str]:
    """Banned dates generated from ``year``'s holidays (observed days may spill into next year).

    An observed day that meets another holiday of the set, actual or observed, moves on in
    the direction of its shift to the next weekday that is none."""
    out: dict[date, str] = {}
    # weekday number (5 Saturday, 6 Sunday) -> days to its observed day
    shifts = {_WEEKEND[k]: _SHIFT_DAYS[(k, v)] for k, v in hs.observed_shift.items()}
    weekend: list[tuple[date, str, int]] = []
    for day in hs.days:
        when = day_in_year(day, year)
        if when is None:
            continue
        out.setdefault(when, day.name)
        shift = shifts.get(when.weekday())
        if shift is not None:
            weekend.append((when, day.name, shift))
    # the actual days of the years either side too: an observed day may cross the new year
    taken = set(out) | {d for y in (year - 1, year + 1) for day in hs.days
                        if weekend and (d := day_in_year(day, y)) is not None}
    for when, name, shift in sorted(weekend):
        step = timedelta(days=1 if shift > 0 else -1)
        observed = when + timedelta(days=shift)
        while observed in taken or observed.weekday() >= 5:
            observed += step
        taken.add(observed)
        out.setdefault(observed, f"{name} (observed)")
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
