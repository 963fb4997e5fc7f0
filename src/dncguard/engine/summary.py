"""The summary of a scrub run, written as ``OUTPUT.summary.json`` beside the output."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from ..models import Decision

MAX_ROW_ERRORS_LISTED = 1000

_SUPPRESSED = (Decision.BLOCK, Decision.DEFER, Decision.ERROR)


def place_key(state: str | None, region: str | None = None) -> str:
    """Where a verdict is counted in ``byState``: its state or province (``CA`` is
    California), else its country as ``<region> (country)`` (``CA (country)``: a Canadian
    number with no province, never California's; ``GB (country)``), else ``unknown``."""
    if state:
        return state
    return f"{region} (country)" if region else "unknown"


class RowError(BaseModel):
    row: int
    field: str
    message: str


class ScrubSummary(BaseModel):
    """Counts of one run. Row counts include duplicates; rates are over unique numbers."""

    input: str | None = None
    output: str | None = None
    campaign: str = "default"
    dial_time: datetime
    started_at: datetime
    finished_at: datetime | None = None
    total_rows: int = Field(0, alias="totalRows")
    unique_valid: int = Field(0, alias="uniqueValid", description="Unique valid numbers")
    duplicates: int = 0
    by_decision: dict[str, int] = Field(default_factory=dict, alias="byDecision")
    by_reason: dict[str, int] = Field(default_factory=dict, alias="byReason")
    by_list: dict[str, int] = Field(default_factory=dict, alias="byList")
    by_state: dict[str, dict[str, int]] = Field(
        default_factory=dict, alias="byState",
        description="Rows checked or refused, by state or province (the verdict's state), "
        "else by country as '<region> (country)' ('CA (country)': Canada, not California), "
        "else 'unknown'; each by decision")
    unique_suppressed: int = Field(
        0, alias="uniqueSuppressed",
        description="Unique valid numbers with a row decided block, defer or error")
    suppression_rate: float | None = Field(
        None, alias="suppressionRate",
        description="uniqueSuppressed / unique valid numbers: a number counts as suppressed "
        "when any of its rows is decided block, defer or error (whatever the rows' order)",
    )
    source_errors: int = Field(0, alias="sourceErrors", description="Rows with SOURCE_ERROR")
    row_errors: list[RowError] = Field(default_factory=list, alias="rowErrors")
    row_error_count: int = Field(0, alias="rowErrorCount")
    rows_per_second: float | None = Field(None, alias="rowsPerSecond")
    lists: dict[str, str | None] = Field(
        default_factory=dict, description="Every list used -> its snapshot date"
    )
    ruleset: str | None = None
    audit_jobs: dict[str, str] = Field(
        default_factory=dict, exclude=True,
        description="Audit job id of the run (key ''), or of each phone column (not written)")
    warnings: list[str] = Field(default_factory=list, description="What the run did that "
                                "the user should know (e.g. an earlier verdict replaced)")
    columns: dict[str, ScrubSummary] | None = Field(
        default=None, description="Several phone columns: each column's own summary (the "
        "counts above are then over every column's verdicts)")
    prefilter: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Remote sources' hash pre-filter, by source: checked, hits, "
        "localSuppressions, remoteCallsSaved, reverified, falsePositives, falsePositiveRate, "
        "ttlSeconds, entries, structuralFpEstimate",
    )

    model_config = {"populate_by_name": True}

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True, indent=2)


class SummaryBuilder:
    """Accumulates counts as rows are written."""

    def __init__(self, summary: ScrubSummary) -> None:
        self.summary = summary
        self._decision: Counter[str] = Counter()
        self._reason: Counter[str] = Counter()
        self._list: Counter[str] = Counter()
        self._state: defaultdict[str, Counter[str]] = defaultdict(Counter)
        # plain ints: pydantic attribute writes are slow on a per-row path
        self._rows = self._dups = self._unique = self._suppressed = 0
        self._source_errors = self._row_errors = 0

    def add_counts(self, *, rows: int, decisions: Mapping[str, int], reasons: Mapping[str, int],
                   lists: Mapping[str, int], states: Mapping[tuple[str, str], int],
                   duplicates: int, unique: int, suppressed: int, source_errors: int,
                   errors: Sequence[tuple[int, str, str]], error_count: int) -> None:
        """Counts of many rows at once, summed by the caller (a slice's verdicts):
        ``states`` is keyed by (state, decision); ``errors`` lists the first row errors."""
        self._rows += rows
        self._decision.update(decisions)
        self._reason.update(reasons)
        self._list.update(lists)
        for (state, decision), count in states.items():
            self._state[state][decision] += count
        self._dups += duplicates
        self._unique += unique
        self._suppressed += suppressed
        self._source_errors += source_errors
        self._row_errors += error_count
        room = MAX_ROW_ERRORS_LISTED - len(self.summary.row_errors)
        self.summary.row_errors.extend(RowError(row=r, field=f, message=m)
                                       for r, f, m in errors[:max(room, 0)])

    def add_summary(self, part: ScrubSummary, *, rows: bool = True,
                    column: str | None = None) -> None:
        """Add a finished summary's counts (a job's chunks, a file's phone columns).
        ``rows``: count its rows too (False for a second column of the same rows);
        ``column``: name its row errors' fields after that phone column."""
        if rows:
            self._rows += part.total_rows
        self._decision.update(part.by_decision)
        self._reason.update(part.by_reason)
        self._list.update(part.by_list)
        for state, counts in part.by_state.items():
            self._state[state].update(counts)
        self._dups += part.duplicates
        self._unique += part.unique_valid
        self._suppressed += part.unique_suppressed
        self._source_errors += part.source_errors
        self._row_errors += part.row_error_count
        room = MAX_ROW_ERRORS_LISTED - len(self.summary.row_errors)
        self.summary.row_errors.extend(
            e if column is None or e.field == column
            else e.model_copy(update={"field": f"{column}: {e.field}"})
            for e in part.row_errors[:max(room, 0)])

    def finish(self, finished_at: datetime | None, elapsed: float) -> ScrubSummary:
        s = self.summary
        s.finished_at = finished_at
        s.total_rows, s.duplicates, s.unique_valid = self._rows, self._dups, self._unique
        s.unique_suppressed, s.source_errors = self._suppressed, self._source_errors
        s.row_error_count = self._row_errors
        s.by_decision = {d.value: self._decision.get(d.value, 0) for d in Decision}
        s.by_reason = dict(sorted(self._reason.items()))
        s.by_list = dict(sorted(self._list.items()))
        s.by_state = {k: dict(v) for k, v in sorted(self._state.items())}
        s.suppression_rate = (
            round(s.unique_suppressed / s.unique_valid, 6) if s.unique_valid else None
        )
        s.rows_per_second = round(s.total_rows / elapsed, 1) if elapsed > 0 else None
        return s


#: The counts a remote source's pre-filter reports per unit of work (``prefilter`` of a
#: summary, by source).
COUNT_FIELDS = ("checked", "hits", "localSuppressions", "remoteCallsSaved", "reverified",
                "falsePositives")


def merge_stats(parts: Iterable[Mapping[str, Mapping[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Sum per-source stats (e.g. of job chunks); TTL and entries are the last part's."""
    out: dict[str, dict[str, Any]] = {}
    for part in parts:
        for source, stats in part.items():
            acc = out.setdefault(source, dict.fromkeys(COUNT_FIELDS, 0))
            for k in COUNT_FIELDS:
                acc[k] += int(stats.get(k) or 0)
            for k in ("ttlSeconds", "entries", "structuralFpEstimate"):
                if k in stats:
                    acc[k] = stats[k]
    for acc in out.values():
        acc["falsePositiveRate"] = (round(acc["falsePositives"] / acc["reverified"], 6)
                                    if acc["reverified"] else None)
    return out


def overall_false_positive_rate(stats: Mapping[str, Mapping[str, Any]]) -> float | None:
    """False positives over re-verified hits, across every source (None if none)."""
    reverified = sum(int(s.get("reverified") or 0) for s in stats.values())
    fps = sum(int(s.get("falsePositives") or 0) for s in stats.values())
    return round(fps / reverified, 6) if reverified else None


def combine_summaries(parts: Mapping[str, ScrubSummary], *, input: str | None,
                      output: str | None) -> ScrubSummary:
    """One summary of several phone columns' scrubs of one file: ``totalRows`` is the file's
    rows, every other count (the pre-filters' too) is summed over the columns' verdicts;
    ``lists`` is every list any column used (a list whose version differs between columns is
    named in a warning, with the later version kept); ``columns`` keeps each."""
    first = next(iter(parts.values()))
    lists: dict[str, str | None] = {}
    warnings = list(dict.fromkeys(w for p in parts.values() for w in p.warnings))
    for name, part in parts.items():
        for list_name, version in part.lists.items():
            if list_name in lists and lists[list_name] != version:
                warnings.append(f"list {list_name} changed between the phone columns' scrubs "
                                f"({lists[list_name]} before, {version} for column {name}): "
                                "each column's summary names the version it used")
            lists[list_name] = version
    s = ScrubSummary(input=input, output=output, campaign=first.campaign,
                     dial_time=first.dial_time, started_at=first.started_at,
                     finished_at=max((p.finished_at for p in parts.values() if p.finished_at),
                                     default=None),
                     total_rows=first.total_rows, lists=lists,
                     ruleset=first.ruleset, columns=dict(parts), warnings=warnings,
                     prefilter=merge_stats(p.prefilter for p in parts.values()))
    builder = SummaryBuilder(s)
    for k, (name, p) in enumerate(parts.items()):
        builder.add_summary(p, rows=k == 0, column=name)
    elapsed = sum((p.total_rows / p.rows_per_second) for p in parts.values()
                  if p.rows_per_second)
    return builder.finish(s.finished_at, elapsed)


def summary_dict(summary: ScrubSummary) -> dict[str, Any]:
    return summary.model_dump(by_alias=True, mode="json")
