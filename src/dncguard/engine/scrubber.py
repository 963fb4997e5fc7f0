"""The library's entry point: :class:`Scrubber` checks numbers against every configured
list, source and rule.

It owns the checks (built from the settings it is given, or handed in) and the decision core
(:meth:`Scrubber.check_groups`: every check concurrently, failures fail closed, findings
merged); every scrub it runs (:meth:`Scrubber.scrub`, :meth:`Scrubber.scrub_file`, and the
service's requests and jobs through :class:`~dncguard.engine.run.ScrubRun`) goes through the
one engine in :mod:`dncguard.engine.run`. A duplicate shares the verdict of the first row with
its number and row context, and says which row that was.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import time
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import numpy.typing as npt

from ..config import CampaignProfile, Settings, load_settings
from ..errors import ConfigError, ContextError, InputError
from ..identity import acting_user
from ..io.tables import (
    InputRow,
    NotColumnar,
    context_near_misses,
    find_phone_column,
    input_format,
    open_table,
    read_header,
    read_table,
    without_old_verdict,
)
from ..io.verdict_file import (
    TableWriter,
    output_format,
    output_header,
    refuse_stale_verdict,
    write_column_verdicts,
)
from ..lists.store import ListStore
from ..models import DataVersions, Decision, Reason, ReasonCode, Verdict
from ..sources.local import LineTypes
from ..sources.protocol import Batch, Check, CheckContext
from ..sources.registry import default_checks
from .context import ACCEPTED, clean_field, clean_row_defaults
from .findings import Findings, Outcome, merge
from .run import RowResult, ScrubRun, Slice, SliceVerdicts, slice_of_rows, slices_of_table
from .summary import ScrubSummary, SummaryBuilder, combine_summaries
from .tally import tally

if TYPE_CHECKING:
    import pyarrow as pa

    from ..audit import NumberDigests

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
Progress = Callable[[int], None]

#: Rows per slice when a file is read as a table: bounds the verdict columns in flight,
#: paces progress.
SLICE_ROWS = 1 << 18


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _conforming(check: Check) -> Check:
    """``check``, refused (ConfigError naming what it lacks) when it does not have everything
    the :class:`~dncguard.sources.protocol.Check` protocol declares (subclass
    :class:`~dncguard.sources.protocol.CheckBase` for the defaults)."""
    lacking = [m for m in ("name", "always", "versions", "check", "findings", "timezones")
               if not hasattr(check, m)]
    if lacking:
        raise ConfigError(f"check {getattr(check, 'name', type(check).__name__)!r} lacks "
                          f"{', '.join(lacking)}: a check implements the Check protocol "
                          "(subclass dncguard.sources.protocol.CheckBase for the defaults)")
    return check


def _distinct(checks: list[Check]) -> list[Check]:
    """``checks``, refused (ConfigError naming it) when two share a name: a campaign
    profile selects a check by its name, and a verdict's reasons name their source by it."""
    seen: set[str] = set()
    for check in checks:
        if check.name in seen:
            raise ConfigError(f"two checks are named {check.name!r}: give the added check a "
                              "name of its own (the built-in ones are local, rules, cxone, "
                              "http-batch)")
        seen.add(check.name)
    return checks


def slices_of_rows(rows: Iterable[InputRow], width: int, size: int) -> Iterator[Slice]:
    """A row reader's rows (each padded to the header's ``width``) as slices of ``size`` rows;
    a row the reader could not read is flagged (``malformed``)."""
    buf: list[InputRow] = []

    def cut(part: list[InputRow]) -> Slice:
        start = part[0].row - 1
        assert all(r.row == start + i + 1 for i, r in enumerate(part)), "rows out of order"
        return slice_of_rows([r.fields for r in part], start, width,
                             {i: r.error for i, r in enumerate(part) if r.error is not None})

    for row in rows:
        buf.append(row)
        if len(buf) >= size:
            yield cut(buf)
            buf = []
    if buf:
        yield cut(buf)


class _Names(NamedTuple):
    """The names a campaign profile's ``lists`` and ``skip_wireless`` are judged against."""

    known: frozenset[str]  # every check, list and wireless list name
    no_list: frozenset[str]  # checks that always run and have no list of that name
    wireless: frozenset[str]  # the wireless lists


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
        extra_checks: Sequence[Check] = (),
        clock: Clock | None = None,
        columnar: bool = True,
        audit: bool = True,
        who: str | None = None,
    ) -> None:
        """``extra_checks``: sources checked beside the built-in ones (the local lists, the
        rules, CXone and http-batch as configured): how a new source is added.

        ``checks``: the checks to run *instead of* the built-in ones, which are then not run
        at all (no local list, no calling rule: a listed number or a 23:00 call can come back
        ``allow``); for tests and for callers that build every check themselves
        (``dncguard.sources.registry.default_checks(settings)`` gives the built-in ones).
        ``extra_checks`` are added to them too. A check's ``name`` must be its own (a second
        check of one name is refused, ConfigError), and a check that lacks a member of the
        :class:`~dncguard.sources.protocol.Check` protocol is refused (ConfigError)."""
        if isinstance(extra_checks, (str, bytes)) or not isinstance(extra_checks, Sequence):
            raise TypeError("extra_checks must be a sequence of checks, not "
                            f"{type(extra_checks).__name__}")
        self.settings = settings or load_settings()
        self.columnar = columnar  # files that read as tables take the array path
        # check(), scrub() and scrub_file() append to the audit trail as the CLI does (the
        # async methods are the service's, which records its own)
        self.audit = audit
        self.who = who or default_who()
        self.clock: Clock = clock or _utcnow
        self._checks: list[Check] | None = (
            [_conforming(c) for c in checks] if checks is not None else None)
        self._extra_checks = [_conforming(c) for c in extra_checks]
        if self._checks is not None:
            self._checks = _distinct([*self._checks, *self._extra_checks])
        self._line_types: LineTypes | None = None
        self._check_lists: dict[int, frozenset[str]] | None = None
        self._names: _Names | None = None

    @property
    def line_types(self) -> LineTypes:
        if self._line_types is None:
            self._line_types = LineTypes(ListStore(self.settings))
        return self._line_types

    @property
    def checks(self) -> list[Check]:
        """Every check this scrubber runs: the built-in ones (or ``checks=``), then
        ``extra_checks=``."""
        if self._checks is None:
            self._checks = _distinct([*default_checks(self.settings), *self._extra_checks])
        return self._checks

    # -- context ----------------------------------------------------------------------------
    def context(self, *, at: datetime | None = None, campaign: str = "default",
                purpose: str | None = None, call_type: str | None = None) -> CheckContext:
        """The check context: dial time (default now) and the campaign's profile.

        Refuses (:class:`~dncguard.errors.ContextError`) an unknown campaign, purpose or call
        type (one given blank too), and a profile whose ``lists`` or ``skip_wireless`` name a
        list or source that does not exist, or whose ``lists`` name a check that always runs
        (``local``, ``rules``: no list); TypeError an argument that is not text."""
        if at is not None and not isinstance(at, datetime):
            raise TypeError(f"at must be a datetime, not {type(at).__name__}")
        if at is not None and at.tzinfo is None:
            raise ValueError("the dial time needs a UTC offset")
        _text("campaign", campaign)
        profile = self.settings.campaign(campaign)
        self._check_profile(campaign, profile)
        return CheckContext(
            at=(at or self.clock()).astimezone(UTC),
            campaign=campaign,
            purpose=_given("purpose", purpose) or profile.purpose,
            call_type=_given("call_type", call_type) or profile.call_type,
            profile=profile,
        )

    def known_names(self) -> set[str]:
        """Every list and source name a campaign profile may select (found once: a
        scrubber's checks are fixed)."""
        return set(self._names_of().known)

    def _lists_of(self) -> dict[int, frozenset[str]]:
        """Each check's lists (by the check's ``id``), as a profile may select them: found
        once, with :meth:`known_names`, so that a profile is judged and run against the same
        names."""
        if self._check_lists is None:
            self._check_lists = {id(c): frozenset(c.versions().lists) for c in self.checks}
        return self._check_lists

    def _names_of(self) -> _Names:
        """The names a profile is judged against, found once from :meth:`_lists_of` and the
        wireless lists (a scrubber's checks and line types are fixed): a profile is checked
        on every request of the pre-dial path."""
        if self._names is None:
            wireless = frozenset(self.line_types.versions())
            lists = frozenset(k for names in self._lists_of().values() for k in names)
            lists |= wireless
            # A check that always runs (the local lists, the rules) applies the selection to
            # its own lists, so its name selects none of them: refused, not an empty selection.
            no_list = frozenset(c.name for c in self.checks if c.always) - lists
            known = frozenset(c.name for c in self.checks) | lists
            self._names = _Names(known=known, no_list=no_list, wireless=wireless)
        return self._names

    def runs(self, check: Check, ctx: CheckContext) -> bool:
        """Whether ``check`` runs in ``ctx``: an ``always`` check does (it applies the
        campaign's selection to its own lists); another one when the campaign selects it by
        name, or selects one of its lists (``cxone:364``), and then checks only those."""
        if check.always or ctx.selects(check.name):
            return True
        return any(ctx.selects(k) for k in self._lists_of().get(id(check), ()))

    def _check_profile(self, campaign: str, profile: CampaignProfile) -> None:
        named = [*(profile.lists or []), *profile.skip_wireless]
        if not named:
            return
        names = self._names_of()
        no_list = names.no_list
        known = names.known - no_list
        unknown = [n for n in named if n not in known and n not in no_list]
        if unknown:
            raise ContextError(
                "campaign", campaign, "a profile whose lists exist",
                f"campaign {campaign!r} names lists or sources that do not exist: "
                f"{', '.join(sorted(unknown))} (known: {', '.join(sorted(known)) or 'none'})")
        always = sorted(no_list & set(profile.lists or ()))
        if always:
            what = "a check that always runs" if len(always) == 1 else "checks that always run"
            raise ContextError(
                "campaign", campaign, "a profile whose lists name lists",
                f"campaign {campaign!r}: lists names {', '.join(repr(n) for n in always)}, "
                f"{what}, not a list: it selects nothing; write the names of the lists to "
                "check instead (dncguard lists ls shows them), or leave lists out to check "
                "every list and source")
        odd = [n for n in profile.skip_wireless if n not in names.wireless]
        if odd:
            raise ContextError(
                "campaign", campaign, "skip_wireless naming wireless lists",
                f"campaign {campaign!r}: skip_wireless names lists that are not wireless "
                f"lists: {', '.join(sorted(odd))}")

    def versions(self, ctx: CheckContext) -> DataVersions:
        """The data versions a verdict in this context relies on."""
        merged = DataVersions()
        for check in self.checks:
            if not self.runs(check, ctx):
                continue
            v = check.versions()
            # a source selected by its name checks all its lists (``cxone``: every group)
            whole = not check.always and ctx.selects(check.name)
            merged.lists.update({k: d for k, d in v.lists.items() if whole or ctx.selects(k)})
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
        checks = [c for c in self.checks if self.runs(c, ctx)]
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

    # -- public API -------------------------------------------------------------------------
    def run(self, header: list[str], ctx: CheckContext, *, phone_column: str | None = None,
            defaults: dict[str, str] | None = None, builder: SummaryBuilder | None = None,
            zones: bool = False) -> ScrubRun:
        """A scrub of rows with this ``header`` through the engine (see
        :class:`~dncguard.engine.run.ScrubRun`); ``defaults`` must be cleaned already.

        ``ctx``'s campaign profile is judged against these checks again (ContextError): a
        context made by a scrubber of an earlier list version may name a list removed since,
        which these checks would not read at all."""
        self._check_profile(ctx.campaign, ctx.profile)
        return ScrubRun(self, header, ctx, phone_column=phone_column, defaults=defaults,
                        builder=builder, zones=zones)

    def verdict_of(self, r: RowResult, ctx: CheckContext, versions: DataVersions, *,
                   checked_at: datetime | None = None) -> Verdict:
        """A row's verdict as the API and the library give it."""
        zone, zone_source = r.timezone if r.timezone is not None else (None, None)
        return Verdict(
            input=r.input, row=r.row, e164=r.e164, decision=r.decision, reasons=r.reasons,
            region=r.region, state=r.state, timezone=zone, timezone_source=zone_source,
            next_allowed_at=r.next_allowed_at, dial_time=ctx.at,
            checked_at=checked_at or self.clock(), versions=versions,
        )

    async def ascrub(self, phones: Iterable[str], *, ctx: CheckContext | None = None,
                     defaults: dict[str, str] | None = None) -> list[Verdict]:
        """Verdicts for many numbers, in order, duplicates marked."""
        ctx = ctx or self.context()
        run = self.run(["phone"], ctx, defaults=_clean(defaults or {}), zones=True)
        rows = ([p] for p in phones)
        results: list[RowResult] = []
        size = self.settings.chunk_size
        start = 0
        while part := [r for _, r in zip(range(size), rows, strict=False)]:
            found = await run.scrub(slice_of_rows(part, start, 1))
            results.extend(found.results())
            start += len(part)
        versions = self.versions(ctx)
        return [self.verdict_of(r, ctx, versions) for r in results]

    def scrub(self, phones: Iterable[str], *, at: datetime | None = None,
              campaign: str = "default", purpose: str | None = None,
              call_type: str | None = None, **defaults: str) -> list[Verdict]:
        """Verdicts for many numbers (see :meth:`check` for the arguments)."""
        numbers = _numbers(phones)
        ctx = self.context(at=at, campaign=campaign, purpose=purpose, call_type=call_type)
        verdicts = asyncio.run(self.ascrub(numbers, ctx=ctx, defaults=_clean(defaults)))
        if self.audit:
            from .. import audit

            audit.record_checks(self.settings, verdicts, who=self.who, campaign=campaign)
        return verdicts

    def check(self, phone: str, *, at: datetime | None = None, campaign: str = "default",
              purpose: str | None = None, call_type: str | None = None,
              **defaults: str) -> Verdict:
        """The verdict for one number.

        ``defaults`` are the per-row context fields: ``region``, ``state``, ``zip``,
        ``timezone``, ``line_type``, ``subject``. An argument of the wrong type is refused
        (TypeError naming it), a value not understood too (ContextError naming its field).
        """
        _text("phone", phone)
        verdict = self.scrub([phone], at=at, campaign=campaign, purpose=purpose,
                             call_type=call_type, **defaults)[0]
        return verdict.model_copy(update={"row": None})

    def scrub_file(
        self,
        input_path: Path | str,
        output_path: Path | str,
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
        ``line_type``, ``subject``) for rows whose own columns do not give it.

        The paths may be given as text. Refused before the input is read: a ``phone_column``
        sequence that names no column (InputError: none given is ``None``), an output whose
        format is not known from its name, and an output (or its summary) that is the input
        file itself (InputError); a path or column name that is not text (TypeError).
        ``defaults`` other than those fields (``purpose``, ``call_type``: arguments of
        their own) are refused (ContextError).
        """
        input_path, output_path = _path("input_path", input_path), _path("output_path",
                                                                          output_path)
        columns = [phone_column] if phone_column is None or isinstance(phone_column, str) \
            else list(phone_column)
        if not columns:
            raise InputError("phone_column names no column: give the phone column's name, "
                             "several names to check several, or None to find the only "
                             "phone-like column")
        for c in columns:
            if c is not None:
                _text("phone_column", c)
        check_output(input_path, output_path)
        ctx = self.context(at=at, campaign=campaign, purpose=purpose, call_type=call_type)
        if len(columns) > 1:
            # each name looked up as a single one is: an empty one names no column (refused)
            summary, staged = asyncio.run(self._scrub_columns(
                input_path, output_path, ctx=ctx, phone_columns=[c or "" for c in columns],
                raw=raw, progress=progress, defaults=_clean(defaults or {}),
                stage=self.audit))
            if self.audit:
                self._record_columns(summary, output_path, staged)
            return summary
        numbers = self._number_digests()
        # An audited scrub writes its verdict file under a hidden name and moves it into place
        # only once its audit record is committed: a verdict file is never there without one.
        target = _staged(output_path) if self.audit else output_path
        try:
            summary = asyncio.run(self.ascrub_file(
                input_path, target, ctx=ctx, phone_column=columns[0] if columns else None,
                raw=raw, progress=progress, defaults=_clean(defaults or {}),
                on_numbers=numbers.add if numbers is not None else None,
                summary_file=not self.audit))
        except BaseException:
            if numbers is not None:
                numbers.close(abandon=True)
            raise
        if not self.audit:
            return summary
        try:
            summary.output = str(output_path)
            self._record_jobs(summary, output_path, numbers, staged={output_path: target})
            target.replace(output_path)
        except BaseException:
            target.unlink(missing_ok=True)
            raise
        finally:
            if numbers is not None:
                numbers.close()
        summary_path(output_path).write_text(summary.to_json(), encoding="utf-8")
        return summary

    def _number_digests(self) -> NumberDigests | None:
        """When the scrub is audited: the number HMACs its job record needs, computed while
        the file is written (None when the audit key cannot be had now: recording the job
        then fails with the reason, as it would without this)."""
        if not self.audit:
            return None
        from .. import audit

        try:
            return audit.number_digests(self.settings)
        except Exception:
            return None

    def _record_jobs(self, summary: ScrubSummary, output_path: Path,
                     numbers: NumberDigests | None = None, *,
                     staged: dict[Path, Path] | None = None) -> None:
        """Record a file scrub in the audit trail: one job, or one per phone column (each
        column's own verdict file, so every row of every column can be proven). ``staged``:
        where each verdict file is until it is recorded (by its final path)."""
        from .. import audit

        parts = {"": (output_path, summary)} if not summary.columns else {
            name: (Path(part.output or ""), part) for name, part in summary.columns.items()}
        for name, (path, part) in parts.items():
            job_id = audit.new_job_id()
            audit.record_job(self.settings, job_id, (staged or {}).get(path, path), part,
                             who=self.who, numbers=numbers if not summary.columns else None,
                             name=path.name)
            summary.audit_jobs[name] = job_id

    def _record_columns(self, summary: ScrubSummary, output_path: Path,
                        staged: dict[Path, Path]) -> None:
        """Record each column's verdict file of a scrub of several columns, then move every
        file into place and write the summaries. When a record or a move fails (or the
        process is interrupted), the combined file and every column's file without a record
        are removed, the recorded ones are put in place (the trail names them), nothing
        hidden is left, and the failure is raised."""
        try:
            self._record_jobs(summary, output_path, staged=staged)
            for final, hidden in staged.items():
                hidden.replace(final)
            for part in (summary.columns or {}).values():
                summary_path(Path(part.output or "")).write_text(part.to_json(),
                                                                 encoding="utf-8")
            summary_path(output_path).write_text(summary.to_json(), encoding="utf-8")
        except BaseException:
            _settle_columns(summary, output_path, staged)
            raise

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
        summary, _ = await self._scrub_columns(
            input_path, output_path, ctx=ctx, phone_columns=phone_columns, raw=raw,
            progress=progress, defaults=defaults, stage=False)
        return summary

    async def _scrub_columns(
        self,
        input_path: Path,
        output_path: Path,
        *,
        ctx: CheckContext,
        phone_columns: list[str],
        raw: bool,
        progress: Progress | None,
        defaults: dict[str, str] | None,
        stage: bool,
    ) -> tuple[ScrubSummary, dict[Path, Path]]:
        """:meth:`ascrub_columns`; with ``stage``, every verdict file is written under a
        hidden name (:func:`_staged`) and no summary file is written: the caller records the
        files, then moves them into place (the map: final path to hidden one)."""
        header = read_header(input_path)
        picked = [header[find_phone_column(header, c)] for c in phone_columns]
        if len(set(picked)) != len(picked):
            raise InputError(f"--phone-column names a column twice: {', '.join(phone_columns)}")
        refuse_stale_verdict(header, columns=picked)  # in each column's file and this one
        folder = column_outputs_dir(output_path)
        paths = {name: folder / f"{stem}{output_path.suffix}"
                 for name, stem in part_stems(header, picked).items()}
        for part in paths.values():
            for path in (part, summary_path(part)):
                if _same_file(input_path, path):
                    raise InputError(f"{path} is the input file: the scrub would write over "
                                     "it; name another output")
        folder.mkdir(parents=True, exist_ok=True)
        where = {p: (_staged(p) if stage else p) for p in [*paths.values(), output_path]}
        parts: dict[str, ScrubSummary] = {}
        written: list[Path] = []  # what this scrub wrote: removed when it fails
        try:
            for name, part in paths.items():
                # (a file that fails is not left: its writer removes what it wrote)
                parts[name] = await self.ascrub_file(input_path, where[part], ctx=ctx,
                                                     phone_column=name, raw=raw,
                                                     progress=progress, defaults=defaults,
                                                     summary_file=False)
                parts[name].output = str(part)
                written.append(where[part])
                if not stage:
                    written.append(summary_path(part))
                    summary_path(part).write_text(parts[name].to_json(), encoding="utf-8")
            write_column_verdicts(where[output_path], header,
                                  {name: where[part] for name, part in paths.items()}, raw=raw)
            written.append(where[output_path])
            combined = combine_summaries(parts, input=str(input_path),
                                         output=str(output_path))
            if not stage:
                written.append(summary_path(output_path))
                summary_path(output_path).write_text(combined.to_json(), encoding="utf-8")
        except BaseException:
            # no column's verdict file (nor the combined one) is left without its record
            for path in written:
                path.unlink(missing_ok=True)
            with contextlib.suppress(OSError):  # the columns' folder, when nothing is left
                folder.rmdir()
            raise
        return combined, {final: hidden for final, hidden in where.items() if final != hidden}

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
        on_numbers: Callable[[pa.Array], None] | None = None,
        summary_file: bool = True,
    ) -> ScrubSummary:
        """Scrub ``input_path`` into the verdict file ``output_path`` (see :meth:`scrub_file`);
        ``on_numbers`` is called with every slice's ``e164`` column as the slice is written,
        in row order; ``summary_file``: also write ``*.summary.json`` beside it."""
        started = self.clock()
        t0 = time.perf_counter()
        defaults = _clean(defaults or {})
        header, slices, dropped, close = self.read_slices(input_path, SLICE_ROWS)
        try:
            versions = self.versions(ctx)
            summary = ScrubSummary(input=str(input_path), output=str(output_path),
                                   campaign=ctx.campaign, dial_time=ctx.at, started_at=started,
                                   lists=dict(versions.lists), ruleset=versions.ruleset)
            if dropped:
                note = (f"{input_path.name} holds an earlier verdict ({', '.join(dropped)}): "
                        "those columns were replaced by this scrub's")
                log.warning("%s", note)
                summary.warnings.append(note)
            for note in context_near_misses(header or []):
                log.warning("%s", note)
                summary.warnings.append(note)
            builder = SummaryBuilder(summary)
            run = self.run(header, ctx, phone_column=phone_column, defaults=defaults,
                           builder=builder) if header else None
            # an input column that could be read as this scrub's verdict is refused
            refuse_stale_verdict(header, run.phone if run is not None else None)
            names = output_header(header)
            writer = TableWriter(output_path, names, raw=raw, timestamps=[len(names) - 1])

            def write(verdicts: SliceVerdicts) -> None:
                added = verdicts.columns()
                # the e164 column holds "+digits" or nothing: no formula to defuse
                writer.write_columns([*verdicts.input_columns(), *added], (len(header),))
                if on_numbers is not None:
                    on_numbers(added[0])

            try:
                with tally() as prefilter:  # the sources' reported work in this run
                    if run is not None:
                        await run.run(slices, write, progress,
                                      in_flight=self.settings.concurrency)
                summary.prefilter = prefilter.stats()
                writer.close()
            except BaseException:
                writer.abort()  # (after a failed close too: no partial file is left)
                raise
        finally:
            close()
        result = builder.finish(self.clock(), time.perf_counter() - t0)
        if summary_file:
            summary_path(output_path).write_text(result.to_json(), encoding="utf-8")
        return result

    def read_slices(self, path: Path, size: int, *, whole: bool = True
                    ) -> tuple[list[str], Iterator[Slice], list[str], Callable[[], None]]:
        """A file's header, its rows as slices of ``size``, the earlier verdict's columns it
        dropped, and what closes it. Read whole as a table when it parses as one (and
        ``columnar`` and ``whole``), else streamed row by row (the reader flags the rows it
        cannot read): a service job streams, its memory bounded by its chunk, not its file."""
        if self.columnar and whole:
            try:
                table, dropped = without_old_verdict(read_table(path))
                return (list(table.column_names), iter(slices_of_table(table, size)), dropped,
                        lambda: None)
            except NotColumnar as why:
                log.info("reading %s row by row: %s", path.name, why)
        reader = open_table(path)
        header = list(reader.header)
        return (header, slices_of_rows(reader.rows(), len(header), size), reader.dropped,
                reader.close)


def default_who() -> str:
    """Who a library call is recorded as: ``DNCGUARD_USER``, else ``library:<user>``."""
    return acting_user("library")


def column_outputs_dir(output_path: Path) -> Path:
    """Where a scrub of several phone columns keeps each column's own verdict file."""
    return output_path.with_name(f"{output_path.stem}.columns")


def _file_safe(name: str) -> str:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name[:120])
    while len(safe.encode()) > 120:  # room for a position, the suffixes, a file system's 255
        safe = safe[:-1]
    return safe or "column"


def _file_key(stem: str) -> str:
    """What a file system that ignores case (and Unicode normalisation) sees of a name."""
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", stem).casefold())


def part_stems(header: list[str], columns: list[str]) -> dict[str, str]:
    """The file name (without suffix) of each phone column's own verdict file: a safe form
    of its name, or, when two columns would get the same one (``home phone`` and
    ``home_phone``; ``Cell`` and ``cell`` where case is ignored), ``<position>-<name>`` with
    the column's position in the input (1 for the first). Never two alike, in any case."""
    safe = {c: _file_safe(c) for c in columns}
    seen: dict[str, int] = {}
    for stem in safe.values():
        seen[_file_key(stem)] = seen.get(_file_key(stem), 0) + 1
    taken: set[str] = set()
    out: dict[str, str] = {}
    for column in columns:
        stem = safe[column]
        if seen[_file_key(stem)] > 1:
            stem = f"{header.index(column) + 1}-{stem}"
        while _file_key(stem) in taken:  # a column named like another's numbered name
            stem = f"{header.index(column) + 1}-{stem}"
        taken.add(_file_key(stem))
        out[column] = stem
    return out


def _same_file(a: Path, b: Path) -> bool:
    """Whether ``a`` and ``b`` are one file (a link, another spelling, a case-insensitive
    file system): by the file system when both exist, else by their resolved paths."""
    try:
        if not a.exists():
            return False  # nothing to replace (and the scrub says the input is missing)
        if b.exists():
            return os.path.samefile(a, b)
        return a.resolve() == b.resolve()
    except OSError:
        return False


def check_output(input_path: Path, output_path: Path) -> None:
    """Refuse (InputError, one line) an output a scrub cannot write, before the input is
    read: a name whose format is not known (``out.xls``), and the input file itself (or the
    summary beside the output: writing it would replace the input)."""
    output_format(output_path)
    for path in (output_path, summary_path(output_path)):
        if _same_file(input_path, path):
            raise InputError(f"{path} is the input file: the scrub would write over it; "
                             "name another output")


def _staged(output_path: Path) -> Path:
    """The hidden name a verdict file is written under until its audit record is committed
    (the same folder and suffix: moved into place by a rename)."""
    return output_path.with_name(f".{output_path.stem}.unrecorded-{secrets.token_hex(4)}"
                                 f"{output_path.suffix}")


def _settle_columns(summary: ScrubSummary, output_path: Path,
                    staged: dict[Path, Path]) -> None:
    """After a scrub of several columns failed to be recorded or moved into place: each
    recorded column's file in place with its summary; the others (the combined file,
    unrecorded columns' files) removed if this scrub had moved them into place already, and
    their hidden copies removed (an earlier file under the final name is left as it was).
    Each step on its own: one that fails does not keep the others from being done."""
    recorded = {Path(p.output or "") for n, p in (summary.columns or {}).items()
                if n in summary.audit_jobs}
    for final, hidden in staged.items():
        with contextlib.suppress(OSError):
            moved = not hidden.exists()
            if final in recorded:
                if not moved:
                    hidden.replace(final)
                summary_path(final).write_text(_part_of(summary, final).to_json(),
                                               encoding="utf-8")
            elif moved:  # in place without a record of its own: withdrawn
                final.unlink(missing_ok=True)
                summary_path(final).unlink(missing_ok=True)
            else:
                hidden.unlink(missing_ok=True)
    if not recorded:
        with contextlib.suppress(OSError):
            column_outputs_dir(output_path).rmdir()


def _part_of(summary: ScrubSummary, path: Path) -> ScrubSummary:
    """The summary of the phone column whose own verdict file is ``path``."""
    return next(p for p in (summary.columns or {}).values() if Path(p.output or "") == path)


def summary_path(output_path: Path) -> Path:
    """``results.csv`` -> ``results.summary.json``."""
    return output_path.with_name(f"{output_path.stem}.summary.json")


def _clean(defaults: dict[str, str]) -> dict[str, str]:
    """Per-row context defaults (flags, API fields), cleaned; :class:`ContextError` names
    the first value that is not understood (TypeError one that is not text)."""
    for field, value in defaults.items():
        if value is not None:
            _text(field, value)
    return clean_row_defaults(defaults)


def _path(name: str, value: object) -> Path:
    """A library path argument as a :class:`~pathlib.Path` (text or any ``os.PathLike``);
    TypeError naming the parameter otherwise."""
    if isinstance(value, (str, os.PathLike)):
        return Path(value)
    raise TypeError(f"{name} must be a path or a string, not {type(value).__name__}")


def _text(name: str, value: object) -> None:
    """Refuse (TypeError naming the parameter) a library argument that is not text: a number
    given as an int, a state as 12, a campaign as None would otherwise fail deep inside with
    another library's error, or not at all."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, not {type(value).__name__}")


def _given(field: str, value: str | None) -> str | None:
    """The ``purpose`` or ``call_type`` given for a check, cleaned; None when none is given
    (the campaign profile's applies). A value given blank is refused (ContextError): as no
    value at all it would match no rule's scope and switch the purpose- and call-type-scoped
    rules off, turning a block into an allow."""
    if value is None:
        return None
    _text(field, value)
    cleaned = clean_field(field, value)
    if not cleaned:
        raise ContextError(field, value, ACCEPTED[field],
                           f"a blank value is not understood; expected {ACCEPTED[field]} (or "
                           "leave it out for the campaign profile's)")
    return cleaned


def _numbers(phones: Iterable[str]) -> Iterator[str]:
    """``phones``, each refused (TypeError naming its position) unless it is text; a single
    string is refused at once (it would be scrubbed one character at a time)."""
    if isinstance(phones, (str, bytes)):
        raise TypeError(f"phones must be an iterable of numbers, not a {type(phones).__name__} "
                        "(check() takes one number)")
    try:
        numbers = iter(phones)
    except TypeError:
        raise TypeError("phones must be an iterable of numbers (strings), not "
                        f"{type(phones).__name__}") from None

    def each() -> Iterator[str]:
        for i, phone in enumerate(numbers):
            _text(f"phones[{i}]", phone)
            yield phone

    return each()


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


__all__ = ["SLICE_ROWS", "Scrubber", "column_outputs_dir", "count_rows", "default_who",
           "slices_of_rows", "summary_path"]
