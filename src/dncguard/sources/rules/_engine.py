"""Time rules: calling windows, prohibited days, holidays and emergencies across candidate zones.

A :class:`TimePlan` holds every time rule that applies to one location and kind of call. A
moment is legal when no rule is violated in any candidate zone (the intersection of windows,
the union of prohibited days). :meth:`TimePlan.next_allowed` scans the moments at which the
answer can change (local window starts and midnights in every zone, each at both of its
instants when a clock change repeats it, and the clock changes themselves) and returns the
first legal one, so the moment it returns always passes the same evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from ._holidays import HolidayCalendar
from .codes import DAY_PROHIBITED, HOLIDAY, OUTSIDE_CALLING_WINDOW, STATE_OF_EMERGENCY
from .schema import CallingWindowRule, EmergencyBanRule, HolidayBanRule, Window
from .settings import EmergencyDeclaration

#: How far ahead next_allowed_at is searched.
HORIZON = timedelta(days=14)

_DAYNAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


@dataclass(frozen=True)
class Violation:
    code: str
    rule: str  # JURISDICTION:rule_id
    citation: str
    zone: str
    local: datetime
    what: str  # e.g. "outside the calling window 08:00-20:00"


@dataclass(frozen=True)
class CampaignWindow:
    """The campaign profile's narrower calling hours."""

    campaign: str
    window: Window


def _seconds(t: time) -> int:
    return t.hour * 3600 + t.minute * 60 + t.second


def _inside(w: Window, local: datetime, margin: int) -> bool:
    now = _seconds(local.time()) + local.microsecond / 1e6
    end = 86400 if w.end is None else _seconds(w.end)
    return _seconds(w.start) <= now < end - margin


#: the steps of a UTC day at which :func:`_transitions` compares offsets (no zone changes its
#: offset twice within six hours)
_STEP = timedelta(hours=6)


@lru_cache(maxsize=8192)
def _transitions(zone: str, day: date) -> tuple[datetime, ...]:
    """The instants of UTC ``day`` at which ``zone`` changes its UTC offset (a clock change):
    the first second with the new offset."""
    zi = ZoneInfo(zone)
    out = []
    a = datetime.combine(day, time(0), tzinfo=UTC)
    for _ in range(4):
        b = a + _STEP
        if a.astimezone(zi).utcoffset() != b.astimezone(zi).utcoffset():
            lo, hi = a, b  # offset(lo) differs from offset(hi): find the first second that
            before = lo.astimezone(zi).utcoffset()  # has hi's offset
            while hi - lo > timedelta(seconds=1):
                mid = lo + (hi - lo) // 2
                mid = mid.replace(microsecond=0)
                if mid.astimezone(zi).utcoffset() == before:
                    lo = mid
                else:
                    hi = mid
            out.append(hi)
        a = b
    return tuple(out)


def local_text(local: datetime) -> str:
    return f"{_DAYNAMES[local.weekday()]} {local:%Y-%m-%d %H:%M} {local.tzname()}"


@dataclass
class TimePlan:
    """The time rules for one location and kind of call."""

    zones: tuple[str, ...]
    windows: list[tuple[str, CallingWindowRule]] = field(default_factory=list)
    holidays: list[tuple[str, HolidayBanRule]] = field(default_factory=list)
    emergencies: list[tuple[str, EmergencyBanRule, list[EmergencyDeclaration]]] = field(
        default_factory=list)
    campaign: CampaignWindow | None = None
    margin_minutes: int = 0
    calendar: HolidayCalendar | None = None

    def __post_init__(self) -> None:
        self._zi = {z: ZoneInfo(z) for z in self._all_zones()}
        times = [t for _, r in self.windows for w in (r.weekday, r.saturday, r.sunday)
                 if w is not None for t in (w.start, w.end) if t is not None]
        if self.campaign is not None:
            times.extend(t for t in (self.campaign.window.start, self.campaign.window.end)
                         if t is not None)
        #: every moment the answer can change falls on a whole minute (window times without
        #: seconds; margins are minutes; zone offsets are whole minutes): the answer, and
        #: the local time a reason shows, are the same throughout a minute
        self.whole_minutes = all(t.second == 0 and t.microsecond == 0 for t in times)

    def _all_zones(self) -> list[str]:
        out = list(self.zones)
        for _, r in self.windows:
            out.extend(z for z in r.extra_zones if z not in out)
        return out

    @property
    def empty(self) -> bool:
        return not (self.windows or self.holidays or self.emergencies or self.campaign)

    # -- evaluation ---------------------------------------------------------------------------
    def violations(self, at: datetime) -> list[Violation]:
        """Every time rule broken at ``at`` (first zone per rule), in rule order."""
        out: dict[tuple[str, str], Violation] = {}
        margin = self.margin_minutes * 60
        for zname in self.zones:
            local = at.astimezone(self._zi[zname])
            self._check_zone(zname, local, margin, out)
        for j, r in self.windows:
            for zname in r.extra_zones:
                local = at.astimezone(self._zi[zname])
                self._window(j, r, zname, local, margin, out)
        return list(out.values())

    def _window(self, j: str, r: CallingWindowRule, zname: str, local: datetime, margin: int,
                out: dict[tuple[str, str], Violation]) -> None:
        d = local.date()
        if not r.active(d):
            return
        rid = f"{j}:{r.id}"
        w = r.window_for(d.weekday())
        if w is None:
            key = (DAY_PROHIBITED, rid)
            if key not in out:
                out[key] = Violation(DAY_PROHIBITED, rid, r.citation, zname, local,
                                     f"no calls on {_DAYNAMES[d.weekday()]}")
        elif not _inside(w, local, margin):
            key = (OUTSIDE_CALLING_WINDOW, rid)
            if key not in out:
                extra = f" less a {self.margin_minutes}-minute margin" if margin else ""
                out[key] = Violation(OUTSIDE_CALLING_WINDOW, rid, r.citation, zname, local,
                                     f"outside the calling window {w}{extra}")

    def _check_zone(self, zname: str, local: datetime, margin: int,
                    out: dict[tuple[str, str], Violation]) -> None:
        d = local.date()
        for j, r in self.windows:
            self._window(j, r, zname, local, margin, out)
        if self.campaign is not None:
            w = self.campaign.window
            rid = f"campaign:{self.campaign.campaign}"
            key = (OUTSIDE_CALLING_WINDOW, rid)
            if not _inside(w, local, margin) and key not in out:
                out[key] = Violation(OUTSIDE_CALLING_WINDOW, rid, "campaign profile calling_hours",
                                     zname, local, f"outside the campaign's calling hours {w}")
        for j, hr in self.holidays:
            if not hr.active(d) or self.calendar is None:
                continue
            name = self.calendar.holiday(hr.holiday_set, d)
            key = (HOLIDAY, f"{j}:{hr.id}")
            if name and key not in out:
                out[key] = Violation(HOLIDAY, key[1], hr.citation, zname, local,
                                     f"no calls on {name.replace('_', ' ')}")
        for j, er, decls in self.emergencies:
            if not er.active(d):
                continue
            for decl in decls:
                key = (STATE_OF_EMERGENCY, f"{j}:{er.id}")
                if decl.covers(d) and key not in out:
                    until = f" until {decl.end}" if decl.end else ""
                    out[key] = Violation(STATE_OF_EMERGENCY, key[1], er.citation, zname, local,
                                         f"state of emergency in {decl.jurisdiction}"
                                         f"{until}")

    def allowed(self, at: datetime) -> bool:
        return not self.violations(at)

    # -- search -------------------------------------------------------------------------------
    def _boundaries(self, start: datetime, end: datetime, *, ends: bool) -> list[datetime]:
        """Moments in [start, end] at which the answer may change: in every zone, each local
        time at which a window starts (and with ``ends``, ends less the margin) and each
        midnight, at every instant the clock reads it, and every clock change."""
        found: set[datetime] = {start}
        margin = timedelta(minutes=self.margin_minutes)
        # local times as the time since midnight: window starts, midnight, and with ``ends``,
        # window ends (24:00 for a window to the end of the day) less the margin
        times: set[timedelta] = {timedelta(0)}
        windows = [w for _, r in self.windows for w in (r.weekday, r.saturday, r.sunday)
                   if w is not None]
        if self.campaign is not None:
            windows.append(self.campaign.window)
        for w in windows:
            times.add(timedelta(seconds=_seconds(w.start)))
            if ends:
                stop = timedelta(days=1) if w.end is None else timedelta(seconds=_seconds(w.end))
                times.add(stop - margin)
        for zname, zi in self._zi.items():
            first = start.astimezone(zi).date() - timedelta(days=1)
            last = end.astimezone(zi).date() + timedelta(days=1)
            changes: list[datetime] = []
            day = first - timedelta(days=1)
            while day <= last + timedelta(days=1):
                changes.extend(_transitions(zname, day))
                day += timedelta(days=1)
            found.update(changes)
            # local dates whose times (up to a day either side) may fall near a change
            near = {c.astimezone(zi).date() + timedelta(days=k) for c in changes
                    for k in (-2, -1, 0, 1, 2)}
            # every instant a clock in the zone reads each time (past midnight of ``d``; less
            # than zero or past 24 hours: on the day before or after): near a change, at both
            # offsets (two instants when it repeats the time; for a time it skips, the instants
            # the time would have had, the change itself being a boundary too)
            d = first
            while d <= last:
                midnight = datetime.combine(d, time(0), tzinfo=zi)
                for t in times:
                    wall = midnight + t  # wall-clock arithmetic, fold 0
                    found.add(wall.astimezone(UTC))
                    if d in near:
                        found.add(wall.replace(fold=1).astimezone(UTC))
                d += timedelta(days=1)
        return sorted(m for m in found if start <= m <= end)

    def next_allowed(self, at: datetime, horizon: timedelta = HORIZON) -> datetime | None:
        """The earliest moment >= ``at`` at which every time rule passes, within ``horizon``."""
        at = at.astimezone(UTC)
        for moment in self._boundaries(at, at + horizon, ends=False):
            if self.allowed(moment):
                return moment
        return None

    def legal_windows(self, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
        """The legal intervals between ``start`` and ``end`` (UTC, end exclusive)."""
        start, end = start.astimezone(UTC), end.astimezone(UTC)
        points = self._boundaries(start, end, ends=True)
        if points[-1] != end:
            points.append(end)
        out: list[tuple[datetime, datetime]] = []
        for a, b in zip(points, points[1:], strict=False):
            if a >= b or not self.allowed(a):
                continue
            if out and out[-1][1] == a:
                out[-1] = (out[-1][0], b)
            else:
                out.append((a, b))
        return out


def dial_date(at: datetime) -> date:
    return at.astimezone(UTC).date()
