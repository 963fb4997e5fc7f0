"""The one interface every check plugs into: local lists, remote sources, rules.

A :class:`Check` receives a :class:`Batch` of unique, valid numbers (with the first row's
per-row context) and returns, for each number, the reasons it found. A check that raises
makes every number of its batch ``error`` / ``SOURCE_ERROR``: nothing unverified is allowed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from .._lazy import lazy_import
from ..config import CampaignProfile
from ..engine.findings import Findings
from ..models import DataVersions, Reason

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.compute as pc
else:
    pa = lazy_import("pyarrow", globals(), "pa")
    pc = lazy_import("pyarrow.compute", globals(), "pc")

log = logging.getLogger("dncguard.sources.protocol")

#: :meth:`Batch.ids` of a batch up to this size is computed in Python (the same ids as
#: PyArrow's dictionary encoding), so that checking a few numbers does not import PyArrow.
_SMALL_BATCH = 256


@dataclass(frozen=True)
class CheckContext:
    """What the numbers are checked for: the dial time and the campaign."""

    at: datetime
    campaign: str = "default"
    purpose: str = "telemarketing"
    call_type: str = "manual"
    profile: CampaignProfile = field(default_factory=CampaignProfile)

    def selects(self, name: str) -> bool:
        """Whether the campaign profile selects this list or source (all, by default)."""
        return self.profile.lists is None or name in self.profile.lists

    def reads_wireless(self, name: str) -> bool:
        """Whether the rules read this wireless list: always, unless the profile names it in
        ``skip_wireless`` (``lists`` narrows the DNC lists only, never a rule input)."""
        return name not in self.profile.skip_wireless


@dataclass(init=False)
class Batch:
    """Unique valid numbers to check, with the context of the first row of each.

    ``extra`` holds each number's optional per-row columns (state, zip, timezone, line_type,
    subject). Numbers with the same columns may share one dict: checks must not change it
    (use :meth:`with_default`). :meth:`contexts` gives the distinct dicts and an index.

    A batch the engine builds (:meth:`coded`) holds its numbers as integers and its regions
    and states as codes into small tables; the lists of strings (:attr:`e164`,
    :attr:`region`, :attr:`state`, :attr:`extra`) are made when a check first asks for them
    (the lists and the rules' grouping work on the arrays, so a file's million numbers never
    become a million Python strings). :meth:`number`, :meth:`value` read one entry without
    making the list.
    """

    #: the lists, or None: made from ``digits``, the codes or the contexts when asked for
    _e164: list[str] | None
    digits: npt.NDArray[np.uint64]
    _region: list[str] | None
    _state: list[str | None] | None
    _extra: list[dict[str, str]] | None  # optional per-row columns: state, zip, timezone, ...
    _contexts: tuple[list[dict[str, str]], npt.NDArray[np.int64]] | None = field(
        default=None, repr=False, compare=False)
    _ids: dict[str, npt.NDArray[np.int64]] = field(default_factory=dict, repr=False,
                                                   compare=False)
    _memo: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    #: the tables of coded values: "region" and "state" -> value of each code
    _tables: dict[str, list[Any]] = field(default_factory=dict, repr=False, compare=False)

    def __init__(self, e164: list[str] | None, digits: npt.NDArray[np.uint64],
                 region: list[str] | None, state: list[str | None] | None,
                 extra: list[dict[str, str]] | None,
                 contexts: tuple[list[dict[str, str]], npt.NDArray[np.int64]] | None = None,
                 ) -> None:
        """A batch of these numbers; a list given as None is made when asked for (from
        ``digits``, the codes of :meth:`coded`, or ``contexts``)."""
        self._e164 = e164
        self.digits = digits
        self._region = region
        self._state = state
        self._extra = extra
        self._contexts = contexts
        self._ids = {}
        self._memo = {}
        self._tables = {}

    def __len__(self) -> int:
        return int(self.digits.size)

    @property
    def e164(self) -> list[str]:
        """The numbers as E.164 strings."""
        found = self._e164
        if found is None:
            found = self._e164 = ["+" + d for d in self.digits.astype(str).tolist()]
        return found

    @property
    def region(self) -> list[str]:
        """Each number's region (``US``, ``CA``, ...)."""
        if self._region is None:
            self._region = self._decoded("region")
        return self._region

    @property
    def state(self) -> list[str | None]:
        """Each number's state or province, when known."""
        if self._state is None:
            self._state = self._decoded("state")
        return self._state

    @property
    def extra(self) -> list[dict[str, str]]:
        """Each number's optional per-row columns (shared dicts: never change them)."""
        if self._extra is None:
            assert self._contexts is not None
            distinct, index = self._contexts
            self._extra = [distinct[k] for k in index.tolist()]
        return self._extra

    def _decoded(self, name: str) -> list[Any]:
        table = self._tables.get(name)
        if table is None:
            raise ValueError(f"this batch was built without its {name} values (give the list, "
                             "or build it with Batch.coded)")
        return [table[k] for k in self._ids[name].tolist()]

    def number(self, i: int) -> str:
        """Number ``i`` as an E.164 string (without making :attr:`e164`)."""
        return self._e164[i] if self._e164 is not None else f"+{int(self.digits[i])}"

    def value(self, name: str, i: int) -> Any:
        """Number ``i``'s ``region`` or ``state`` (without making the list)."""
        if name in self._tables:
            return self._tables[name][int(self._ids[name][i])]
        return self.region[i] if name == "region" else self.state[i]

    @classmethod
    def of(cls, e164: list[str], region: list[str], state: list[str | None],
           extra: list[dict[str, str]] | None = None) -> Batch:
        digits = np.array([int(e[1:]) for e in e164], dtype=np.uint64)
        return cls(e164, digits, region, state, extra or [{} for _ in e164])

    @classmethod
    def shared(cls, e164: list[str] | None, digits: npt.NDArray[np.uint64], region: list[str],
               state: list[str | None], contexts: list[dict[str, str]],
               index: npt.NDArray[np.int64]) -> Batch:
        """A batch whose numbers' ``extra`` are ``contexts[index[i]]`` (shared dicts)."""
        return cls(e164, digits, region, state, None, (contexts, index))

    @classmethod
    def coded(cls, digits: npt.NDArray[np.uint64],
              region: tuple[npt.NDArray[np.int64], list[str]],
              state: tuple[npt.NDArray[np.int64], list[str | None]],
              contexts: list[dict[str, str]], index: npt.NDArray[np.int64]) -> Batch:
        """A batch of numbers as integers whose regions and states are ``(codes, table)``
        (a table without repeated values: equal values, equal codes) and whose ``extra``
        are ``contexts[index[i]]`` (shared dicts)."""
        batch = cls(None, digits, None, None, None, (contexts, index))
        for name, (codes, table) in (("region", region), ("state", state)):
            batch._ids[name] = codes
            batch._tables[name] = list(table)
        return batch

    def ids(self, name: str) -> npt.NDArray[np.int64]:
        """Small integer ids of the ``region`` or ``state`` values (equal values, equal ids)."""
        found = self._ids.get(name)
        if found is None:
            values: list[str] | list[str | None] = self.region if name == "region" \
                else self.state
            if len(values) <= _SMALL_BATCH:  # the same ids, without importing PyArrow
                first: dict[str | None, int] = {}
                found = self._ids[name] = np.array(
                    [first.setdefault(v, len(first)) for v in values], dtype=np.int64)
                return found
            encoded = pc.dictionary_encode(pa.array(values, pa.string()),
                                           null_encoding="encode")
            found = self._ids[name] = np.asarray(
                encoded.indices.to_numpy(zero_copy_only=False), dtype=np.int64)
        return found

    def ids_known(self, name: str, ids: npt.NDArray[np.int64]) -> None:
        """Give :meth:`ids` of ``name`` (the caller's own codes of the values)."""
        self._ids[name] = ids

    def distinct(self, name: str) -> tuple[list[Any], npt.NDArray[np.int64]]:
        """The distinct ``region`` or ``state`` values (by :meth:`ids`) and each number's
        index into them: work per value instead of per number."""
        ids = self.ids(name)
        if name in self._tables:  # a coded batch: its table (a code no number has is unused)
            return list(self._tables[name]), ids
        values: list[str] | list[str | None] = self.region if name == "region" else self.state
        table: list[Any] = [None] * (int(ids.max()) + 1 if ids.size else 0)
        if ids.size:
            seen, first = np.unique(ids, return_index=True)
            for k, i in zip(seen.tolist(), first.tolist(), strict=True):
                table[k] = values[i]
        return table, ids

    def contexts(self) -> tuple[list[dict[str, str]], npt.NDArray[np.int64]]:
        """The distinct ``extra`` dicts and, per number, the index of its own."""
        if self._contexts is None:
            found: dict[tuple[tuple[str, str], ...], int] = {}
            distinct: list[dict[str, str]] = []
            index = np.empty(len(self.extra), dtype=np.int64)
            for i, extra in enumerate(self.extra):
                key = tuple(sorted(extra.items()))
                k = found.get(key)
                if k is None:
                    k = found[key] = len(distinct)
                    distinct.append(extra)
                index[i] = k
            self._contexts = (distinct, index)
        return self._contexts

    def with_default(self, which: npt.NDArray[np.bool_], key: str, value: str, *,
                     over: tuple[str, ...] = ()) -> None:
        """Set ``extra[key] = value`` for the numbers in ``which`` that have no ``key``, or
        whose ``key`` is one of ``over`` (compared without the spaces around, in lower
        case)."""
        if not which.any():
            return
        distinct, index = self.contexts()
        distinct = list(distinct)
        index = index.copy()
        moved: dict[int, int] = {}
        for k in np.unique(index[which]).tolist():
            if key not in distinct[k] or distinct[k][key].strip().lower() in over:
                moved[k] = len(distinct)
                distinct.append({**distinct[k], key: value})
        if not moved:
            return
        old = index.copy()
        for k, new in moved.items():
            index[which & (old == k)] = new
        self._contexts = (distinct, index)
        self._memo.clear()  # anything derived from the contexts
        self._extra = None  # made again from the contexts when asked for


@runtime_checkable
class Check(Protocol):
    """A source of reasons: everything the engine asks of one (see :class:`CheckBase` for
    the defaults a simple source can inherit). ``name`` appears in reasons and in campaign
    profiles."""

    name: str
    #: True: runs whatever a campaign profile's ``lists`` select (it applies the selection
    #: to its own lists itself, as the local lists and the rules do; its ``name`` selects
    #: nothing and a profile may not name it); False: runs only when the profile selects
    #: ``name`` (then it checks all its lists) or one of its lists (``versions().lists``, then
    #: it checks only those: :meth:`CheckContext.selects` of each).
    always: bool

    def versions(self) -> DataVersions:
        """The data versions this check relies on (list snapshot dates, ruleset)."""
        ...

    async def check(self, batch: Batch, ctx: CheckContext) -> list[list[Reason]]:
        """Reasons per number of ``batch`` (same order); raise to fail the batch closed."""
        ...

    async def findings(self, batch: Batch, ctx: CheckContext) -> Findings:
        """The same reasons as :class:`~dncguard.engine.findings.Findings` (what the engine calls;
        shared reason lists, no list per number)."""
        ...

    def timezones(self, batch: Batch) -> list[tuple[str, str]] | None:
        """Candidate IANA zones of each number and how they were found, or None when this
        check does not locate numbers (the verdict's ``timezone`` comes from one that does)."""
        ...


class CheckBase:
    """Defaults for a :class:`Check`: selected by name, findings from :meth:`check`, no
    time zones. A source implements ``name``, ``versions`` and ``check``."""

    name: str
    always: bool = False

    def versions(self) -> DataVersions:
        raise NotImplementedError

    async def check(self, batch: Batch, ctx: CheckContext) -> list[list[Reason]]:
        raise NotImplementedError

    async def findings(self, batch: Batch, ctx: CheckContext) -> Findings:
        return Findings.from_lists(await self.check(batch, ctx))

    def timezones(self, batch: Batch) -> list[tuple[str, str]] | None:
        return None


def locate(checks: Sequence[Check], batch: Batch) -> list[tuple[str, str]] | None:
    """The candidate zones of the numbers of ``batch`` from the first check that locates
    numbers (None: none does)."""
    for check in checks:
        found = check.timezones(batch)
        if found is not None:
            return found
    return None


__all__ = ["Batch", "Check", "CheckBase", "CheckContext", "locate"]
