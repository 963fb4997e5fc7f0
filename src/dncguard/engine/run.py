"""The one scrub engine: slices of rows in, verdict columns, summary counts and dedupe state out.

Every road a number takes goes through :class:`ScrubRun`: the CLI and library scrub of a file
(read as an Arrow table, or row by row when it does not parse as one), the service's jobs,
``/v1/check/batch`` and ``/v1/check``. A run is fed :class:`Slice` objects, string columns of
the header's width numbered from ``start + 1``, with the rows the reader could not read flagged
(``malformed``); it:

1. cleans each row's context columns per distinct value (:mod:`dncguard.engine.context`): a
   value that is not understood makes its row ``error`` / CONTEXT_INVALID, unchecked;
2. normalises the phone column with the NPA-NXX table (:func:`~dncguard.phones.normalise_arrays`);
3. deduplicates by (number, row context) against every earlier slice, as a few sorted runs;
4. hands each new key to the checks once (:meth:`Scrubber.check_groups`), whose
   :class:`~dncguard.engine.findings.Findings` merge into shared outcomes;
5. gives the slice's verdicts as columns (:meth:`SliceVerdicts.columns`, what a verdict file
   holds), as rows (:meth:`SliceVerdicts.results`, what the API answers) and as counts (added
   to the run's :class:`~dncguard.engine.summary.SummaryBuilder`).

A run resumes from its committed slices: :meth:`ScrubRun.skip` replays a slice into the dedupe
state without checking it; a later row that repeats a key only a skipped slice held is checked
again in its own slice (a resumed job writes the same bytes as one that never stopped).
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, deque
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from .._lazy import lazy_import
from ..errors import ContextError, InputError
from ..io.tables import context_columns, find_phone_column
from ..io.verdict_file import ADDED_COLUMNS, iso_utc
from ..models import Decision, Reason, ReasonCode
from ..phones import (
    ERROR_CODES,
    NormalisedArrays,
    normalise_arrays,
    npa_state_index,
    npa_state_table,
)
from ..places import address_state, australian_state, uk_postcode
from ..sources.protocol import Batch, CheckContext, locate
from ..sources.rules import zone_in_country
from .context import (
    CONTEXT_FIELDS,
    clean_field,
    clean_row_defaults,
    place_problem,
    scope_column_refusal,
    scope_columns,
)
from .findings import Index, Outcome, compact, renumber
from .summary import MAX_ROW_ERRORS_LISTED, SummaryBuilder, place_key

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.compute as pc

    from .scrubber import Scrubber
else:
    pa = lazy_import("pyarrow", globals(), "pa")
    pc = lazy_import("pyarrow.compute", globals(), "pc")

log = logging.getLogger("dncguard.engine")

_DECISIONS = list(Decision)
_DECISION_ID = {d: i for i, d in enumerate(_DECISIONS)}
_SUPPRESSED_IDS = [_DECISION_ID[d] for d in (Decision.BLOCK, Decision.DEFER, Decision.ERROR)]
#: outcome ids of keys not known yet: checked in a slice still in flight, or held only by a
#: slice replayed with :meth:`ScrubRun.skip` (checked again where it appears next)
_PENDING = -1
_SKIPPED = -2
#: Below this many rows a slice's contexts are read row by row (a group of single checks)
_FEW_ROWS = 64


@dataclass
class RowResult:
    """One row's verdict as objects (what the API answers; files take the columns)."""

    row: int
    input: str
    e164: str | None
    region: str | None
    state: str | None
    decision: Decision
    reasons: list[Reason]
    next_allowed_at: datetime | None
    duplicate_of: int | None = None  # first row with the same number and row context
    error: tuple[int, str, str] | None = None  # (row, field, message) for bad input
    number_dup: bool = False  # the number appeared before (in any row context)
    timezone: tuple[str, str] | None = None  # candidate zones and how they were found


@dataclass
class Slice:
    """Rows to scrub: string columns of the header's width, row numbers ``start + 1`` on;
    ``malformed`` maps a position in the slice to the reader's reason it could not read the
    row (its cells are then whatever the reader kept, and it is not checked)."""

    columns: list[pa.Array]
    start: int
    malformed: dict[int, str] = field(default_factory=dict)
    #: the same cells as Python lists, row by row, when the caller has them (a few rows: a
    #: group of single checks reads them without converting the columns back)
    cells: list[list[str]] | None = None

    def __len__(self) -> int:
        return len(self.columns[0]) if self.columns else 0


def slices_of_table(table: pa.Table, size: int) -> Iterable[Slice]:
    """A table's rows as slices of ``size`` rows."""
    for start in range(0, table.num_rows, size):
        part = table.slice(start, size)
        yield Slice([c.combine_chunks() for c in part.columns], start)


def slice_of_rows(rows: list[list[str]], start: int, width: int,
                  malformed: dict[int, str] | None = None) -> Slice:
    """Rows as lists of cells (each ``width`` long) as a slice."""
    n = len(rows)
    # one conversion for every cell, column by column; each column a zero-copy slice of it
    cells = pa.array([r[i] for i in range(width) for r in rows], pa.string())
    columns = [cells.slice(i * n, n) for i in range(width)]
    return Slice(columns, start, dict(malformed or {}), rows if n < _FEW_ROWS else None)


_Run = tuple[npt.NDArray[np.uint64], npt.NDArray[np.int64], npt.NDArray[np.int64]]


@dataclass
class SortedRuns:
    """Keys seen so far with their first row and an id, as a few sorted runs: each slice adds
    a run and runs of similar size merge (in linear time), so a file's keys are merged
    O(log slices) times and looked up in O(log slices) runs."""

    runs: list[_Run] = field(default_factory=list)

    def find(self, keys: npt.NDArray[np.uint64]
             ) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """Which keys were seen, and their first rows and ids (0 where not)."""
        found = np.zeros(keys.size, dtype=bool)
        if not self.runs:
            return found, np.zeros(keys.size, dtype=np.int64), np.zeros(keys.size, dtype=np.int64)
        row = np.zeros(keys.size, dtype=np.int64)
        ident = np.zeros(keys.size, dtype=np.int64)
        for values, rows, ids in self.runs:
            pos = np.minimum(np.searchsorted(values, keys), values.size - 1)
            hit = values[pos] == keys
            found |= hit
            row[hit] = rows[pos[hit]]
            ident[hit] = ids[pos[hit]]
        return found, row, ident

    def add(self, keys: npt.NDArray[np.uint64], row: npt.NDArray[np.int64],
            ident: npt.NDArray[np.int64]) -> None:
        """Add keys (sorted, none seen before)."""
        if not keys.size:
            return
        self.runs.append((keys, row, ident))
        while len(self.runs) > 1 and self.runs[-2][0].size <= 2 * self.runs[-1][0].size:
            (a, ra, ia), (b, rb, ib) = self.runs.pop(-2), self.runs.pop()
            # two sorted runs of distinct keys: a stable sort of the two (timsort, which
            # merges runs in linear time) is about three times faster than np.insert
            merged = np.concatenate((a, b))
            order = np.argsort(merged, kind="stable")
            self.runs.append((merged[order], np.concatenate((ra, rb))[order],
                              np.concatenate((ia, ib))[order]))


@dataclass
class _Strings:
    """The verdict cells of each outcome."""

    decision: list[str] = field(default_factory=list)
    codes: list[str] = field(default_factory=list)
    codes_dup: list[str] = field(default_factory=list)
    detail_dup: list[str] = field(default_factory=list)  # detail + "; " (when any)
    detail: list[str] = field(default_factory=list)
    next_at: list[str] = field(default_factory=list)
    decision_id: list[int] = field(default_factory=list)

    def add(self, outcomes: list[Outcome]) -> None:
        for o in outcomes:
            codes = list(dict.fromkeys(r.code for r in o.reasons))
            detail = "; ".join(r.detail for r in o.reasons if r.detail)
            self.decision.append(o.decision.value)
            self.decision_id.append(_DECISION_ID[o.decision])
            self.codes.append(";".join(codes))
            self.codes_dup.append(";".join(dict.fromkeys([*codes, ReasonCode.DUPLICATE])))
            self.detail.append(detail)
            self.detail_dup.append(f"{detail}; " if detail else "")
            self.next_at.append(iso_utc(o.next_allowed_at))


@dataclass
class Prepared:
    """A slice between normalisation and its verdicts. Arrays named per valid row hold one
    value per row that was checked (``okpos`` gives their positions in the slice)."""

    slice: Slice
    rows: npt.NDArray[np.int64]  # every row's number
    norm: NormalisedArrays
    flagged: npt.NDArray[np.bool_]  # malformed or context not understood: not normalised
    problems: dict[int, tuple[str, str]]  # position -> (column, why) of a context refused
    okpos: npt.NDArray[np.int64]
    ctx: npt.NDArray[np.int64]  # per valid row: its row context id
    state: npt.NDArray[np.int64]  # per valid row: its state's code in ScrubRun.state_names
    unique: npt.NDArray[np.int64]  # per valid row: its key's id
    row_first: npt.NDArray[np.int64]  # per valid row: the first row with the key
    dup: npt.NDArray[np.bool_]  # per valid row: shares an earlier row's verdict (DUPLICATE)
    ndup: npt.NDArray[np.bool_]  # per valid row: its number appeared before (any context)
    batch: Batch | None  # the keys to check
    batch_ids: npt.NDArray[np.int64]  # their key ids
    #: per valid row: its number's id (one per number in the run, whatever the context)
    number: npt.NDArray[np.int64]


class ScrubRun:
    """One scrub (a file, a job, a batch request, a group of single checks): see the module
    docstring. ``builder`` receives the counts of every finished slice; ``zones``: find each
    checked key's candidate time zones (the API's verdicts carry them)."""

    def __init__(self, scrubber: Scrubber, header: list[str], ctx: CheckContext, *,
                 phone_column: str | None = None, defaults: dict[str, str] | None = None,
                 builder: SummaryBuilder | None = None, zones: bool = False) -> None:
        self.scrubber = scrubber
        self.header = header
        self.ctx = ctx
        self.phone = find_phone_column(header, phone_column) if header else 0
        self.phone_name = header[self.phone] if header else (phone_column or "phone")
        self.defaults = dict(defaults or {})
        if not set(self.defaults) <= set(CONTEXT_FIELDS):
            clean_row_defaults(self.defaults)  # refuses the field, naming it
        scoped = scope_columns(header) if header else []
        if scoped:
            raise InputError(scope_column_refusal(scoped[0]))
        self.builder = builder
        self.zones = zones
        self.zone_of: dict[int, tuple[str, str]] = {}  # key id -> zones
        self.context_columns = list(context_columns(header).items()) if header else []
        self._cleaned: dict[tuple[str, str], str | ContextError] = {}
        self._raw_contexts: dict[tuple[str, ...], int | tuple[str, str]] = {}
        self._ctx_ids: dict[tuple[str, ...], int] = {}
        self.contexts: list[dict[str, str]] = []  # per row context id: the row's own values
        self._ctx_state: list[str] = []
        #: per row context: its ZIP or postal code's state when it names no state itself
        self._ctx_zip_state: list[str] = []
        #: per row context: whether its ZIP is a UK postcode (refused for a non-UK number)
        self._ctx_uk_post: list[bool] = []
        self._ctx_au_state: list[bool] = []
        #: per row context: its time zone (refused for a number of another country)
        self._ctx_zone: list[str] = []
        self._ctx_region: list[str] = []
        if not self.context_columns:
            self._context_id(())
        self.keys = SortedRuns()  # (number, row context) -> first row, key id
        self.numbers = SortedRuns()  # number -> first row, number id (with context columns)
        self.key_count = 0
        self.number_count = 0
        self.outcome_of = np.zeros(0, dtype=np.int64)  # key id -> outcome id (or _PENDING...)
        #: number id -> whether uniqueSuppressed counted it (:meth:`newly_suppressed`)
        self._suppressed = np.zeros(0, dtype=bool)
        self._suppressed_count = 0  # of its bits set
        self.outcomes: list[Outcome] = []
        self.strings = _Strings()
        #: the states rows are counted and checked under: the area codes' states first (in
        #: the order of npa_state_table, so an area code's index is its code), then the rows'
        #: own and the defaults, each once
        self.state_names: list[str] = list(npa_state_table()[0])
        self._state_codes = {name: i for i, name in enumerate(self.state_names)}

    # -- row contexts -------------------------------------------------------------------------
    def _context_id(self, values: tuple[str, ...]) -> int:
        found = self._ctx_ids.get(values)
        if found is None:
            found = self._ctx_ids[values] = len(self.contexts)
            own = {name: v for (name, _), v in zip(self.context_columns, values, strict=True)
                   if v}
            self.contexts.append(own)
            self._ctx_state.append(own.get("state", ""))
            self._ctx_zip_state.append("" if own.get("state") else
                                       address_state(own.get("zip", "")) or "")
            self._ctx_uk_post.append(uk_postcode(own.get("zip", "")))
            self._ctx_au_state.append(australian_state(own.get("state", "")) is not None)
            self._ctx_zone.append(own.get("timezone", ""))
            self._ctx_region.append(own.get("region", ""))
        return found

    def _row_contexts(self, sl: Slice, flagged: npt.NDArray[np.bool_]
                      ) -> tuple[npt.NDArray[np.int64], dict[int, tuple[str, str]]]:
        """Each row's context id, and the rows whose context holds a value that is not
        understood (the first such column and why)."""
        n = len(sl)
        if not self.context_columns:
            return np.zeros(n, dtype=np.int64), {}
        if n < _FEW_ROWS:
            return self._few_row_contexts(sl, flagged)
        problems: dict[int, tuple[str, str]] = {}
        bad = flagged.copy()
        per_column: list[tuple[list[str], npt.NDArray[np.int64]]] = []
        for name, col in self.context_columns:
            encoded = pc.dictionary_encode(sl.columns[col])
            canon: list[str] = []
            ids: dict[str, int] = {}
            per_value = np.empty(len(encoded.dictionary), dtype=np.int64)
            refused: dict[int, str] = {}
            for i, raw in enumerate(encoded.dictionary.to_pylist()):
                hit = self._cleaned_value(name, raw)
                if isinstance(hit, ContextError):
                    refused[i] = hit.why
                    per_value[i] = -1
                    continue
                per_value[i] = ids.setdefault(hit, len(canon))
                if per_value[i] == len(canon):
                    canon.append(hit)
            own = per_value[np.asarray(encoded.indices.to_numpy(zero_copy_only=False),
                                       dtype=np.int64)]
            if refused:
                column = self.header[col]
                for i in np.flatnonzero((own < 0) & ~bad).tolist():
                    problems[i] = (column, refused[int(encoded.indices[i].as_py())])
                bad |= own < 0
            per_column.append((canon, own))
        row_ctx = np.zeros(n, dtype=np.int64)
        good = np.flatnonzero(~bad)
        if good.size:
            # one integer per combination of the columns' values, renumbered after each
            # column so that it never overflows; then each combination's context id once
            key = np.zeros(good.size, dtype=np.int64)
            bound = 1  # every key is below it
            for canon, own in per_column:
                used, key = renumber(key, bound)
                width = max(len(canon), 1)
                key = key * width + own[good]
                bound = used.size * width
            _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
            ids_of = np.array([self._context_id(tuple(canon[int(own[good[i]])]
                                                      for canon, own in per_column))
                               for i in first.tolist()], dtype=np.int64)
            row_ctx[good] = ids_of[inverse.reshape(-1)]
        return row_ctx, problems

    def _cleaned_value(self, name: str, raw: str) -> str | ContextError:
        hit = self._cleaned.get((name, raw))
        if hit is None:
            try:
                hit = clean_field(name, raw)
            except ContextError as exc:
                hit = exc
            self._cleaned[(name, raw)] = hit
        return hit

    def _few_row_contexts(self, sl: Slice, flagged: npt.NDArray[np.bool_]
                          ) -> tuple[npt.NDArray[np.int64], dict[int, tuple[str, str]]]:
        """:meth:`_row_contexts` of a few rows (a group of single checks), row by row: the
        same ids and refusals, without an array pass per column."""
        rows = sl.cells if sl.cells is not None else [
            list(r) for r in zip(*(c.to_pylist() for c in sl.columns), strict=True)]
        row_ctx = np.zeros(len(sl), dtype=np.int64)
        problems: dict[int, tuple[str, str]] = {}
        columns = [col for _, col in self.context_columns]
        for i in np.flatnonzero(~flagged).tolist():
            raw = tuple(rows[i][col] for col in columns)
            found = self._raw_contexts.get(raw)
            if found is None:
                found = self._raw_contexts[raw] = self._context_of(raw)
            if isinstance(found, tuple):
                problems[i] = found
            else:
                row_ctx[i] = found
        return row_ctx, problems

    def _context_of(self, raw: tuple[str, ...]) -> int | tuple[str, str]:
        """The context id of a row's raw context cells, or (column, why) of the first cell
        that is not understood."""
        values: list[str] = []
        for (name, col), cell in zip(self.context_columns, raw, strict=True):
            hit = self._cleaned_value(name, cell)
            if isinstance(hit, ContextError):
                return (self.header[col], hit.why)
            values.append(hit)
        return self._context_id(tuple(values))

    # -- one slice ----------------------------------------------------------------------------
    def prepare(self, sl: Slice, *, check: bool = True) -> Prepared:
        """Normalise a slice and find its keys to check (all of them new, or held only by a
        skipped slice). ``check=False`` (:meth:`skip`): remember the keys, check nothing."""
        n = len(sl)
        rows = np.arange(sl.start + 1, sl.start + n + 1, dtype=np.int64)
        flagged = np.zeros(n, dtype=bool)
        if sl.malformed:
            flagged[list(sl.malformed)] = True
        row_ctx, problems = self._row_contexts(sl, flagged)
        if problems:
            flagged[list(problems)] = True
        fallback = self.defaults.get("region") or self.scrubber.settings.default_region
        hints: list[str] | str = fallback
        if any(self._ctx_region):
            region_of = np.array(self._ctx_region, dtype=object)
            hints = [h or fallback for h in region_of[row_ctx].tolist()]
        phone: pa.Array | list[str] = (
            [r[self.phone] for r in sl.cells] if sl.cells is not None
            else sl.columns[self.phone] if sl.columns else pa.array([], pa.string()))
        norm = normalise_arrays(phone, hints)
        self._refuse_foreign_places(norm, row_ctx, flagged, problems)
        okpos = np.flatnonzero(norm.ok & ~flagged)
        digits = norm.digits[okpos]
        rctx = row_ctx[okpos]

        # -- each valid row's state (a code into state_names): its own column, the default,
        # else by area code
        state = npa_state_index(digits)  # the area codes' states lead state_names
        given = self.defaults.get("state", "")
        if given:
            state[:] = self._state_code(given)
        if any(self._ctx_state):
            own = np.array([self._state_code(v) for v in self._ctx_state], dtype=np.int64)[rctx]
            state = np.where(own != 0, own, state)
        shown = self._shown_states(state, rctx)

        # -- deduplicate, within the slice and against every earlier slice -----------------
        if self.context_columns:
            number_id, ndup = self._numbers(digits, rows[okpos])
            key = (number_id.astype(np.uint64) << np.uint64(32)) | rctx.astype(np.uint64)
        else:
            key = digits
        uniq, first, inverse = np.unique(key, return_index=True, return_inverse=True)
        found, seen_row, uniq_id = self.keys.find(uniq)
        new = np.flatnonzero(~found)
        uniq_row = np.where(found, seen_row, rows[okpos[first]])
        if new.size:
            uniq_id[new] = self.key_count + np.arange(new.size)
            self.key_count += int(new.size)
            self.outcome_of = np.concatenate([self.outcome_of, np.full(
                new.size, _PENDING if check else _SKIPPED, dtype=np.int64)])
            self.keys.add(uniq[new], uniq_row[new], uniq_id[new])
        inverse = inverse.reshape(-1)
        row_first = uniq_row[inverse]
        dup = row_first != rows[okpos]
        if not self.context_columns:
            ndup = dup
        batch = None
        batch_ids = np.zeros(0, dtype=np.int64)
        if check:
            ask = np.flatnonzero(self.outcome_of[uniq_id] == _SKIPPED) if found.any() \
                else np.zeros(0, dtype=np.int64)
            ask = np.union1d(new, ask) if ask.size else new
            if ask.size:
                batch_ids = uniq_id[ask]
                self.outcome_of[batch_ids] = _PENDING
                at = first[ask]
                batch = self._batch(norm, okpos[at], digits[at], state[at], rctx[at])
        # (without context columns a key is a number)
        number = number_id if self.context_columns else uniq_id[inverse]
        return Prepared(sl, rows, norm, flagged, problems, okpos, rctx, shown,
                        uniq_id[inverse], row_first, dup, ndup, batch, batch_ids,
                        number.astype(np.int64, copy=False))

    def _flagged_contexts(self, per_ctx: list[bool], default: bool, field: str,
                          row_ctx: npt.NDArray[np.int64]
                          ) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]] | None:
        """The rows whose ``field`` is flagged in ``per_ctx`` (per distinct context), or that
        give none while the default is flagged; and the rows that give one. None when no row
        can be."""
        own = bool(self.context_columns) and any(per_ctx)
        if not (own or default) or not len(row_ctx):
            return None
        given = np.array([bool(c.get(field)) for c in self.contexts], dtype=bool)[row_ctx]
        hit = np.array(per_ctx, dtype=bool)[row_ctx] if own \
            else np.zeros(len(row_ctx), dtype=bool)
        if default:
            hit |= ~given
        return hit, given

    def _refuse_foreign_places(self, norm: NormalisedArrays, row_ctx: npt.NDArray[np.int64],
                               flagged: npt.NDArray[np.bool_],
                               problems: dict[int, tuple[str, str]]) -> None:
        """Refuse (into ``flagged`` and ``problems``) the rows whose state, ZIP or time zone,
        their own or the default, cannot be read for their number's country
        (:func:`dncguard.engine.context.place_problem`: a UK postcode on another country's
        number, an Australian state's code on an Australian number, a zone outside the
        number's country). The candidates are found per distinct context and country with
        arrays; the rule and its words are ``place_problem``'s."""
        uk = self._flagged_contexts(self._ctx_uk_post,
                                    uk_postcode(self.defaults.get("zip", "")), "zip", row_ctx)
        au = self._flagged_contexts(self._ctx_au_state,
                                    australian_state(self.defaults.get("state", "")) is not None,
                                    "state", row_ctx)
        tz = self._foreign_zones(norm, row_ctx)
        if uk is None and au is None and tz is None:
            return
        names = norm.region_names
        maybe = np.zeros(len(norm), dtype=bool) if tz is None else tz
        if uk is not None:
            maybe |= uk[0] & ~np.isin(norm.region, [i for i, n in enumerate(names) if n == "GB"])
        if au is not None:
            maybe |= au[0] & np.isin(norm.region, [i for i, n in enumerate(names) if n == "AU"])
        columns = dict(self.context_columns)
        for i in np.flatnonzero(maybe & norm.ok & ~flagged).tolist():
            own = self.contexts[int(row_ctx[i])]
            found = place_problem(names[int(norm.region[i])],
                                  own.get("state") or self.defaults.get("state", ""),
                                  own.get("zip") or self.defaults.get("zip", ""),
                                  own.get("timezone") or self.defaults.get("timezone", ""))
            if found is None:
                continue
            field, why = found
            col = columns.get(field)
            problems[i] = (self.header[col] if field in own and col is not None else field, why)
            flagged[i] = True

    def _foreign_zones(self, norm: NormalisedArrays, row_ctx: npt.NDArray[np.int64]
                       ) -> npt.NDArray[np.bool_] | None:
        """The rows whose time zone, their own or the default, is not one of their number's
        country (:func:`~dncguard.sources.rules._zones.zone_in_country`, asked once per
        distinct zone and country); None when no row gives a zone."""
        default = self.defaults.get("timezone", "")
        if not default and not any(self._ctx_zone):
            return None
        zones = sorted({*self._ctx_zone, default} - {""})
        index = {z: i + 1 for i, z in enumerate(zones)}  # 0: no zone
        of_ctx = np.array([index.get(z or default, 0) for z in self._ctx_zone], dtype=np.int64)
        names = norm.region_names
        foreign = np.zeros((len(zones) + 1, len(names)), dtype=bool)
        for z, i in index.items():
            foreign[i] = [bool(n) and not zone_in_country(z, n) for n in names]
        return np.asarray(foreign[of_ctx[row_ctx], norm.region.astype(np.int64)], dtype=bool)

    def _shown_states(self, state: npt.NDArray[np.int64], rctx: npt.NDArray[np.int64]
                      ) -> npt.NDArray[np.int64]:
        """The state each valid row's verdict names and is counted under: the row's own
        state, else its ZIP or postal code's, else the default state, else the default
        ZIP's, else the area code's. A ZIP's state counts whatever the number's country, as
        the rules and state lists read it (:func:`dncguard.places.address_state`: a military
        post code names no state). ``state`` (what the checks are given) is left as it is: the
        rules and state lists take the ZIP's state as a candidate of their own."""
        default_zip = ("" if self.defaults.get("state") else
                       address_state(self.defaults.get("zip", "")) or "")
        if not default_zip and not any(self._ctx_zip_state):
            return state
        own_state = np.array([bool(v) for v in self._ctx_state], dtype=bool)[rctx]
        own_zip = np.array([self._state_code(v) for v in self._ctx_zip_state],
                           dtype=np.int64)[rctx]
        shown = np.where(own_zip != 0, own_zip, state)
        if default_zip:
            shown = np.where((own_zip == 0) & ~own_state, self._state_code(default_zip), shown)
        return shown

    def _numbers(self, digits: npt.NDArray[np.uint64], rows: npt.NDArray[np.int64]
                 ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
        """Each row's number id, and whether its number appeared in an earlier row."""
        uniq, first, inverse = np.unique(digits, return_index=True, return_inverse=True)
        found, seen_row, ident = self.numbers.find(uniq)
        first_row = np.where(found, seen_row, rows[first])
        new = np.flatnonzero(~found)
        ident[new] = self.number_count + np.arange(new.size)
        self.number_count += int(new.size)
        self.numbers.add(uniq[new], first_row[new], ident[new])
        inverse = inverse.reshape(-1)
        result: npt.NDArray[np.bool_] = first_row[inverse] != rows
        return ident[inverse], result

    def _state_code(self, name: str) -> int:
        """The code of a state name in :attr:`state_names` (0: ``""``, none)."""
        found = self._state_codes.get(name)
        if found is None:
            found = self._state_codes[name] = len(self.state_names)
            self.state_names.append(name)
        return found

    def _batch(self, norm: NormalisedArrays, pos: npt.NDArray[np.int64],
               digits: npt.NDArray[np.uint64], state: npt.NDArray[np.int64],
               rctx: npt.NDArray[np.int64]) -> Batch:
        """The keys' numbers with their rows' context (defaults under the row's own)."""
        used, index = compact(rctx, len(self.contexts))
        contexts = [{**self.defaults, **self.contexts[c]} for c in used.tolist()]
        return Batch.coded(digits, (norm.region[pos].astype(np.int64), list(norm.region_names)),
                           (state, [v or None for v in self.state_names]), contexts, index)

    async def check(self, p: Prepared) -> tuple[list[Outcome], Index] | None:
        """The outcomes of the slice's keys to check (None: nothing to check)."""
        if p.batch is None:
            return None
        return await self.scrubber.check_groups(p.batch, self.ctx)

    def finish(self, p: Prepared, found: tuple[list[Outcome], Index] | None) -> SliceVerdicts:
        """The slice's verdicts once its keys are checked; its counts go to ``builder``."""
        if found is not None:
            outcomes, index = found
            self.outcome_of[p.batch_ids] = index + len(self.outcomes)
            self.outcomes.extend(outcomes)
            self.strings.add(outcomes)
            if self.zones and p.batch is not None:
                located = locate(self.scrubber.checks, p.batch)
                if located is not None:
                    self.zone_of.update(zip(p.batch_ids.tolist(), located, strict=True))
        outcome = self.outcome_of[p.unique]
        if outcome.size and int(outcome.min()) < 0:  # never a verdict without its checks
            raise RuntimeError("a key's outcome is not known: the slices were finished out "
                               "of order")
        verdicts = SliceVerdicts(self, p, outcome)
        if self.builder is not None:
            verdicts.count(self.builder)
        return verdicts

    async def scrub(self, sl: Slice) -> SliceVerdicts:
        """Prepare, check and finish one slice."""
        p = self.prepare(sl)
        return self.finish(p, await self.check(p))

    def skip(self, sl: Slice, suppressed: npt.NDArray[np.bool_] | None = None) -> None:
        """Replay a slice already scrubbed (a resumed job's committed chunks) into the dedupe
        state: its keys are remembered, nothing is checked or counted. ``suppressed``: per
        row of the slice, whether its committed verdict was block, defer or error; those
        rows' numbers count as counted for ``uniqueSuppressed`` (their chunk's summary
        counted them), the others may still be counted by a later row, as in a run that was
        never interrupted. Without it every number of the slice counts as counted (a later
        row of one is never counted twice, and may be missed)."""
        p = self.prepare(sl, check=False)
        if suppressed is None or len(suppressed) != len(sl):
            self.newly_suppressed(p.number)
        else:
            self.newly_suppressed(p.number[suppressed[p.okpos]])

    def newly_suppressed(self, numbers: npt.NDArray[np.int64]) -> int:
        """How many of ``numbers`` (number ids of rows decided block, defer or error) no
        earlier call named, remembering them: a number counts as suppressed once, when any
        of its rows is, whatever the rows' order."""
        if not numbers.size:
            return 0
        need = int(numbers.max()) + 1
        if self._suppressed.size < need:
            grown = np.zeros(max(need, 2 * self._suppressed.size), dtype=bool)
            grown[:self._suppressed.size] = self._suppressed
            self._suppressed = grown
        fresh = numbers[~self._suppressed[numbers]]
        if not fresh.size:
            return 0
        self._suppressed[fresh] = True
        # the bits set now, less those set before: each number once, however often it is
        # named (a count of set bytes costs far less than sorting the numbers to unique them)
        total = int(np.count_nonzero(self._suppressed))
        new, self._suppressed_count = total - self._suppressed_count, total
        return new

    async def run(self, slices: Iterable[Slice] | AsyncIterator[Slice],
                  write: Callable[[SliceVerdicts], None],
                  progress: Callable[[int], None] | None = None,
                  in_flight: int = 1) -> None:
        """Scrub every slice in a pipeline: while up to ``in_flight`` slices' keys are
        checked, the next slice is read and prepared, and the one before is written (in a
        thread). Slices finish and are written in order; ``progress`` gets the rows written
        so far."""
        loop = asyncio.get_running_loop()
        writing: asyncio.Future[None] | None = None
        checking: deque[tuple[Prepared, asyncio.Task[tuple[list[Outcome], Index] | None]]] = \
            deque()
        written = 0
        started: list[asyncio.Task[tuple[list[Outcome], Index] | None]] = []

        async def finish(prepared: Prepared,
                         task: asyncio.Task[tuple[list[Outcome], Index] | None]) -> None:
            nonlocal writing, written
            verdicts = self.finish(prepared, await task)
            if writing is not None:
                await writing
                if progress:
                    progress(written)
            written = prepared.slice.start + len(prepared.slice)
            writing = loop.run_in_executor(None, write, verdicts)

        source = _aiter(slices)
        try:
            async for sl in source:
                prepared = await loop.run_in_executor(None, self.prepare, sl)
                task = asyncio.ensure_future(self.check(prepared))
                started.append(task)
                checking.append((prepared, task))
                while len(checking) > max(in_flight, 1):
                    await finish(*checking.popleft())
            while checking:
                await finish(*checking.popleft())
            if writing is not None:
                await writing
                writing = None
                if progress:
                    progress(written)
        finally:
            # an error: stop the checks still running, let the write finish before the file
            # closes
            pending = [t for t in started if not t.done()]
            for t in pending:
                t.cancel()
            if pending:
                await asyncio.wait(pending)
            for t in started:  # a failure already raised: do not report it again
                if not t.cancelled():
                    t.exception()
            if writing is not None:
                await asyncio.wait([writing])


async def _aiter(slices: Iterable[Slice] | AsyncIterator[Slice]) -> AsyncIterator[Slice]:
    if isinstance(slices, AsyncIterator):
        async for sl in slices:
            yield sl
        return
    loop = asyncio.get_running_loop()
    it = iter(slices)

    def following() -> Slice | None:
        return next(it, None)

    while True:  # reading the next slice (a file) runs in a thread
        got: Slice | None = await loop.run_in_executor(None, following)
        if got is None:
            return
        yield got


class SliceVerdicts:
    """One finished slice's verdicts: as the verdict file's columns, as row objects, as
    counts."""

    def __init__(self, run: ScrubRun, p: Prepared, outcome: npt.NDArray[np.int64]) -> None:
        self.run = run
        self.p = p
        self.outcome = outcome  # per valid row

    def __len__(self) -> int:
        return len(self.p.slice)

    @property
    def start(self) -> int:
        return self.p.slice.start

    # -- the rows not checked ---------------------------------------------------------------
    def _special(self) -> list[tuple[int, Decision, ReasonCode, str, tuple[str, str]]]:
        """(position, decision, code, detail, (field, message)) of every row refused before
        its number was read: malformed rows and contexts not understood, in row order."""
        p = self.p
        out = []
        for i in np.flatnonzero(p.flagged).tolist():
            row = int(p.rows[i])
            msg = p.slice.malformed.get(i)
            if msg is not None:
                out.append((i, Decision.INVALID, ReasonCode.MALFORMED_ROW,
                            f"row {row}: {msg}", ("*", msg)))
            else:
                column, why = p.problems[i]
                out.append((i, Decision.ERROR, ReasonCode.CONTEXT_INVALID,
                            f"row {row}, column {column!r}: {why}; the row was not checked",
                            (column, why)))
        return out

    # -- as the verdict file's columns ------------------------------------------------------
    def input_columns(self) -> list[pa.Array]:
        return list(self.p.slice.columns)

    def columns(self) -> list[pa.Array]:
        """The added columns (:data:`~dncguard.verdicts.ADDED_COLUMNS`). Cells shared by an
        outcome's rows are dictionary-encoded (each string once); only duplicates' and bad
        rows' details are built per row."""
        p, s = self.p, self.run.strings
        norm = p.norm
        used, local = compact(self.outcome, len(self.run.outcomes))
        pick = used.tolist()
        k = len(pick)
        bad = np.flatnonzero(~norm.ok & ~p.flagged)
        special = self._special()
        spos = np.array([x[0] for x in special], dtype=np.int64)
        duppos = p.okpos[p.dup]

        def encoded(index: npt.NDArray[np.int64], values: list[str] | pa.Array
                    ) -> pa.DictionaryArray:
            return pa.DictionaryArray.from_arrays(pa.array(index, pa.int64()),
                                                  pa.array(values, pa.string()))

        def of(values: list[str]) -> list[str]:
            return [values[i] for i in pick]

        n = p.rows.size
        # decision and next_allowed_at: the outcome's; "invalid" / "error" and "" otherwise
        index = np.full(n, k, dtype=np.int64)
        index[p.okpos] = local
        dec_index = index.copy()
        dec_index[spos] = [k if d is Decision.INVALID else k + 1 for _, d, *_ in special]
        decision = encoded(dec_index, [*of(s.decision), Decision.INVALID.value,
                                       Decision.ERROR.value])
        next_at = encoded(index, [*of(s.next_at), ""])
        # reason codes: the outcome's, the outcome's plus DUPLICATE, or the bad row's code
        codes_index = index.copy()
        codes_index[duppos] += k
        codes_index[bad] = 2 * k + norm.error[bad].astype(np.int64)
        base = 2 * k + len(ERROR_CODES)
        codes_index[spos] = [base if c is ReasonCode.MALFORMED_ROW else base + 1
                             for _, _, c, *_ in special]
        codes = encoded(codes_index, [*of(s.codes), *of(s.codes_dup),
                                      *(c.value if c else "" for c in ERROR_CODES),
                                      ReasonCode.MALFORMED_ROW.value,
                                      ReasonCode.CONTEXT_INVALID.value])
        # detail: the outcome's; its own for a duplicate or a bad row
        detail_index = index.copy()
        detail_index[duppos] = k + np.arange(duppos.size)
        detail_index[bad] = k + duppos.size + np.arange(bad.size)
        detail_index[spos] = k + duppos.size + bad.size + np.arange(spos.size)
        dup_detail = pc.binary_join_element_wise(
            pa.array(of(s.detail_dup), pa.string()).take(pa.array(local[p.dup], pa.int64())),
            "duplicate of row ",
            pc.cast(pa.array(p.row_first[p.dup], pa.int64()), pa.string()), "")
        bad_detail = pc.binary_join_element_wise(
            "row ", pc.cast(pa.array(p.rows[bad], pa.int64()), pa.string()),
            f", field {self.run.phone_name!r}: ",
            pa.array(list(norm.message_texts), pa.string()).take(
                pa.array(norm.message[bad], pa.int32())), "")
        detail = encoded(detail_index, pa.concat_arrays(
            [pa.array(of(s.detail), pa.string()), dup_detail.cast(pa.string()),
             bad_detail.cast(pa.string()), pa.array([x[3] for x in special], pa.string())]))
        has = (norm.digits != 0) & ~p.flagged
        e164 = pc.if_else(pa.array(has), pc.binary_join_element_wise(
            "+", pc.cast(pa.array(norm.digits), pa.string()), ""), "")
        out = [e164, decision, codes, detail, next_at]
        assert len(out) == len(ADDED_COLUMNS)
        return out

    # -- as rows ----------------------------------------------------------------------------
    def results(self) -> list[RowResult]:
        """Every row's verdict as a :class:`RowResult` (duplicates carry DUPLICATE)."""
        p, run = self.p, self.run
        norm = p.norm
        sl = p.slice
        phone = ([r[run.phone] for r in sl.cells] if sl.cells is not None
                 else sl.columns[run.phone].to_pylist() if sl.columns else [])
        out: list[RowResult | None] = [None] * p.rows.size
        for i, decision, code, detail, err in self._special():
            row = int(p.rows[i])
            out[i] = RowResult(row, phone[i], None, None, None, decision,
                               [Reason(code=code, decision=decision, detail=detail)], None,
                               error=(row, *err))
        texts, names = norm.message_texts, norm.region_names
        for i in np.flatnonzero(~norm.ok & ~p.flagged).tolist():
            row = int(p.rows[i])
            bad_code = ERROR_CODES[int(norm.error[i])]
            assert bad_code is not None
            msg = texts[int(norm.message[i])]
            e164 = f"+{int(norm.digits[i])}" if norm.digits[i] else None
            reason = Reason(code=bad_code, decision=Decision.INVALID,
                            detail=f"row {row}, field {run.phone_name!r}: {msg}")
            out[i] = RowResult(row, phone[i], e164, names[int(norm.region[i])] or None, None,
                               Decision.INVALID, [reason], None,
                               error=(row, run.phone_name, msg))
        okpos = p.okpos
        # the per-row values as lists: indexing an array makes a NumPy scalar per value
        rows, digits = p.rows[okpos].tolist(), norm.digits[okpos].tolist()
        regions, states = norm.region[okpos].tolist(), p.state.tolist()
        dup, first, ndup = p.dup.tolist(), p.row_first.tolist(), p.ndup.tolist()
        outcomes, zone_of, state_names = run.outcomes, run.zone_of, run.state_names
        for j, (i, k, key) in enumerate(zip(okpos.tolist(), self.outcome.tolist(),
                                            p.unique.tolist(), strict=True)):
            o = outcomes[k]
            reasons = list(o.reasons)
            dup_of = None
            if dup[j]:
                dup_of = first[j]
                reasons.append(Reason(code=ReasonCode.DUPLICATE, decision=Decision.ALLOW,
                                      detail=f"duplicate of row {dup_of}"))
            out[i] = RowResult(rows[j], phone[i], f"+{digits[j]}", names[regions[j]],
                               state_names[states[j]] or None, o.decision,
                               reasons, o.next_allowed_at, duplicate_of=dup_of,
                               number_dup=ndup[j], timezone=zone_of.get(key))
        return [r for r in out if r is not None]

    # -- as counts --------------------------------------------------------------------------
    def count(self, builder: SummaryBuilder) -> None:
        """Add the slice's counts (what a row-by-row count of its verdicts would add)."""
        p, run = self.p, self.run
        norm, outcome = p.norm, self.outcome
        k = len(run.outcomes)
        per = np.bincount(outcome, minlength=k)
        shared = int(p.dup.sum())  # rows with DUPLICATE
        dups = int(p.ndup.sum())  # rows whose number appeared before
        reasons: Counter[str] = Counter()
        lists: Counter[str] = Counter()
        decisions: Counter[str] = Counter()
        source_errors = 0
        for o in np.flatnonzero(per).tolist():
            count = int(per[o])
            found = run.outcomes[o]
            decisions[found.decision.value] += count
            codes = {r.code for r in found.reasons}
            for code in codes:
                reasons[code] += count
            # a reason may name several lists ("a, b": REGISTRY_MISSING names every list
            # that does not cover the number): each is counted (names hold no comma)
            for name in {n for r in found.reasons if r.list for n in r.list.split(", ")}:
                lists[name] += count
            if ReasonCode.SOURCE_ERROR in codes:
                source_errors += count
        if shared:
            reasons[ReasonCode.DUPLICATE] += shared
        bad = np.flatnonzero(~norm.ok & ~p.flagged)
        texts = norm.message_texts
        for code_id, count in zip(*np.unique(norm.error[bad], return_counts=True), strict=True):
            found_code = ERROR_CODES[int(code_id)]
            if found_code is not None:
                reasons[found_code.value] += int(count)
        if bad.size:
            decisions[Decision.INVALID.value] += int(bad.size)
        special = self._special()
        for _, decision, code, _, _ in special:
            decisions[decision.value] += 1
            reasons[code.value] += 1
        # by state (or region) and decision, checked rows; a refused context is "unknown"
        # (codes: the run's states, then the slice's regions; an empty name counts "unknown")
        known = list(run.state_names)  # (a slice prepared meanwhile may add names)
        names = [*known, *(place_key(None, g) if g else "" for g in norm.region_names)]
        place = np.where(p.state != 0, p.state,
                         len(known) + norm.region[p.okpos].astype(np.int64))
        dec = np.array(run.strings.decision_id, dtype=np.int64)[outcome] if p.okpos.size \
            else np.zeros(0, dtype=np.int64)
        # a number is suppressed when any of its rows is, in this slice or an earlier one
        suppressed = run.newly_suppressed(p.number[np.isin(dec, list(_SUPPRESSED_IDS))])
        pairs = np.bincount(place * len(_DECISIONS) + dec, minlength=len(names) * len(_DECISIONS))
        states: Counter[tuple[str, str]] = Counter()
        for i in np.flatnonzero(pairs).tolist():
            where = names[i // len(_DECISIONS)] or "unknown"
            states[(where, _DECISIONS[i % len(_DECISIONS)].value)] += int(pairs[i])
        for _, decision, _, _, _ in special:
            if decision is not Decision.INVALID:
                states[("unknown", decision.value)] += 1
        # the rows not read, in row order, as many as the summary lists
        room = max(MAX_ROW_ERRORS_LISTED - len(builder.summary.row_errors), 0)
        errors: list[tuple[int, str, str]] = []
        if room:
            listed = [(int(p.rows[i]), run.phone_name, texts[int(norm.message[i])])
                      for i in bad[:room].tolist()]
            listed += [(int(p.rows[x[0]]), *x[4]) for x in special[:room]]
            errors = sorted(listed)[:room]
        builder.add_counts(
            rows=int(p.rows.size), decisions=decisions, reasons=+reasons, lists=+lists,
            states=dict(states), duplicates=dups, unique=int(p.okpos.size) - dups,
            suppressed=suppressed, source_errors=source_errors, errors=errors,
            error_count=int(bad.size) + len(special))


__all__ = ["Prepared", "RowResult", "ScrubRun", "Slice", "SliceVerdicts", "SortedRuns",
           "slice_of_rows", "slices_of_table"]
