"""The scrub of a whole file as arrays: the fast path of :meth:`Scrubber.scrub_file`.

A file that reads cleanly as a table (CSV: every row has the header's width and is valid
UTF-8; Parquet: string columns only) is scrubbed slice by slice without a Python object per
row: :func:`~dncguard.phones.normalise_arrays` normalises the phone column, ``numpy``
deduplicates, the checks see each new unique number once and answer with
:class:`~dncguard.findings.Findings` (a few hundred shared reason sets), and the verdict
columns are taken from those sets and written with ``pyarrow``. The file written and the
summary are the same as the row-by-row path's (:mod:`dncguard.pipeline`), which still reads
every file this module refuses (:class:`NotColumnar`): rows of the wrong width, bad bytes,
CSV syntax errors, other Parquet types.
"""

from __future__ import annotations

import asyncio
import csv
import logging
from collections import Counter
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from ._lazy import lazy_import
from .checks import Batch, CheckContext
from .context import clean_field
from .errors import ContextError
from .findings import Index, Outcome
from .models import Decision, ReasonCode
from .phones import ERROR_CODES, NormalisedArrays, normalise_arrays, states_for_digits
from .summary import MAX_ROW_ERRORS_LISTED, SummaryBuilder
from .tableio import (
    ADDED_COLUMNS,
    context_columns,
    find_phone_column,
    input_format,
    read_excel,
)

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.compute as pc

    from .pipeline import Scrubber
else:
    pa = lazy_import("pyarrow", globals(), "pa")
    pc = lazy_import("pyarrow.compute", globals(), "pc")

log = logging.getLogger("dncguard.columnar")

SLICE_ROWS = 1 << 18  # rows per slice: bounds the verdict columns in flight, paces progress
_DECISIONS = list(Decision)
_DECISION_ID = {d: i for i, d in enumerate(_DECISIONS)}
_SUPPRESSED_IDS = [_DECISION_ID[d] for d in (Decision.BLOCK, Decision.DEFER, Decision.ERROR)]
_INVALID = _DECISION_ID[Decision.INVALID]


class NotColumnar(Exception):
    """The file needs the row-by-row path; the message says why."""


def read_table(path: Path) -> pa.Table:
    """The whole input as string columns, or :class:`NotColumnar`."""
    kind = input_format(path)
    if kind == "parquet":
        return _read_parquet(path)
    if kind == "excel":
        table = read_excel(path)
        if len(set(table.column_names)) != len(table.column_names):
            raise NotColumnar("repeated column names")
        return table
    try:
        with path.open("r", encoding="utf-8-sig", newline="") as fh:
            header = next(csv.reader(fh), None)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise NotColumnar(f"header: {type(exc).__name__}") from None
    if not header or len(set(header)) != len(header):
        raise NotColumnar("no header, or repeated column names")
    import pyarrow.csv as pv

    try:
        table = pv.read_csv(
            path,
            read_options=pv.ReadOptions(use_threads=True),
            parse_options=pv.ParseOptions(newlines_in_values=True),
            convert_options=pv.ConvertOptions(
                column_types={h: pa.string() for h in header}, strings_can_be_null=False,
                quoted_strings_can_be_null=False),
        )
    except (pa.ArrowInvalid, OSError) as exc:  # the row path reports the bad rows
        raise NotColumnar(f"{type(exc).__name__}: {str(exc)[:120]}") from None
    if table.column_names != header:
        raise NotColumnar("header differs")
    for col in table.columns:  # the row path flags these cells as bad bytes
        if pc.any(pc.match_substring(col, "\ufffd")).as_py():
            raise NotColumnar("replacement characters")
    return table


def _read_parquet(path: Path) -> pa.Table:
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(path)
    except Exception as exc:  # pyarrow raises several types for unreadable files
        raise NotColumnar(f"{type(exc).__name__}") from None
    if not all(pa.types.is_string(t) or pa.types.is_large_string(t) for t in schema.types):
        raise NotColumnar("Parquet columns that are not strings")
    if len(set(schema.names)) != len(schema.names):
        raise NotColumnar("repeated column names")
    table = pq.read_table(path)
    return pa.table([pc.fill_null(c.cast(pa.string()), "") for c in table.columns],
                    names=table.column_names)


#: Most distinct row contexts a file may have on this path: a row's dedup key is its number's
#: digits (< 10**15) times this plus its context id, in 64 bits.
MAX_CONTEXTS = (2**64 - 1) // 10**15


@dataclass
class TableContexts:
    """Every row's context (its cleaned context columns) as an id, and each id's values."""

    row: npt.NDArray[np.int64] | None  # per row (None: no context columns, every id 0)
    values: list[dict[str, str]]  # per id: the row's own non-empty cleaned values

    @property
    def count(self) -> int:
        return len(self.values)


def table_contexts(table: pa.Table) -> TableContexts:
    """The rows' contexts, cleaned by :mod:`dncguard.context`. :class:`NotColumnar` when a
    value is not understood (the row path reports each such row) or when the file has more
    distinct contexts than :data:`MAX_CONTEXTS`."""
    present = context_columns(list(table.column_names))
    if not present:
        return TableContexts(None, [{}])
    key = np.zeros(table.num_rows, dtype=np.int64)
    columns: list[tuple[str, list[str], npt.NDArray[np.int64]]] = []
    for name, col in present.items():
        encoded = pc.dictionary_encode(table.column(col).combine_chunks())
        canon: list[str] = []
        ids: dict[str, int] = {}
        per_value = np.empty(len(encoded.dictionary), dtype=np.int64)
        for i, raw in enumerate(encoded.dictionary.to_pylist()):
            try:
                value = clean_field(name, raw)
            except ContextError as exc:
                raise NotColumnar(f"column {name!r}: {exc.why}") from None
            per_value[i] = ids.setdefault(value, len(canon))
            if per_value[i] == len(canon):
                canon.append(value)
        indices = np.asarray(encoded.indices.to_numpy(zero_copy_only=False), dtype=np.int64)
        own = per_value[indices]
        _, key = np.unique(key, return_inverse=True)  # renumbered: no overflow
        key = key.reshape(-1).astype(np.int64) * len(canon) + own
        columns.append((name, canon, own))
    _, first, row = np.unique(key, return_index=True, return_inverse=True)
    if first.size > MAX_CONTEXTS:
        raise NotColumnar(f"{first.size:,} distinct row contexts")
    values = []
    for i in first.tolist():
        found: dict[str, str] = {}
        for name, canon, own in columns:
            if canon[int(own[i])]:
                found[name] = canon[int(own[i])]
        values.append(found)
    return TableContexts(row.reshape(-1).astype(np.int64), values)


_Run = tuple[npt.NDArray[np.uint64], npt.NDArray[np.int64], npt.NDArray[np.int64]]


@dataclass
class _Seen:
    """Every unique valid number so far with its first row and unique id, as a few sorted
    runs: each slice adds a run and runs of similar size merge (in linear time), so a file's
    numbers are merged O(log slices) times and looked up in O(log slices) runs."""

    runs: list[_Run] = field(default_factory=list)

    def find(self, digits: npt.NDArray[np.uint64]
             ) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """Which numbers were seen, and their first rows and ids (0 where not)."""
        found = np.zeros(digits.size, dtype=bool)
        row = np.zeros(digits.size, dtype=np.int64)
        outcome = np.zeros(digits.size, dtype=np.int64)
        for values, rows, outcomes in self.runs:
            pos = np.minimum(np.searchsorted(values, digits), values.size - 1)
            hit = values[pos] == digits
            found |= hit
            row[hit] = rows[pos[hit]]
            outcome[hit] = outcomes[pos[hit]]
        return found, row, outcome

    def add(self, digits: npt.NDArray[np.uint64], row: npt.NDArray[np.int64],
            outcome: npt.NDArray[np.int64]) -> None:
        """Add numbers (sorted, none seen before)."""
        if not digits.size:
            return
        self.runs.append((digits, row, outcome))
        while len(self.runs) > 1 and self.runs[-2][0].size <= 2 * self.runs[-1][0].size:
            (a, ra, oa), (b, rb, ob) = self.runs.pop(-2), self.runs.pop()
            at = np.searchsorted(a, b)
            self.runs.append((np.insert(a, at, b), np.insert(ra, at, rb), np.insert(oa, at, ob)))


@dataclass
class _Prepared:
    """A slice between normalisation and its verdict columns (row arrays are per valid row,
    in row order)."""

    start: int
    columns: list[pa.Array]
    rows: npt.NDArray[np.int64]
    norm: NormalisedArrays
    okpos: npt.NDArray[np.int64]
    state: npt.NDArray[np.object_]
    unique: npt.NDArray[np.int64]  # the row's unique (number, context) id
    row_first: npt.NDArray[np.int64]  # the first row with the number and context
    dup: npt.NDArray[np.bool_]  # shares an earlier row's verdict (DUPLICATE)
    ndup: npt.NDArray[np.bool_]  # its number appeared before (in any context)
    batch: Batch | None  # the slice's new unique numbers, to check


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
        from .pipeline import iso_utc

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


class ColumnarScrub:
    """One file's scrub, slice by slice (see the module docstring)."""

    def __init__(self, scrubber: Scrubber, table: pa.Table, ctx: CheckContext,
                 phone_column: str | None, defaults: dict[str, str],
                 builder: SummaryBuilder, contexts: TableContexts | None = None) -> None:
        self.scrubber = scrubber
        self.table = table
        self.ctx = ctx
        self.header = list(table.column_names)
        self.phone = find_phone_column(self.header, phone_column)
        self.phone_name = self.header[self.phone]
        self.contexts = contexts if contexts is not None else table_contexts(table)
        self.defaults = defaults
        self.builder = builder
        self.seen = _Seen()  # (number, context) keys
        self.seen_numbers = _Seen()  # numbers, when there are several contexts
        self.unique_count = 0  # unique valid keys so far (their ids: 0, 1, ...)
        self.outcome_of = np.zeros(0, dtype=np.int64)  # unique id -> outcome id
        self.outcomes: list[Outcome] = []
        self.strings = _Strings()
        values = self.contexts.values
        self._ctx_state = np.array([v.get("state", "") for v in values], dtype=object)
        self._ctx_region = np.array([v.get("region", "") for v in values], dtype=object)

    async def run(self, write: Callable[[list[pa.Array], Collection[int]], None],
                  progress: Callable[[int], None] | None) -> None:
        """Scrub every slice, in a pipeline: while one slice's numbers are checked (in
        threads), the next slice is read and normalised, and the slice before is written
        (in a thread). Slices finish and are written in order."""
        loop = asyncio.get_running_loop()
        writing: asyncio.Future[None] | None = None
        checking: tuple[_Prepared, asyncio.Task[tuple[list[Outcome], Index]] | None] | None = None

        async def finish(prepared: _Prepared,
                         task: asyncio.Task[tuple[list[Outcome], Index]] | None) -> None:
            nonlocal writing
            found = await task if task is not None else None
            cells = [*prepared.columns, *self._finish(prepared, found)]
            if writing is not None:
                await writing
                if progress:
                    progress(prepared.start)
            # the e164 column holds "+digits" or nothing: no formula to defuse
            writing = loop.run_in_executor(None, write, cells, (len(prepared.columns),))

        started: list[asyncio.Task[tuple[list[Outcome], Index]]] = []
        starts = list(range(0, self.table.num_rows, SLICE_ROWS))

        def prepare(start: int) -> asyncio.Future[_Prepared]:
            part = self.table.slice(start, SLICE_ROWS)
            return loop.run_in_executor(None, self._prepare,
                                        [c.combine_chunks() for c in part.columns], start)

        # slices are prepared one at a time, in order (the dedup state is theirs alone), in
        # a thread: the next one while this one is checked and the one before finished
        preparing = prepare(starts[0]) if starts else None
        try:
            for n in range(len(starts)):
                assert preparing is not None
                prepared = await preparing
                preparing = prepare(starts[n + 1]) if n + 1 < len(starts) else None
                task = None
                if prepared.batch is not None:
                    task = asyncio.ensure_future(
                        self.scrubber.check_groups(prepared.batch, self.ctx))
                    started.append(task)
                if checking is not None:
                    await finish(*checking)
                checking = (prepared, task)
            if checking is not None:
                await finish(*checking)
                checking = None
            if writing is not None:
                await writing
                writing = None
                if progress:
                    progress(self.table.num_rows)
        finally:
            # an error: stop the checks still running, let the write finish before the file
            # closes
            if preparing is not None:
                await asyncio.wait([preparing])
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

    def _prepare(self, columns: list[pa.Array], start: int) -> _Prepared:
        """Normalise a slice and find its new unique (number, context) keys (the batch)."""
        n = len(columns[0])
        settings = self.scrubber.settings
        rows = np.arange(start + 1, start + n + 1, dtype=np.int64)
        fallback = self.defaults.get("region") or settings.default_region
        ctx_rows = self.contexts.row
        ctx = ctx_rows[start:start + n] if ctx_rows is not None else None
        hints: list[str] | str = fallback
        if ctx is not None and any(self._ctx_region):
            hints = [h or fallback for h in self._ctx_region[ctx].tolist()]
        norm = normalise_arrays(columns[self.phone], hints)
        ok = norm.ok
        okpos = np.flatnonzero(ok)
        digits = norm.digits[okpos]
        rctx = ctx[okpos] if ctx is not None else np.zeros(okpos.size, dtype=np.int64)

        # -- per row state, as the row path finds it ---------------------------------------
        state = states_for_digits(digits)
        given = self.defaults.get("state", "")
        if given:
            state[:] = given
        if ctx is not None and any(self._ctx_state):
            own = self._ctx_state[rctx]
            state = np.where(own != "", own, state)

        # -- deduplicate, within the slice and against every earlier slice -----------------
        # A key is the number and its row context; each unique key gets an id (in key order
        # within its slice); its outcome is known once its slice's checks finish.
        k = self.contexts.count
        key = digits if k == 1 else digits * np.uint64(k) + rctx.astype(np.uint64)
        uniq, first, inverse = np.unique(key, return_index=True, return_inverse=True)
        found, seen_row, uniq_id = self.seen.find(uniq)
        new = np.flatnonzero(~found)
        uniq_row = np.where(found, seen_row, rows[okpos[first]])
        batch = None
        if new.size:
            uniq_id[new] = self.unique_count + np.arange(new.size)
            self.unique_count += int(new.size)
            at = first[new]
            batch = self._batch(norm.region_names, norm.region[okpos[at]], digits[at],
                                state[at], rctx[at])
            self.seen.add(uniq[new], uniq_row[new], uniq_id[new])
        inverse = inverse.reshape(-1)
        row_first = uniq_row[inverse]
        dup = row_first != rows[okpos]
        ndup = dup if k == 1 else self._number_dups(digits, rows[okpos])
        return _Prepared(start, columns, rows, norm, okpos, state, uniq_id[inverse], row_first,
                         dup, ndup, batch)

    def _number_dups(self, digits: npt.NDArray[np.uint64], rows: npt.NDArray[np.int64]
                     ) -> npt.NDArray[np.bool_]:
        """Which rows' numbers appeared in an earlier row (in any context)."""
        uniq, first, inverse = np.unique(digits, return_index=True, return_inverse=True)
        found, seen_row, _ = self.seen_numbers.find(uniq)
        first_row = np.where(found, seen_row, rows[first])
        new = np.flatnonzero(~found)
        self.seen_numbers.add(uniq[new], first_row[new], np.zeros(new.size, dtype=np.int64))
        result: npt.NDArray[np.bool_] = first_row[inverse.reshape(-1)] != rows
        return result

    def _finish(self, p: _Prepared, found: tuple[list[Outcome], Index] | None
                ) -> list[pa.Array]:
        """The slice's verdict columns and counts, once its new numbers are checked."""
        if found is not None:
            outcomes, index = found
            self.outcome_of = np.concatenate([self.outcome_of, index + len(self.outcomes)])
            self.outcomes.extend(outcomes)
            self.strings.add(outcomes)
        outcome = self.outcome_of[p.unique]
        ok = p.norm.ok
        self._count(p.norm, ok, p.okpos, p.rows, p.state, outcome, p.dup, p.ndup)
        return self._verdict_columns(p.norm, ok, p.okpos, p.rows, outcome, p.dup, p.row_first)

    def _batch(self, region_names: tuple[str, ...], region: npt.NDArray[np.int16],
               digits: npt.NDArray[np.uint64], state: npt.NDArray[np.object_],
               rctx: npt.NDArray[np.int64]) -> Batch:
        """The new unique keys' numbers with their rows' context."""
        e164 = pc.binary_join_element_wise("+", pc.cast(pa.array(digits), pa.string()), "")
        names = np.array(list(region_names), dtype=object)
        states = [s or None for s in state.tolist()]
        used, index = np.unique(rctx, return_inverse=True)
        contexts = [{**self.defaults, **self.contexts.values[c]} for c in used.tolist()]
        batch = Batch.shared(e164.to_pylist(), digits, names[region].tolist(), states,
                             contexts, index.reshape(-1).astype(np.int64))
        batch.ids_known("region", region.astype(np.int64))
        return batch

    def _verdict_columns(self, norm: NormalisedArrays, ok: npt.NDArray[np.bool_],
                         okpos: npt.NDArray[np.int64], rows: npt.NDArray[np.int64],
                         outcome: npt.NDArray[np.int64], dup: npt.NDArray[np.bool_],
                         row_first: npt.NDArray[np.int64]) -> list[pa.Array]:
        """The added columns. Cells shared by an outcome's rows are dictionary-encoded (each
        string once); only duplicates' and bad rows' details are built per row."""
        s = self.strings
        # this slice's outcomes only: the dictionaries stay as small as the slice needs
        used, local = np.unique(outcome, return_inverse=True)
        local = local.reshape(-1).astype(np.int64)
        pick = used.tolist()
        k = len(pick)
        bad = np.flatnonzero(~ok)
        duppos = okpos[dup]

        def encoded(index: npt.NDArray[np.int64], values: list[str] | pa.Array
                    ) -> pa.DictionaryArray:
            return pa.DictionaryArray.from_arrays(pa.array(index, pa.int64()),
                                                  pa.array(values, pa.string()))

        def of(values: list[str]) -> list[str]:
            return [values[i] for i in pick]

        # decision and next_allowed_at: the outcome's, "invalid" / "" for bad rows
        index = np.full(rows.size, k, dtype=np.int64)
        index[okpos] = local
        decision = encoded(index, [*of(s.decision), Decision.INVALID.value])
        next_at = encoded(index, [*of(s.next_at), ""])
        # reason codes: the outcome's, the outcome's plus DUPLICATE, or the bad row's code
        codes_index = index.copy()
        codes_index[duppos] += k
        codes_index[bad] = 2 * k + norm.error[bad].astype(np.int64)
        codes = encoded(codes_index, [*of(s.codes), *of(s.codes_dup),
                                      *(c.value if c else "" for c in ERROR_CODES)])
        # detail: the outcome's; its own for a duplicate or a bad row
        detail_index = index.copy()
        detail_index[duppos] = k + np.arange(duppos.size)
        detail_index[bad] = k + duppos.size + np.arange(bad.size)
        dup_detail = pc.binary_join_element_wise(
            pa.array(of(s.detail_dup), pa.string()).take(pa.array(local[dup], pa.int64())),
            "duplicate of row ",
            pc.cast(pa.array(row_first[dup], pa.int64()), pa.string()), "")
        bad_detail = pc.binary_join_element_wise(
            "row ", pc.cast(pa.array(rows[bad], pa.int64()), pa.string()),
            f", field {self.phone_name!r}: ",
            pa.array(list(norm.message_texts), pa.string()).take(
                pa.array(norm.message[bad], pa.int32())), "")
        detail = encoded(detail_index, pa.concat_arrays(
            [pa.array(of(s.detail), pa.string()), dup_detail.cast(pa.string()),
             bad_detail.cast(pa.string())]))
        has = norm.digits != 0
        e164 = pc.if_else(pa.array(has), pc.binary_join_element_wise(
            "+", pc.cast(pa.array(norm.digits), pa.string()), ""), "")
        out = [e164, decision, codes, detail, next_at]
        assert len(out) == len(ADDED_COLUMNS)
        return out

    def _count(self, norm: NormalisedArrays, ok: npt.NDArray[np.bool_],
               okpos: npt.NDArray[np.int64], rows: npt.NDArray[np.int64],
               state: npt.NDArray[np.object_], outcome: npt.NDArray[np.int64],
               dup: npt.NDArray[np.bool_], ndup: npt.NDArray[np.bool_]) -> None:
        """Summary counts of the slice (what ``count_results`` adds row by row)."""
        k = len(self.outcomes)
        per = np.bincount(outcome, minlength=k)
        shared = int(dup.sum())  # rows with DUPLICATE
        dups = int(ndup.sum())  # rows whose number appeared before
        firsts = np.bincount(outcome[~ndup], minlength=k)
        reasons: Counter[str] = Counter()
        lists: Counter[str] = Counter()
        decisions: Counter[str] = Counter()
        source_errors = suppressed = 0
        for o in np.flatnonzero(per).tolist():
            count = int(per[o])
            found = self.outcomes[o]
            decisions[found.decision.value] += count
            codes = {r.code for r in found.reasons}
            for code in codes:
                reasons[code] += count
            for name in {r.list for r in found.reasons if r.list}:
                lists[name] += count
            if ReasonCode.SOURCE_ERROR in codes:
                source_errors += count
            if self.strings.decision_id[o] in _SUPPRESSED_IDS:
                suppressed += int(firsts[o])
        if shared:
            reasons[ReasonCode.DUPLICATE] += shared
        bad = np.flatnonzero(~ok)
        texts = norm.message_texts
        for code_id, count in zip(*np.unique(norm.error[bad], return_counts=True), strict=True):
            error_code = ERROR_CODES[int(code_id)]
            if error_code is not None:
                reasons[error_code.value] += int(count)
        if bad.size:
            decisions[Decision.INVALID.value] += int(bad.size)
        # by state (or region) and decision, valid rows only
        region_names = np.array([g or "" for g in norm.region_names], dtype=object)
        where = np.where(state != "", state, region_names[norm.region[okpos]])
        where = np.where(where != "", where, "unknown")
        dec = np.array(self.strings.decision_id, dtype=np.int64)[outcome] if okpos.size \
            else np.zeros(0, dtype=np.int64)
        places = pc.dictionary_encode(pa.array(where, pa.string()))
        names = places.dictionary.to_pylist()
        place = np.asarray(places.indices.to_numpy(zero_copy_only=False), dtype=np.int64)
        pairs = np.bincount(place * len(_DECISIONS) + dec, minlength=len(names) * len(_DECISIONS))
        states = {(names[i // len(_DECISIONS)], _DECISIONS[i % len(_DECISIONS)].value):
                  int(c) for i, c in enumerate(pairs.tolist()) if c}
        room = MAX_ROW_ERRORS_LISTED - len(self.builder.summary.row_errors)
        errors = [(int(rows[i]), self.phone_name, texts[int(norm.message[i])])
                  for i in bad[:max(room, 0)].tolist()]
        self.builder.add_counts(
            rows=int(rows.size), decisions=decisions, reasons=+reasons, lists=+lists,
            states=states, duplicates=dups, unique=int(okpos.size) - dups,
            suppressed=suppressed, source_errors=source_errors, errors=errors,
            error_count=int(bad.size))


__all__ = ["ColumnarScrub", "NotColumnar", "SLICE_ROWS", "TableContexts", "read_table",
           "table_contexts"]
