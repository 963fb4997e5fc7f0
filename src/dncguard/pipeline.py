"""The scrub pipeline: normalise, deduplicate, check in parallel, merge, write.

:class:`Scrubber` is the public entry point; the CLI and the HTTP service are thin layers over
it. Files are processed a chunk at a time: each chunk's new unique numbers are checked by every
:class:`~dncguard.checks.Check` concurrently (bounded by ``settings.concurrency`` chunks in
flight), and results are written strictly in input order. A duplicate shares the verdict of
the first row with its number and says which row that was.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt

from .checks import Batch, Check, CheckContext, LineTypes, default_checks, locate
from .columnar import ColumnarScrub, NotColumnar, read_table, table_contexts
from .config import CampaignProfile, Settings, load_settings
from .context import CONTEXT_FIELDS, clean_context, clean_field
from .errors import ConfigError, ContextError, InputError
from .findings import Findings, Outcome, merge
from .identity import acting_user
from .lists import ListStore
from .models import DataVersions, Decision, Reason, ReasonCode, Verdict
from .phones import Normalised, normalise_many, state_for
from .remote.prefilter import tally
from .summary import ScrubSummary, SummaryBuilder, combine_summaries
from .tableio import (
    InputRow,
    TableWriter,
    context_columns,
    find_phone_column,
    input_format,
    open_table,
    output_header,
    read_header,
    without_old_verdict,
    write_column_verdicts,
)

log = logging.getLogger("dncguard.pipeline")

Clock = Callable[[], datetime]
Progress = Callable[[int], None]


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class RowResult:
    """One row's verdict, ready for a file or a :class:`Verdict`."""

    row: int
    input: str
    fields: list[str]
    e164: str | None
    region: str | None
    state: str | None
    decision: Decision
    reasons: list[Reason]
    next_allowed_at: datetime | None
    duplicate_of: int | None = None  # first row with the same number and row context
    error: tuple[int, str, str] | None = None  # (row, field, message) for bad input
    number_dup: bool = False  # the number appeared before (in any row context)


#: A row's dedup key: its number and every context value the checks read about its row.
RowKey = tuple[str, tuple[str, ...]]


@dataclass
class Seen:
    """What a scrub has seen so far: the first row of each (number, row context) and of each
    number (a number seen in another context is judged again but counts as a duplicate)."""

    keys: dict[RowKey, int] = field(default_factory=dict)
    numbers: set[str] = field(default_factory=set)


@dataclass
class Chunk:
    rows: list[InputRow]
    norm: list[Normalised | None]
    state: list[str | None]
    dup_of: list[int | None]
    batch: Batch
    keys: list[RowKey]  # the batch's numbers' keys
    row_keys: list[RowKey | None]  # each row's key (None: not checked)
    number_dup: list[bool]
    context_error: list[tuple[str, ContextError] | None]
    extra: list[dict[str, str]]  # each row's context for the checks (defaults included)
    task: asyncio.Task[list[Outcome]] | None = None


@dataclass
class Layout:
    """Where things are in the input rows."""

    phone: int
    phone_name: str
    context: dict[str, int]
    header: list[str] = field(default_factory=list)


def _conforming(check: Check) -> Check:
    """``check``, refused (ConfigError naming what it lacks) when it does not have everything
    the :class:`~dncguard.checks.Check` protocol declares (subclass
    :class:`~dncguard.checks.CheckBase` for the defaults)."""
    lacking = [m for m in ("name", "always", "versions", "check", "findings", "timezones")
               if not hasattr(check, m)]
    if lacking:
        raise ConfigError(f"check {getattr(check, 'name', type(check).__name__)!r} lacks "
                          f"{', '.join(lacking)}: a check implements the Check protocol "
                          "(subclass dncguard.checks.CheckBase for the defaults)")
    return check


class Scrubber:
    """Checks numbers against every configured list, source and rule.

    >>> scrubber = Scrubber(load_settings(home="/tmp/dncguard-home"))  # doctest: +SKIP
    >>> scrubber.check("+12025550123").decision  # doctest: +SKIP
    <Decision.ALLOW: 'allow'>
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        checks: Sequence[Check] | None = None,
        clock: Clock | None = None,
        columnar: bool = True,
        audit: bool = True,
        who: str | None = None,
    ) -> None:
        self.settings = settings or load_settings()
        self.columnar = columnar  # files that read as tables take the array path
        # check(), scrub() and scrub_file() append to the audit trail as the CLI does (the
        # async methods are the service's, which records its own)
        self.audit = audit
        self.who = who or default_who()
        self.clock: Clock = clock or _utcnow
        self._checks: list[Check] | None = (
            [_conforming(c) for c in checks] if checks is not None else None)
        self._line_types: LineTypes | None = None
        self._known: set[str] | None = None

    @property
    def line_types(self) -> LineTypes:
        if self._line_types is None:
            self._line_types = LineTypes(ListStore(self.settings))
        return self._line_types

    @property
    def checks(self) -> list[Check]:
        if self._checks is None:
            self._checks = default_checks(self.settings)
        return self._checks

    # -- context ----------------------------------------------------------------------------
    def context(self, *, at: datetime | None = None, campaign: str = "default",
                purpose: str | None = None, call_type: str | None = None) -> CheckContext:
        """The check context: dial time (default now) and the campaign's profile.

        Refuses (:class:`~dncguard.errors.ContextError`) an unknown campaign, purpose or call
        type, and a profile whose ``lists`` or ``skip_wireless`` name a list or source that
        does not exist."""
        if at is not None and at.tzinfo is None:
            raise ValueError("the dial time needs a UTC offset")
        profile = self.settings.campaign(campaign)
        self._check_profile(campaign, profile)
        return CheckContext(
            at=(at or self.clock()).astimezone(UTC),
            campaign=campaign,
            purpose=clean_field("purpose", purpose) if purpose else profile.purpose,
            call_type=clean_field("call_type", call_type) if call_type else profile.call_type,
            profile=profile,
        )

    def known_names(self) -> set[str]:
        """Every list and source name a campaign profile may select (found once: a
        scrubber's checks are fixed)."""
        if self._known is None:
            names = {c.name for c in self.checks}
            for c in self.checks:
                names.update(c.versions().lists)
            names.update(self.line_types.versions())
            self._known = names
        return set(self._known)

    def _check_profile(self, campaign: str, profile: CampaignProfile) -> None:
        named = [*(profile.lists or []), *profile.skip_wireless]
        if not named:
            return
        known = self.known_names()
        unknown = [n for n in named if n not in known]
        if unknown:
            raise ContextError(
                "campaign", campaign, "a profile whose lists exist",
                f"campaign {campaign!r} names lists or sources that do not exist: "
                f"{', '.join(sorted(unknown))} (known: {', '.join(sorted(known)) or 'none'})")
        wireless = set(self.line_types.versions())
        odd = [n for n in profile.skip_wireless if n not in wireless]
        if odd:
            raise ContextError(
                "campaign", campaign, "skip_wireless naming wireless lists",
                f"campaign {campaign!r}: skip_wireless names lists that are not wireless "
                f"lists: {', '.join(sorted(odd))}")

    def versions(self, ctx: CheckContext) -> DataVersions:
        """The data versions a verdict in this context relies on."""
        merged = DataVersions()
        for check in self.checks:
            if not (check.always or ctx.selects(check.name)):
                continue
            v = check.versions()
            merged.lists.update({k: d for k, d in v.lists.items() if ctx.selects(k)})
            merged.ruleset = v.ruleset or merged.ruleset
        merged.lists.update({k: d for k, d in self.line_types.versions().items()
                             if ctx.reads_wireless(k)})
        return merged

    # -- core -------------------------------------------------------------------------------
    async def check_batch(self, batch: Batch, ctx: CheckContext) -> list[Outcome]:
        """Run every check on unique valid numbers and merge; failures fail closed."""
        outcomes, index = await self.check_groups(batch, ctx)
        return [outcomes[k] for k in index.tolist()]

    async def check_groups(self, batch: Batch, ctx: CheckContext
                           ) -> tuple[list[Outcome], npt.NDArray[np.int64]]:
        """Like :meth:`check_batch`, as distinct outcomes and each number's index into them."""
        n = len(batch)
        if not n:
            return [], np.zeros(0, dtype=np.int64)
        checks = [c for c in self.checks if c.always or ctx.selects(c.name)]
        try:
            self.line_types.mark(batch, ctx)
        except Exception as exc:  # unreadable wireless list: every number fails closed
            log.warning("wireless lists could not be read: %s", type(exc).__name__)
            error = Reason(code=ReasonCode.SOURCE_ERROR, decision=Decision.ERROR, source="local",
                           detail=f"wireless lists could not be read ({type(exc).__name__})")
            return merge([Findings.uniform(n, [error])], n)
        results = await asyncio.gather(*(c.findings(batch, ctx) for c in checks),
                                       return_exceptions=True)
        parts: list[Findings] = []
        for check, res in zip(checks, results, strict=True):
            if isinstance(res, BaseException) or len(res) != n:
                why = (f"{type(res).__name__}: {str(res)[:200]}" if isinstance(res, BaseException)
                       else "returned a wrong number of results")
                log.warning("check %s failed for %d numbers: %s", check.name, n, why)
                error = Reason(code=ReasonCode.SOURCE_ERROR, decision=Decision.ERROR,
                               source=check.name,
                               detail=f"{check.name} could not check the number ({why})")
                parts.append(Findings.uniform(n, [error]))
                continue
            parts.append(res)
        return merge(parts, n)

    def _row_contexts(self, rows: list[InputRow], layout: Layout
                      ) -> tuple[list[dict[str, str]], list[tuple[str, ContextError] | None]]:
        """Each readable row's own context values, cleaned (see :mod:`dncguard.context`), and
        the first value of each row that is not understood (the column and the error)."""
        if not layout.context:  # nothing to read (the API's numbers, files without context)
            return [{} for _ in rows], [None] * len(rows)
        own: list[dict[str, str]] = []
        bad: list[tuple[str, ContextError] | None] = []
        columns = list(layout.context.items())
        memo: dict[tuple[str, str], str | ContextError] = {}
        for r in rows:
            values: dict[str, str] = {}
            problem: tuple[str, ContextError] | None = None
            if r.error is None:
                for name, col in columns:
                    raw = r.fields[col]
                    hit = memo.get((name, raw))
                    if hit is None:
                        try:
                            hit = clean_field(name, raw)
                        except ContextError as exc:
                            hit = exc
                        memo[(name, raw)] = hit
                    if isinstance(hit, ContextError):
                        header = layout.header[col] if col < len(layout.header) else name
                        problem = (header, hit)
                        break
                    if hit:
                        values[name] = hit
            own.append(values)
            bad.append(problem)
        return own, bad

    def prepare_chunk(self, rows: list[InputRow], layout: Layout, seen: Seen,
                      defaults: dict[str, str]) -> Chunk:
        """Normalise a chunk's rows and find the (number, row context) pairs to check.

        A row whose context column holds a value that is not understood is not checked (it
        becomes ``error`` / CONTEXT_INVALID). A number seen before with the same row context
        shares that row's verdict (DUPLICATE); with another context it is judged on its own,
        and counts as a duplicate number in the summary."""
        own, bad = self._row_contexts(rows, layout)
        raws, hints, good = [], [], []
        for i, r in enumerate(rows):
            if r.error is None and bad[i] is None:
                good.append(i)
                raws.append(r.fields[layout.phone])
                hints.append(own[i].get("region") or defaults.get("region")
                             or self.settings.default_region)
        parsed = normalise_many(raws, hints)
        norm: list[Normalised | None] = [None] * len(rows)
        for i, parsed_one in zip(good, parsed, strict=True):
            norm[i] = parsed_one
        state: list[str | None] = [None] * len(rows)
        dup_of: list[int | None] = [None] * len(rows)
        row_keys: list[RowKey | None] = [None] * len(rows)
        number_dup = [False] * len(rows)
        keys: list[RowKey] = []
        e164s: list[str] = []
        regions: list[str] = []
        states: list[str | None] = []
        extras: list[dict[str, str]] = []
        row_extra: list[dict[str, str]] = [{}] * len(rows)
        for i, (r, n) in enumerate(zip(rows, norm, strict=True)):
            if n is None or not n.ok:
                continue
            assert n.e164 is not None and n.region is not None
            values = own[i]
            state[i] = values.get("state") or defaults.get("state") or state_for(n.e164)
            key: RowKey = (n.e164, tuple(values.get(f, "") for f in CONTEXT_FIELDS))
            row_keys[i] = key
            row_extra[i] = {**defaults, **values} if values else defaults
            number_dup[i] = n.e164 in seen.numbers
            seen.numbers.add(n.e164)
            first = seen.keys.get(key)
            if first is not None:
                dup_of[i] = first
                continue
            seen.keys[key] = r.row
            keys.append(key)
            e164s.append(n.e164)
            regions.append(n.region)
            states.append(state[i])
            extras.append(dict(row_extra[i]))
        return Chunk(rows, norm, state, dup_of, Batch.of(e164s, regions, states, extras),
                      keys, row_keys, number_dup, bad, row_extra)

    async def check_chunk(self, chunk: Chunk, ctx: CheckContext,
                          known: dict[RowKey, Outcome], layout: Layout) -> list[RowResult]:
        """Check a prepared chunk's new keys and return its rows' results. ``known`` holds the
        outcomes found so far; duplicates of keys first seen in a chunk whose outcomes are not
        in ``known`` (a job resumed after a restart) are checked again here."""
        outcomes = await self.check_batch(chunk.batch, ctx)
        known.update(zip(chunk.keys, outcomes, strict=True))
        missing: dict[RowKey, int] = {}
        for i, key in enumerate(chunk.row_keys):
            if key is not None and key not in known:
                missing.setdefault(key, i)
        if missing:
            idx = list(missing.values())
            norm = [chunk.norm[i] for i in idx]
            batch = Batch.of([k[0] for k in missing],
                             [(n.region or "") if n is not None else "" for n in norm],
                             [chunk.state[i] for i in idx], [dict(chunk.extra[i]) for i in idx])
            known.update(zip(missing, await self.check_batch(batch, ctx), strict=True))
        return self.chunk_results(chunk, known, layout)

    def chunk_results(self, chunk: Chunk, known: dict[RowKey, Outcome],
                      layout: Layout) -> list[RowResult]:
        out = []
        for i, (r, n, st, dup) in enumerate(zip(chunk.rows, chunk.norm, chunk.state,
                                                chunk.dup_of, strict=True)):
            raw = r.fields[layout.phone] if r.fields else ""
            problem = chunk.context_error[i]
            if problem is not None:
                column, exc = problem
                detail = f"row {r.row}, column {column!r}: {exc.why}; the row was not checked"
                reason = Reason(code=ReasonCode.CONTEXT_INVALID, decision=Decision.ERROR,
                                detail=detail)
                out.append(RowResult(r.row, raw, r.fields, None, None, None, Decision.ERROR,
                                     [reason], None, error=(r.row, column, exc.why)))
                continue
            if n is None:
                msg = r.error or "unreadable row"
                reason = Reason(code=ReasonCode.MALFORMED_ROW, decision=Decision.INVALID,
                                detail=f"row {r.row}: {msg}")
                out.append(RowResult(r.row, raw, r.fields, None, None, None, Decision.INVALID,
                                     [reason], None, error=(r.row, "*", msg)))
                continue
            if not n.ok:
                assert n.error is not None
                detail = f"row {r.row}, field {layout.phone_name!r}: {n.message}"
                reason = Reason(code=n.error, decision=Decision.INVALID, detail=detail)
                out.append(RowResult(r.row, raw, r.fields, n.e164, n.region, None,
                                     Decision.INVALID, [reason], None,
                                     error=(r.row, layout.phone_name, n.message)))
                continue
            key = chunk.row_keys[i]
            assert n.e164 is not None and key is not None
            res = known[key]
            reasons = list(res.reasons)
            if dup is not None:
                reasons.append(Reason(code=ReasonCode.DUPLICATE, decision=Decision.ALLOW,
                                      detail=f"duplicate of row {dup}"))
            out.append(RowResult(r.row, raw, r.fields, n.e164, n.region, st, res.decision,
                                 reasons, res.next_allowed_at, duplicate_of=dup,
                                 number_dup=chunk.number_dup[i]))
        return out

    async def _run_rows(
        self,
        rows: Iterable[InputRow],
        layout: Layout,
        ctx: CheckContext,
        sink: Callable[[list[RowResult]], None],
        defaults: dict[str, str] | None = None,
    ) -> None:
        """Process rows chunk by chunk; ``sink`` receives results in input order."""
        size = self.settings.chunk_size
        gate = asyncio.Semaphore(self.settings.concurrency)
        seen = Seen()
        known: dict[RowKey, Outcome] = {}
        pending: deque[Chunk] = deque()

        async def run(chunk: Chunk) -> list[Outcome]:
            try:
                return await self.check_batch(chunk.batch, ctx)
            finally:
                gate.release()

        def flush_done(wait_all: bool) -> None:
            while pending and (wait_all or (pending[0].task and pending[0].task.done())):
                chunk = pending.popleft()
                assert chunk.task is not None
                for key, outcome in zip(chunk.keys, chunk.task.result(), strict=True):
                    known[key] = outcome
                sink(self.chunk_results(chunk, known, layout))

        buf: list[InputRow] = []

        async def submit(buf: list[InputRow]) -> None:
            chunk = self.prepare_chunk(buf, layout, seen, defaults or {})
            await gate.acquire()
            chunk.task = asyncio.create_task(run(chunk))
            pending.append(chunk)
            await asyncio.sleep(0)
            flush_done(False)

        for row in rows:
            buf.append(row)
            if len(buf) >= size:
                await submit(buf)
                buf = []
        if buf:
            await submit(buf)
        for chunk in list(pending):
            assert chunk.task is not None
            await chunk.task
        flush_done(True)

    # -- public API -------------------------------------------------------------------------
    def verdict_of(self, r: RowResult, ctx: CheckContext, versions: DataVersions) -> Verdict:
        return Verdict(
            input=r.input, row=r.row, e164=r.e164, decision=r.decision, reasons=r.reasons,
            region=r.region, state=r.state, next_allowed_at=r.next_allowed_at,
            dial_time=ctx.at, checked_at=self.clock(), versions=versions,
        )

    async def ascrub(self, phones: Iterable[str], *, ctx: CheckContext | None = None,
                     defaults: dict[str, str] | None = None) -> list[Verdict]:
        """Verdicts for many numbers, in order, duplicates marked."""
        ctx = ctx or self.context()
        defaults = _clean(defaults or {})
        layout = Layout(0, "phone", {})
        rows = (InputRow(i, [p]) for i, p in enumerate(phones, 1))
        results: list[RowResult] = []
        await self._run_rows(rows, layout, ctx, results.extend, defaults)
        versions = self.versions(ctx)
        verdicts = [self.verdict_of(r, ctx, versions) for r in results]
        zones = self.zones_of(results, defaults or {})
        for v in verdicts:
            if v.e164 in zones:
                v.timezone, v.timezone_source = zones[v.e164]
        return verdicts

    def zones_of(self, results: list[RowResult], defaults: dict[str, str]
               ) -> dict[str, tuple[str, str]]:
        """Candidate zones of each valid number, from the first check that knows them."""
        firsts = [r for r in results if r.e164 and r.region and r.duplicate_of is None
                  and r.decision is not Decision.INVALID]
        if not firsts:
            return {}
        batch = Batch.of([r.e164 or "" for r in firsts], [r.region or "" for r in firsts],
                         [r.state for r in firsts], [dict(defaults) for _ in firsts])
        found = locate(self.checks, batch)
        if found is None:
            return {}
        return {r.e164 or "": z for r, z in zip(firsts, found, strict=True)}

    def scrub(self, phones: Iterable[str], *, at: datetime | None = None,
              campaign: str = "default", purpose: str | None = None,
              call_type: str | None = None, **defaults: str) -> list[Verdict]:
        """Verdicts for many numbers (see :meth:`check` for the arguments)."""
        ctx = self.context(at=at, campaign=campaign, purpose=purpose, call_type=call_type)
        verdicts = asyncio.run(self.ascrub(phones, ctx=ctx, defaults=_clean(defaults)))
        if self.audit:
            from . import audit

            audit.record_checks(self.settings, verdicts, who=self.who, campaign=campaign)
        return verdicts

    def check(self, phone: str, *, at: datetime | None = None, campaign: str = "default",
              purpose: str | None = None, call_type: str | None = None,
              **defaults: str) -> Verdict:
        """The verdict for one number.

        ``defaults`` are the per-row context fields: ``region``, ``state``, ``zip``,
        ``timezone``, ``line_type``.
        """
        verdict = self.scrub([phone], at=at, campaign=campaign, purpose=purpose,
                             call_type=call_type, **defaults)[0]
        return verdict.model_copy(update={"row": None})

    def scrub_file(
        self,
        input_path: Path,
        output_path: Path,
        *,
        phone_column: str | Sequence[str] | None = None,
        at: datetime | None = None,
        campaign: str = "default",
        purpose: str | None = None,
        call_type: str | None = None,
        raw: bool = False,
        progress: Progress | None = None,
        defaults: dict[str, str] | None = None,
    ) -> ScrubSummary:
        """Scrub a CSV or Parquet file into a verdict file plus ``*.summary.json``.

        ``phone_column``: the column to check, or several (each gets its own verdict
        columns, see :meth:`ascrub_columns`); default: the only phone-like column.
        ``defaults`` hold per-row context (``region``, ``state``, ``zip``, ``timezone``,
        ``line_type``) for rows whose own columns do not give it.
        """
        ctx = self.context(at=at, campaign=campaign, purpose=purpose, call_type=call_type)
        columns = [phone_column] if phone_column is None or isinstance(phone_column, str) \
            else list(phone_column)
        if len(columns) > 1:
            summary = asyncio.run(self.ascrub_columns(
                input_path, output_path, ctx=ctx, phone_columns=[c for c in columns if c],
                raw=raw, progress=progress, defaults=_clean(defaults or {})))
        else:
            summary = asyncio.run(self.ascrub_file(
                input_path, output_path, ctx=ctx, phone_column=columns[0] if columns else None,
                raw=raw, progress=progress, defaults=_clean(defaults or {})))
        if self.audit:
            self._record_jobs(summary, output_path)
        return summary

    def _record_jobs(self, summary: ScrubSummary, output_path: Path) -> None:
        """Record a file scrub in the audit trail: one job, or one per phone column (each
        column's own verdict file, so every row of every column can be proven)."""
        from . import audit

        parts = {"": (output_path, summary)} if not summary.columns else {
            name: (Path(part.output or ""), part) for name, part in summary.columns.items()}
        for name, (path, part) in parts.items():
            job_id = audit.new_job_id()
            audit.record_job(self.settings, job_id, path, part, who=self.who)
            summary.audit_jobs[name] = job_id

    async def ascrub_columns(
        self,
        input_path: Path,
        output_path: Path,
        *,
        ctx: CheckContext,
        phone_columns: list[str],
        raw: bool = False,
        progress: Progress | None = None,
        defaults: dict[str, str] | None = None,
    ) -> ScrubSummary:
        """Scrub several phone columns of one file: each column is scrubbed on its own into
        ``<output stem>.columns/<column><suffix>`` (a complete verdict file, provable in the
        audit trail), then ``output_path`` gets the input columns followed by every column's
        verdict columns, named ``<column>_e164``, ``<column>_decision``, ... The summary counts
        verdicts over every column and keeps each column's own summary under ``columns``."""
        header = read_header(input_path)
        picked = [header[find_phone_column(header, c)] for c in phone_columns]
        if len(set(picked)) != len(picked):
            raise InputError(f"--phone-column names a column twice: {', '.join(phone_columns)}")
        folder = column_outputs_dir(output_path)
        folder.mkdir(parents=True, exist_ok=True)
        parts: dict[str, ScrubSummary] = {}
        paths: dict[str, Path] = {}
        for name in picked:
            part = folder / f"{_file_safe(name)}{output_path.suffix}"
            parts[name] = await self.ascrub_file(input_path, part, ctx=ctx, phone_column=name,
                                                 raw=raw, progress=progress, defaults=defaults)
            paths[name] = part
        write_column_verdicts(output_path, header, paths)
        combined = combine_summaries(parts, input=str(input_path), output=str(output_path))
        summary_path(output_path).write_text(combined.to_json(), encoding="utf-8")
        return combined

    async def ascrub_file(
        self,
        input_path: Path,
        output_path: Path,
        *,
        ctx: CheckContext,
        phone_column: str | None = None,
        raw: bool = False,
        progress: Progress | None = None,
        defaults: dict[str, str] | None = None,
    ) -> ScrubSummary:
        started = self.clock()
        t0 = time.perf_counter()
        defaults = _clean(defaults or {})
        table = None
        contexts = None
        dropped: list[str] = []
        if self.columnar:
            try:
                table, dropped = without_old_verdict(read_table(input_path))
                contexts = table_contexts(table)
            except NotColumnar as why:
                table = None
                log.info("reading %s row by row: %s", input_path.name, why)
        reader = open_table(input_path) if table is None else None
        if reader is not None:
            dropped = reader.dropped
        try:
            header = list(table.column_names) if table is not None else \
                reader.header if reader is not None else []
            if header:
                phone = find_phone_column(header, phone_column)
                layout = Layout(phone, header[phone], context_columns(header), header)
            else:
                layout = Layout(0, phone_column or "phone", {})
            versions = self.versions(ctx)
            summary = ScrubSummary(input=str(input_path), output=str(output_path),
                                   campaign=ctx.campaign, dial_time=ctx.at, started_at=started,
                                   lists=dict(versions.lists), ruleset=versions.ruleset)
            if dropped:
                note = (f"{input_path.name} holds an earlier verdict ({', '.join(dropped)}): "
                        "those columns were replaced by this scrub's")
                log.warning("%s", note)
                summary.warnings.append(note)
            builder = SummaryBuilder(summary)
            names = output_header(header)
            writer = TableWriter(output_path, names, raw=raw, timestamps=[len(names) - 1])
            done = 0

            def sink(results: list[RowResult]) -> None:
                nonlocal done
                writer.write([result_cells(r) for r in results])
                count_results(builder, results)
                done += len(results)
                if progress:
                    progress(done)

            try:
                with tally() as prefilter:  # the remote sources' pre-filter work in this run
                    if table is not None:
                        await ColumnarScrub(self, table, ctx, phone_column, defaults,
                                            builder, contexts).run(writer.write_columns,
                                                                   progress)
                    elif header and reader is not None:
                        await self._run_rows(reader.rows(), layout, ctx, sink, defaults)
                summary.prefilter = prefilter.stats()
            except BaseException:
                writer.abort()
                raise
            writer.close()
        finally:
            if reader is not None:
                reader.close()
        result = builder.finish(self.clock(), time.perf_counter() - t0)
        summary_path(output_path).write_text(result.to_json(), encoding="utf-8")
        return result


def count_results(builder: SummaryBuilder, results: list[RowResult]) -> None:
    """Add row verdicts to a summary (a file scrub and a service job count alike)."""
    for r in results:
        builder.add_row(
            decision=r.decision, codes=[x.code for x in r.reasons],
            lists=[x.list for x in r.reasons if x.list], state=r.state or r.region,
            duplicate=r.duplicate_of is not None or r.number_dup,
            first_of_unique=r.e164 is not None and r.duplicate_of is None and not r.number_dup
            and r.decision is not Decision.INVALID and r.error is None,
            error=r.error)


def default_who() -> str:
    """Who a library call is recorded as: ``DNCGUARD_USER``, else ``library:<user>``."""
    return acting_user("library")


def column_outputs_dir(output_path: Path) -> Path:
    """Where a scrub of several phone columns keeps each column's own verdict file."""
    return output_path.with_name(f"{output_path.stem}.columns")


def _file_safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "column"


def summary_path(output_path: Path) -> Path:
    """``results.csv`` -> ``results.summary.json``."""
    return output_path.with_name(f"{output_path.stem}.summary.json")


def _clean(defaults: dict[str, str]) -> dict[str, str]:
    """Per-row context defaults (flags, API fields), cleaned; :class:`ContextError` names
    the first value that is not understood."""
    return clean_context(defaults)


def iso_utc(value: datetime | None) -> str:
    """An instant as ISO 8601 in UTC with ``Z`` (empty for none), as verdict files write it."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value else ""


def result_cells(r: RowResult) -> list[str]:
    """One verdict-file row: the input fields, then the columns dncguard adds."""
    codes = ";".join(dict.fromkeys(x.code for x in r.reasons))
    detail = "; ".join(x.detail for x in r.reasons if x.detail)
    return [*r.fields, r.e164 or "", r.decision.value, codes, detail, iso_utc(r.next_allowed_at)]


def count_rows(path: Path) -> int | None:
    """A quick row count for progress bars (lines minus the header; Parquet metadata)."""
    try:
        kind = input_format(path)
        if kind == "excel":
            return None  # known once the sheet is read
        if kind == "parquet":
            import pyarrow.parquet as pq

            return int(pq.ParquetFile(path).metadata.num_rows)
        lines = 0
        with path.open("rb") as fh:
            while block := fh.read(1 << 20):
                lines += block.count(b"\n")
        return max(lines - 1, 0)
    except OSError:
        return None


__all__ = ["Chunk", "Layout", "Outcome", "RowKey", "RowResult", "Scrubber", "Seen",
           "count_results", "count_rows",
           "column_outputs_dir", "iso_utc", "result_cells", "summary_path"]
