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

from .checks import Batch, Check, CheckContext, LineTypes, default_checks, findings_of
from .columnar import ColumnarScrub, NotColumnar, read_table
from .config import Settings, load_settings
from .findings import Findings, Outcome, merge
from .lists import ListStore
from .models import DataVersions, Decision, Reason, ReasonCode, Verdict
from .phones import Normalised, normalise_many, state_for
from .remote.prefilter import tally
from .summary import ScrubSummary, SummaryBuilder
from .tableio import (
    InputRow,
    TableWriter,
    context_columns,
    find_phone_column,
    open_table,
    output_header,
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
    duplicate_of: int | None = None
    error: tuple[int, str, str] | None = None  # (row, field, message) for bad input


@dataclass
class _Chunk:
    rows: list[InputRow]
    norm: list[Normalised | None]
    state: list[str | None]
    dup_of: list[int | None]
    batch: Batch
    task: asyncio.Task[list[Outcome]] | None = None
    results: dict[str, Outcome] = field(default_factory=dict)


@dataclass
class _Layout:
    """Where things are in the input rows."""

    phone: int
    phone_name: str
    context: dict[str, int]


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
    ) -> None:
        self.settings = settings or load_settings()
        self.columnar = columnar  # files that read as tables take the array path
        self.clock: Clock = clock or _utcnow
        self._checks: list[Check] | None = list(checks) if checks is not None else None
        self._line_types: LineTypes | None = None

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
        """The check context: dial time (default now) and the campaign's profile."""
        if at is not None and at.tzinfo is None:
            raise ValueError("the dial time needs a UTC offset")
        profile = self.settings.campaign(campaign)
        return CheckContext(
            at=(at or self.clock()).astimezone(UTC),
            campaign=campaign,
            purpose=purpose or profile.purpose,
            call_type=call_type or profile.call_type,
            profile=profile,
        )

    def versions(self, ctx: CheckContext) -> DataVersions:
        """The data versions a verdict in this context relies on."""
        merged = DataVersions()
        for check in self.checks:
            if not ctx.selects(check.name) and check.name not in ("local", "rules"):
                continue
            v = check.versions()
            merged.lists.update({k: d for k, d in v.lists.items() if ctx.selects(k)})
            merged.ruleset = v.ruleset or merged.ruleset
        merged.lists.update({k: d for k, d in self.line_types.versions().items()
                             if ctx.selects(k)})
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
        checks = [c for c in self.checks if c.name in ("local", "rules") or ctx.selects(c.name)]
        try:
            self.line_types.mark(batch, ctx)
        except Exception as exc:  # unreadable wireless list: every number fails closed
            log.warning("wireless lists could not be read: %s", type(exc).__name__)
            error = Reason(code=ReasonCode.SOURCE_ERROR, decision=Decision.ERROR, source="local",
                           detail=f"wireless lists could not be read ({type(exc).__name__})")
            return merge([Findings.uniform(n, [error])], n)
        results = await asyncio.gather(*(findings_of(c, batch, ctx) for c in checks),
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

    def _prepare(self, rows: list[InputRow], layout: _Layout, seen: dict[str, int],
                 defaults: dict[str, str]) -> _Chunk:
        region_col = layout.context.get("region")
        raws, hints, good = [], [], []
        for i, r in enumerate(rows):
            if r.error is None:
                good.append(i)
                raws.append(r.fields[layout.phone])
                hint = r.fields[region_col].strip() if region_col is not None else ""
                hints.append(hint or defaults.get("region") or self.settings.default_region)
        parsed = normalise_many(raws, hints)
        norm: list[Normalised | None] = [None] * len(rows)
        for i, parsed_one in zip(good, parsed, strict=True):
            norm[i] = parsed_one
        state: list[str | None] = [None] * len(rows)
        dup_of: list[int | None] = [None] * len(rows)
        e164s: list[str] = []
        regions: list[str] = []
        states: list[str | None] = []
        extras: list[dict[str, str]] = []
        state_col = layout.context.get("state")
        for i, (r, n) in enumerate(zip(rows, norm, strict=True)):
            if n is None or not n.ok:
                continue
            assert n.e164 is not None and n.region is not None
            given = r.fields[state_col].strip().upper() if state_col is not None else ""
            state[i] = given or defaults.get("state", "").upper() or state_for(n.e164)
            first = seen.get(n.e164)
            if first is not None:
                dup_of[i] = first
                continue
            seen[n.e164] = r.row
            extra = row_context(r, layout, defaults)
            e164s.append(n.e164)
            regions.append(n.region)
            states.append(state[i])
            extras.append(extra)
        return _Chunk(rows, norm, state, dup_of, Batch.of(e164s, regions, states, extras))

    def _results(self, chunk: _Chunk, known: dict[str, Outcome],
                 layout: _Layout) -> list[RowResult]:
        out = []
        for r, n, st, dup in zip(chunk.rows, chunk.norm, chunk.state, chunk.dup_of,
                                 strict=True):
            raw = r.fields[layout.phone] if r.fields else ""
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
            assert n.e164 is not None
            res = known[n.e164]
            reasons = list(res.reasons)
            if dup is not None:
                reasons.append(Reason(code=ReasonCode.DUPLICATE, decision=Decision.ALLOW,
                                      detail=f"duplicate of row {dup}"))
            out.append(RowResult(r.row, raw, r.fields, n.e164, n.region, st, res.decision,
                                 reasons, res.next_allowed_at, duplicate_of=dup))
        return out

    async def _run_rows(
        self,
        rows: Iterable[InputRow],
        layout: _Layout,
        ctx: CheckContext,
        sink: Callable[[list[RowResult]], None],
        defaults: dict[str, str] | None = None,
    ) -> None:
        """Process rows chunk by chunk; ``sink`` receives results in input order."""
        size = self.settings.chunk_size
        gate = asyncio.Semaphore(self.settings.concurrency)
        seen: dict[str, int] = {}
        known: dict[str, Outcome] = {}
        pending: deque[_Chunk] = deque()

        async def run(chunk: _Chunk) -> list[Outcome]:
            try:
                return await self.check_batch(chunk.batch, ctx)
            finally:
                gate.release()

        def flush_done(wait_all: bool) -> None:
            while pending and (wait_all or (pending[0].task and pending[0].task.done())):
                chunk = pending.popleft()
                assert chunk.task is not None
                for e164, outcome in zip(chunk.batch.e164, chunk.task.result(), strict=True):
                    known[e164] = outcome
                sink(self._results(chunk, known, layout))

        buf: list[InputRow] = []

        async def submit(buf: list[InputRow]) -> None:
            chunk = self._prepare(buf, layout, seen, defaults or {})
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
    def _verdict(self, r: RowResult, ctx: CheckContext, versions: DataVersions) -> Verdict:
        return Verdict(
            input=r.input, row=r.row, e164=r.e164, decision=r.decision, reasons=r.reasons,
            region=r.region, state=r.state, next_allowed_at=r.next_allowed_at,
            dial_time=ctx.at, checked_at=self.clock(), versions=versions,
        )

    async def ascrub(self, phones: Iterable[str], *, ctx: CheckContext | None = None,
                     defaults: dict[str, str] | None = None) -> list[Verdict]:
        """Verdicts for many numbers, in order, duplicates marked."""
        ctx = ctx or self.context()
        layout = _Layout(0, "phone", {})
        rows = (InputRow(i, [p]) for i, p in enumerate(phones, 1))
        results: list[RowResult] = []
        await self._run_rows(rows, layout, ctx, results.extend, defaults)
        versions = self.versions(ctx)
        verdicts = [self._verdict(r, ctx, versions) for r in results]
        zones = self._zones(results, defaults or {})
        for v in verdicts:
            if v.e164 in zones:
                v.timezone, v.timezone_source = zones[v.e164]
        return verdicts

    def _zones(self, results: list[RowResult], defaults: dict[str, str]
               ) -> dict[str, tuple[str, str]]:
        """Candidate zones of each valid number, from the first check that knows them."""
        locator = next((c for c in self.checks if hasattr(c, "timezones")), None)
        firsts = [r for r in results if r.e164 and r.region and r.duplicate_of is None
                  and r.decision is not Decision.INVALID]
        if locator is None or not firsts:
            return {}
        batch = Batch.of([r.e164 or "" for r in firsts], [r.region or "" for r in firsts],
                         [r.state for r in firsts], [dict(defaults) for _ in firsts])
        found: list[tuple[str, str]] = locator.timezones(batch)
        return {r.e164 or "": z for r, z in zip(firsts, found, strict=True)}

    def scrub(self, phones: Iterable[str], *, at: datetime | None = None,
              campaign: str = "default", purpose: str | None = None,
              call_type: str | None = None, **defaults: str) -> list[Verdict]:
        """Verdicts for many numbers (see :meth:`check` for the arguments)."""
        ctx = self.context(at=at, campaign=campaign, purpose=purpose, call_type=call_type)
        return asyncio.run(self.ascrub(phones, ctx=ctx, defaults=_clean(defaults)))

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
        phone_column: str | None = None,
        at: datetime | None = None,
        campaign: str = "default",
        purpose: str | None = None,
        call_type: str | None = None,
        raw: bool = False,
        progress: Progress | None = None,
        defaults: dict[str, str] | None = None,
    ) -> ScrubSummary:
        """Scrub a CSV or Parquet file into a verdict file plus ``*.summary.json``.

        ``defaults`` hold per-row context (``region``, ``state``, ``zip``, ``timezone``,
        ``line_type``) for rows whose own columns do not give it.
        """
        ctx = self.context(at=at, campaign=campaign, purpose=purpose, call_type=call_type)
        return asyncio.run(self.ascrub_file(input_path, output_path, ctx=ctx,
                                            phone_column=phone_column, raw=raw,
                                            progress=progress, defaults=_clean(defaults or {})))

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
        table = None
        if self.columnar:
            try:
                table = read_table(input_path)
            except NotColumnar as why:
                log.info("reading %s row by row: %s", input_path.name, why)
        reader = open_table(input_path) if table is None else None
        try:
            header = list(table.column_names) if table is not None else \
                reader.header if reader is not None else []
            if header:
                phone = find_phone_column(header, phone_column)
                layout = _Layout(phone, header[phone], context_columns(header))
            else:
                layout = _Layout(0, phone_column or "phone", {})
            versions = self.versions(ctx)
            summary = ScrubSummary(input=str(input_path), output=str(output_path),
                                   campaign=ctx.campaign, dial_time=ctx.at, started_at=started,
                                   lists=dict(versions.lists), ruleset=versions.ruleset)
            builder = SummaryBuilder(summary)
            writer = TableWriter(output_path, output_header(header), raw=raw)
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
                        await ColumnarScrub(self, table, ctx, phone_column, defaults or {},
                                            builder).run(writer.write_columns, progress)
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
            duplicate=r.duplicate_of is not None,
            first_of_unique=r.e164 is not None and r.duplicate_of is None
            and r.decision is not Decision.INVALID,
            error=r.error)


def row_context(row: InputRow, layout: _Layout, defaults: dict[str, str]) -> dict[str, str]:
    """A row's context for the checks: its own non-empty context columns over ``defaults``."""
    extra = dict(defaults)
    for name, col in layout.context.items():
        value = row.fields[col].strip()
        if value:
            extra[name] = value
    return extra


def summary_path(output_path: Path) -> Path:
    """``results.csv`` -> ``results.summary.json``."""
    return output_path.with_name(f"{output_path.stem}.summary.json")


def _clean(defaults: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in defaults.items() if v}


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
        if path.suffix.lower() in (".parquet", ".pq"):
            import pyarrow.parquet as pq

            return int(pq.ParquetFile(path).metadata.num_rows)
        lines = 0
        with path.open("rb") as fh:
            while block := fh.read(1 << 20):
                lines += block.count(b"\n")
        return max(lines - 1, 0)
    except OSError:
        return None


__all__ = ["Outcome", "RowResult", "Scrubber", "count_results", "count_rows", "iso_utc",
           "result_cells", "row_context",
           "summary_path"]
