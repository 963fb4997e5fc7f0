"""The compliance report: one self-contained HTML file (inline CSS and SVG, no scripts, no
links) that a compliance officer can file as safe-harbor evidence for one scrub job.

Every count shown comes from the job's audit record (the summary stored when the job ran),
and so do the warnings shown first (a list that changed while the job ran, ...).
The retained results file, when it is intact, gives the sample of decisions (numbers masked),
the rows not verified by cause, and the lists to import once each (the hints the rows' details
repeat); it is also checked against the summary's counts.

Decisions are reported in four groups that add up to the rows: *allowed* (``allow``),
*suppressed* (``block`` and ``defer``: checked, and not to be dialed now), *not verified*
(``error``: could not be checked, whatever the cause; fix and re-check) and *invalid*.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import AuditError
from ..io.verdict_file import verdict_cells
from ..models import REASON_DECISION
from ..phones import mask
from ..sources.rules.codes import RULE_CODES
from ._jobs import file_sha256
from ._log import AuditLog

if TYPE_CHECKING:
    from ..sources.rules.freshness import Freshness, ListLike, ListRef

_COLOURS = {"allow": "#2e7d32", "defer": "#f9a825", "error": "#8e24aa", "block": "#c62828",
            "invalid": "#757575"}
_BAR = "#1565c0"

#: The decisions that count as suppressed; ``error`` is counted apart, as not verified.
SUPPRESSED = ("block", "defer")
NOT_VERIFIED = "error"

#: What each decision counts as in the report.
_GROUP = {"allow": "allowed", "block": "suppressed", "defer": "suppressed",
          "error": "not verified", "invalid": "invalid"}
_MEANING = {"allow": "may be dialed at the dial time",
            "defer": "not now; next allowed time given",
            "block": "must not be dialed in this campaign",
            "error": "could not be verified: fix the cause and re-check",
            "invalid": "not a dialable number in a supported region"}

#: What to do about each cause of ``error`` (the lists to import are listed one by one).
_CAUSE_FIX = {
    "REGISTRY_MISSING": "import the required registry (each list below), or waive the "
                        "requirement with rules.registry_optional",
    "REGISTRY_STALE": "import a newer snapshot of each stale registry below",
    "CONTEXT_INVALID": "correct the context values below in the input file and scrub it again",
    "SOURCE_ERROR": "a list or source could not answer (unreadable snapshot, unreachable "
                    "service, stale CXone sync): check it (dncguard lists stats NAME, "
                    "dncguard cxone sync) and scrub again",
    "TIMEZONE_UNKNOWN": "give the rows a timezone, state or ZIP column, or set "
                        "rules.unknown_timezone = \"region\"",
    "AUDIT_UNAVAILABLE": "the audit trail could not be written: check the database, then "
                         "check again",
}
_CAUSE_MEANING = {
    "SOURCE_ERROR": "A list or source could not answer; the number is not verified.",
    "CONTEXT_INVALID": "A context value of the row is not understood; the row was not checked.",
    "AUDIT_UNAVAILABLE": "The audit trail could not be written.",
}

# The rules' hints in a row's detail (dncguard.sources.rules.source), found wherever they are
# among the row's other reasons (a detail joins them with "; ").
_MISSING_RE = re.compile(
    r"(?:^|; )the (?P<registry>[^;]+?) is required for (?P<jur>[A-Z]{2}(?:-[A-Z0-9]{1,3})?) "
    r"numbers but not loaded(?P<note>; list\(s\) [^;]+? does not select them)?; import it "
    r"with: (?P<command>dncguard lists import [^;()]+?) \(or set "
    r"(?P<waiver>rules\.registry_optional = \[[^\]]*\])\)")
_STALE_RE = re.compile(
    r"(?:^|; )(?P<name>\S+) \((?P<registry>[^;]+?)\) snapshot of (?P<snapshot>[^;]+?) is "
    r"(?P<age>[^;]+?) at the dial time; (?P<jur>\S+) allows (?P<days>\d+) days "
    r"\((?P<cadence>[^;]*?)\); import a newer snapshot")
_UNDATED_RE = re.compile(
    r"(?:^|; )(?P<name>[^;]+?): no snapshot date, so its freshness \((?P<days>\d+) days for "
    r"(?P<jur>\S+)\) cannot be shown")
_CONTEXT_RE = re.compile(
    r"^row \d+, column (?P<column>'[^']*'|\"[^\"]*\"): (?P<why>.*?)"
    r"(?:; expected (?P<expected>.*?))?; the row was not checked")
_DETAIL_CHARS = 240
_CACHE_LIMIT = 20_000

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;
max-width:960px;color:#222;padding:0 1em}
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.2em;margin-top:1.8em;
border-bottom:1px solid #ddd;padding-bottom:.2em}h3{font-size:1.05em;margin:1.2em 0 .3em}
table{border-collapse:collapse;margin:.5em 0;width:100%}
th,td{border:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f5f5f5}td.n{text-align:right;font-variant-numeric:tabular-nums}
.muted{color:#666}.stale{color:#c62828;font-weight:600}.ok{color:#2e7d32}
code{font-size:.9em;word-break:break-all}.grid{display:flex;flex-wrap:wrap;gap:1em}
.card{border:1px solid #ddd;border-radius:6px;padding:.6em .8em;flex:1 1 0;min-width:110px}
.card b{display:block;font-size:1.5em}.card small{display:block;color:#666;max-width:16em}
.card.error{border-color:#8e24aa}.card.error b{color:#8e24aa}
.fix{border-left:4px solid #8e24aa;background:#faf5fb;padding:.4em 1em;margin:.6em 0}
.fix li{margin:.4em 0}.warn{color:#c62828;font-weight:600}
.alert{border:2px solid #c62828;background:#fdf3f3;padding:.4em 1em;margin:1em 0}
.alert h2{margin-top:.3em;color:#c62828;border:0}.alert li{margin:.3em 0}
@media print{body{margin:0}}
"""


def _fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:,.4f}".rstrip("0").rstrip(".")
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _rows(n: int) -> str:
    return f"{n:,} row{'' if n == 1 else 's'}"


def code_decision(code: str) -> str | None:
    """The decision a reason code implies on its own (None for a code dncguard does not
    define, e.g. from a custom check)."""
    if code in REASON_DECISION:
        return REASON_DECISION[code].value
    rule = RULE_CODES.get(code)
    return rule[0].value if rule else None


def _code_group(code: str) -> str:
    if code == "DUPLICATE":
        return "shares the first row's verdict"
    decision = code_decision(code)
    if decision is None:
        return "other"
    if decision == "allow":
        return "allow (informational or exemption)"
    return f"{decision} ({_GROUP[decision]})"


def bar_chart(title: str, items: list[tuple[str, int]], *, colours: dict[str, str] | None = None,
              chart_id: str = "") -> str:
    """A horizontal bar chart as inline SVG (labels escaped)."""
    if not items:
        return f'<p class="muted">{escape(title)}: nothing to show.</p>'
    bar_h, gap, label_w, width = 20, 6, 190, 640
    plot_w = width - label_w - 70
    top = max(v for _, v in items) or 1
    height = len(items) * (bar_h + gap) + 30
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" '
             f'height="{height}" viewBox="0 0 {width} {height}" id="{escape(chart_id)}" '
             f'aria-label="{escape(title)}">',
             f'<text x="0" y="16" font-size="14" font-weight="600">{escape(title)}</text>']
    for i, (label, value) in enumerate(items):
        y = 28 + i * (bar_h + gap)
        w = max(1, round(plot_w * value / top)) if value else 0
        colour = (colours or {}).get(label, _BAR)
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 14}" font-size="12" text-anchor="end">'
            f'{escape(label)}</text>'
            f'<rect x="{label_w}" y="{y}" width="{w}" height="{bar_h}" fill="{colour}" '
            f'data-label="{escape(label)}" data-value="{value}"/>'
            f'<text x="{label_w + w + 6}" y="{y + 14}" font-size="12">{value:,}</text>')
    parts.append("</svg>")
    return "".join(parts)


def stacked_chart(title: str, items: list[tuple[str, dict[str, int]]], segments: list[str],
                  *, colours: dict[str, str], chart_id: str = "") -> str:
    """Horizontal bars split into ``segments`` (each a colour, with a legend), as inline SVG."""
    if not items:
        return f'<p class="muted">{escape(title)}: nothing to show.</p>'
    bar_h, gap, label_w, width = 20, 6, 190, 640
    plot_w = width - label_w - 70
    top = max(sum(parts.get(s, 0) for s in segments) for _, parts in items) or 1
    height = len(items) * (bar_h + gap) + 52
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" '
           f'height="{height}" viewBox="0 0 {width} {height}" id="{escape(chart_id)}" '
           f'aria-label="{escape(title)}">',
           f'<text x="0" y="16" font-size="14" font-weight="600">{escape(title)}</text>']
    x = label_w
    for s in segments:
        out.append(f'<rect x="{x}" y="24" width="12" height="12" fill="{colours[s]}"/>'
                   f'<text x="{x + 16}" y="34" font-size="12">{escape(s)}</text>')
        x += 16 + 8 * len(s) + 18
    for i, (label, parts) in enumerate(items):
        y = 50 + i * (bar_h + gap)
        out.append(f'<text x="{label_w - 6}" y="{y + 14}" font-size="12" text-anchor="end">'
                   f'{escape(label)}</text>')
        x = label_w
        for s in segments:
            value = int(parts.get(s, 0))
            if not value:
                continue
            w = max(1, round(plot_w * value / top))
            out.append(f'<rect x="{x}" y="{y}" width="{w}" height="{bar_h}" '
                       f'fill="{colours[s]}" data-label="{escape(label)}" '
                       f'data-segment="{escape(s)}" data-value="{value}"/>')
            x += w
        total = sum(int(parts.get(s, 0)) for s in segments)
        out.append(f'<text x="{x + 6}" y="{y + 14}" font-size="12">{total:,}</text>')
    out.append("</svg>")
    return "".join(out)


#: A job's warning that a list (or the ruleset) changed while it ran
#: (:func:`dncguard.server._jobs.merge_summaries`), and each of its spans of rows.
_CHANGED_RE = re.compile(r"^(?P<name>the ruleset|\S+) changed while the job ran: (?P<spans>.+)$")
_SPAN_RE = re.compile(r"^rows (?P<rows>[\d,]+-[\d,]+) (?:(?P<without>were checked without it)"
                      r"|used (?P<version>.+))$")
_UNDATED_VERSION = "an undated version"  # a span's version when the list had none
_WITHOUT = "\x00without"  # the key of the spans checked without the list


@dataclass(frozen=True)
class UsedVersion:
    """One version of a list a job used (a job records several, comma-joined, when the list
    changed while it ran), judged on the dial date when its kind is known."""

    name: str
    version: str | None  # as recorded: a snapshot date, or an undated list's last change
    freshness: Freshness | None  # None: not judged (see ``note``)
    note: str = ""  # why it is not judged, or what the version is
    shown: str = "-"  # the version as the report shows it
    age_days: int | None = None
    rows: str = ""  # the rows that used it, when the job's warning names them
    latest: bool = True  # the last version the job used
    warn: bool = False  # ``note`` says why it could not be judged


def changed_rows(warnings: list[str]) -> dict[str, dict[str | None, list[str]]]:
    """From a job's warnings, each list (or ``the ruleset``) that changed while it ran ->
    version (None: undated; ``_WITHOUT``: checked without it) -> the spans of rows."""
    out: dict[str, dict[str | None, list[str]]] = {}
    for warning in warnings:
        m = _CHANGED_RE.match(warning)
        if m is None:
            continue
        spans: dict[str | None, list[str]] = {}
        for part in m["spans"].split("; "):
            sp = _SPAN_RE.match(part)
            if sp is None:
                break
            version = (_WITHOUT if sp["without"] else
                       None if sp["version"] == _UNDATED_VERSION else sp["version"])
            spans.setdefault(version, []).append(sp["rows"])
        else:
            out[m["name"]] = spans
    return out


def split_versions(value: Any) -> list[str | None]:
    """The versions of a list a job recorded: one, or several comma-joined (the list changed
    while the job ran; ``None`` is an undated one)."""
    if value is None:
        return [None]
    return [None if v == "None" else v for v in str(value).split(", ")]


def is_timestamp(version: str | None) -> bool:
    """Whether a recorded version is a time (an undated list's last change, a CXone group's
    last sync) rather than a snapshot date."""
    if not version:
        return False
    try:
        date.fromisoformat(version)
        return False
    except ValueError:
        pass
    try:
        datetime.fromisoformat(version)
    except ValueError:
        return False
    return True


def _used_lists(log: AuditLog, lists: dict[str, Any], warnings: list[str],
                day: date) -> list[UsedVersion]:
    """Every version of every list used, judged on the dial date by
    :mod:`dncguard.sources.rules.freshness` (the rules' definition) with the list's kind and
    jurisdiction as stored now. Nothing is judged by a guess: a version that is a time is an
    undated list's last change; a list removed since (kind unknown) is named as removed."""
    from ..lists.store import DATED_KINDS, ListStore
    from ..sources.rules.freshness import FreshnessPolicy, ListRef

    unreadable = ""
    try:
        known = {i.name: i for i in ListStore(log.settings).all()}
    except Exception as exc:  # the report still shows the versions, unjudged
        known, unreadable = {}, f"{type(exc).__name__}: {exc}"
    policy = FreshnessPolicy.of(log.settings)
    rows_of = changed_rows(warnings)
    out: list[UsedVersion] = []
    for name, value in sorted(lists.items()):
        info: ListLike | None = known.get(name)
        removed = ""
        if info is None and not unreadable and not name.startswith("http-batch:"):
            info, removed = _recorded_list(log, name)
        versions = split_versions(value)
        spans = rows_of.get(name, {})
        without = spans.get(_WITHOUT, [])
        for i, version in enumerate(versions):
            rows = ", ".join(f"rows {r}" for r in spans.get(version, []))
            if without and i == 0:
                rows = "; ".join(filter(None, [rows, f"rows {', '.join(without)} were checked "
                                               "without it"]))
            snap = _parse_date(version)
            age = (day - snap).days if snap is not None else None
            stamp = is_timestamp(version)
            what = "last sync" if info is not None and info.kind == "cxone" else "last change"
            base = UsedVersion(name, version, None, age_days=age, rows=rows,
                               latest=i == len(versions) - 1,
                               shown=f"{what} {version}" if stamp else version or "-")
            if info is None:
                why = (f"not judged: the lists could not be read ({unreadable})" if unreadable
                       else "remote source (http-batch): answers live, no version"
                       if name.startswith("http-batch:") and version is None
                       else "removed since the job: its kind and jurisdiction are not known, "
                       "so its freshness is not judged")
                if stamp:
                    why += "; this version is its last change (an undated list)"
                out.append(replace(base, note=why, warn=not why.startswith("remote")))
            elif stamp:
                now = (f"; it is {'was' if removed else 'now'} a {info.kind} list"
                       if info.kind in DATED_KINDS else "")
                out.append(replace(base, note=f"undated: this version is its {what} "
                                              f"(maintained continuously){now}{removed}"))
            else:
                f = policy.judge(ListRef(name, info.kind, info.jurisdiction, version), day)
                out.append(replace(base, freshness=f, age_days=f.age_days, note=removed))
    return out


def _recorded_list(log: AuditLog, name: str) -> tuple[ListRef | None, str]:
    """A list removed since a job, as the audit trail last recorded it: its kind and
    jurisdiction from its last import (None when the trail holds none: pruned, or a list
    never imported), and a note saying when it was removed and by whom."""
    from ..sources.rules.freshness import ListRef

    try:
        imported = log.find("list", name, actions=("import", "changes"))
        gone = log.find("list", name, actions=("rm",))
    except Exception:  # the trail cannot be read: judged as not known
        return None, ""
    kind = imported.data.get("kind") if imported is not None else None
    if imported is None or not isinstance(kind, str) or not kind:
        return None, ""
    jurisdiction = imported.data.get("jurisdiction")
    when = (f" on {gone.at.isoformat(timespec='seconds')}" + (f" by {gone.who}" if gone.who
                                                              else "")
            if gone is not None and gone.seq > imported.seq else "")
    return (ListRef(name, kind, jurisdiction if isinstance(jurisdiction, str) else None, None),
            f"; removed since the job{when}: its kind and jurisdiction are those of its last "
            f"import in the audit trail (record {imported.seq})")


def _parse_date(version: str | None) -> date | None:
    try:
        return date.fromisoformat(version) if version else None
    except ValueError:
        return None


def _status(u: UsedVersion) -> str:
    f = u.freshness
    if f is None:
        css = "warn" if u.warn else "muted"
        return f'<span class="{css}">{escape(u.note)}</span>'
    more = f'<span class="muted">{escape(u.note)}</span>' if u.note else ""
    if f.max_age_days is None:
        return f'<span class="muted">undated (maintained continuously)</span>{more}'
    if f.fresh:
        return f'<span class="ok">current</span>{more}'
    over = f.days_over
    if not over:
        return f'<span class="stale">stale</span> (no readable snapshot date){more}'
    return (f'<span class="stale">stale</span> ({over} day{"s" if over != 1 else ""} over)'
            f"{more}")


# -- the results file -----------------------------------------------------------------------


@dataclass
class MissingList:
    """A registry the rules required and found not loaded (one ``REGISTRY_MISSING`` hint)."""

    registry: str
    jurisdiction: str
    command: str
    waiver: str
    note: str = ""  # lists that exist but the campaign does not select
    rows: int = 0  # rows whose reasons name it
    error_rows: int = 0  # of them, rows decided error


@dataclass
class StaleList:
    """A registry the rules found stale (one ``REGISTRY_STALE`` hint)."""

    name: str
    jurisdiction: str
    text: str
    rows: int = 0
    error_rows: int = 0


@dataclass
class ResultsScan:
    """One pass over a results file: counts to check the summary against, the rows not
    verified by cause, each distinct fix hint once, and the sample."""

    rows: int = 0
    combos: Counter[tuple[str, str]] = field(default_factory=Counter)  # (decision, codes)
    missing: dict[tuple[str, str, str], MissingList] = field(default_factory=dict)
    stale: dict[str, StaleList] = field(default_factory=dict)
    context: Counter[tuple[str, str]] = field(default_factory=Counter)  # (column, why) -> rows
    context_rows: dict[tuple[str, str], list[int]] = field(default_factory=dict)  # first rows
    expected: dict[str, str] = field(default_factory=dict)  # column -> accepted forms
    sample: list[dict[str, Any]] = field(default_factory=list)

    def decisions(self) -> Counter[str]:
        out: Counter[str] = Counter()
        for (decision, _), n in self.combos.items():
            out[decision] += n
        return out

    def reasons(self, decision: str | None = None) -> Counter[str]:
        """Rows carrying each code (only rows decided ``decision`` when given)."""
        out: Counter[str] = Counter()
        for (d, codes), n in self.combos.items():
            if decision is None or d == decision:
                for code in set(filter(None, codes.split(";"))):
                    out[code] += n
        return out


def _parse_detail(detail: str) -> tuple[list[MissingList], list[StaleList],
                                        tuple[str, str, str] | None]:
    missing = [MissingList(m["registry"], m["jur"], m["command"].strip(), m["waiver"],
                           (m["note"] or "").lstrip("; "))
               for m in _MISSING_RE.finditer(detail)]
    stale = [StaleList(m["name"], m["jur"],
                       f"snapshot of {m['snapshot']} is {m['age']} at the dial time; "
                       f"{m['jur']} allows {m['days']} days ({m['cadence']})")
             for m in _STALE_RE.finditer(detail)]
    for m in _UNDATED_RE.finditer(detail):
        for name in m["name"].split(", "):
            stale.append(StaleList(name, m["jur"], f"no snapshot date, so its freshness "
                                   f"({m['days']} days for {m['jur']}) cannot be shown"))
    c = _CONTEXT_RE.search(detail)
    context = (c["column"], c["why"], c["expected"] or "") if c else None
    return missing, stale, context


def short_detail(detail: str) -> str:
    """A row's detail for the sample: the hints listed once under "What to fix" become a
    reference to it, and the rest is cut to a few lines (the results file keeps it whole)."""
    text = _MISSING_RE.sub(lambda m: f"{'; ' if m[0].startswith(';') else ''}the "
                           f"{m['registry']} is not loaded (see What to fix)", detail)
    text = _STALE_RE.sub(lambda m: f"{'; ' if m[0].startswith(';') else ''}{m['name']} is "
                         "stale (see What to fix)", text)
    text = _UNDATED_RE.sub(lambda m: f"{'; ' if m[0].startswith(';') else ''}{m['name']} "
                           "has no snapshot date (see What to fix)", text)
    text = _CONTEXT_RE.sub(lambda m: f"column {m['column']}: {m['why']}; the row was not "
                           "checked", text)
    if len(text) > _DETAIL_CHARS:
        text = text[:_DETAIL_CHARS - 1].rstrip() + "\u2026"
    return text


def _count_hints(scan: ResultsScan, row: int, is_error: bool, missing: list[MissingList],
                 stale: list[StaleList], context: tuple[str, str, str] | None) -> None:
    for m in missing:
        key = (m.jurisdiction, m.registry, m.note)
        hit = scan.missing.get(key)
        if hit is None:
            hit = scan.missing[key] = replace(m)
        hit.rows += 1
        hit.error_rows += is_error
    for st in stale:
        known = scan.stale.get(st.name)
        if known is None:
            known = scan.stale[st.name] = replace(st)
        known.rows += 1
        known.error_rows += is_error
    if context is not None:
        column, why, expected = context
        scan.context[(column, why)] += 1
        first = scan.context_rows.setdefault((column, why), [])
        if len(first) < 5:
            first.append(row)
        if expected:
            scan.expected.setdefault(column, expected)


def scan_results(path: Path, sample_size: int) -> ResultsScan:
    """Read a results file once (see :class:`ResultsScan`). The sample is up to
    ``sample_size`` rows: the first rows of every decision and reason code, then the rest."""
    scan = ResultsScan()
    combos = scan.combos
    seen: Counter[tuple[str, str]] = Counter()
    per = max(1, sample_size // 8)
    picked: list[dict[str, Any]] = []
    rest: list[dict[str, Any]] = []
    sampling = sample_size > 0
    parsed: dict[str, tuple[list[MissingList], list[StaleList],
                            tuple[str, str, str] | None]] = {}
    for i, (e164, decision, codes, detail, next_at) in enumerate(verdict_cells(path), 1):
        key = (decision, codes)
        combos[key] += 1
        if "REGISTRY_" in codes or "CONTEXT_INVALID" in codes:
            found = parsed.get(detail)
            if found is None:
                found = _parse_detail(detail)
                if len(parsed) < _CACHE_LIMIT:
                    parsed[detail] = found
            _count_hints(scan, i, decision == NOT_VERIFIED, *found)
        if sampling:
            take = seen[key] < per and len(picked) < sample_size
            if take or len(rest) < sample_size:
                row = {"row": i, "number": mask(e164) if e164 else "(none)",
                       "decision": decision, "codes": codes, "detail": detail,
                       "next": next_at}
                if take:
                    seen[key] += 1
                    picked.append(row)
                else:
                    rest.append(row)
            sampling = len(picked) < sample_size
    scan.rows = sum(scan.combos.values())
    picked.extend(rest[: sample_size - len(picked)])
    scan.sample = sorted(picked, key=lambda r: int(r["row"]))
    return scan


# -- checks against the summary ---------------------------------------------------------------


def disagreements(s: dict[str, Any], scan: ResultsScan | None) -> list[str]:
    """Where the summary's counts disagree with each other, or with the results file."""
    out: list[str] = []
    total = int(s.get("totalRows", 0))
    by_decision = {k: int(v) for k, v in s.get("byDecision", {}).items()}
    by_reason = {k: int(v) for k, v in s.get("byReason", {}).items()}
    if sum(by_decision.values()) != total:
        out.append(f"the decisions add up to {sum(by_decision.values()):,} rows, not the "
                   f"{total:,} total rows")
    states = sum(int(n) for c in s.get("byState", {}).values() for n in c.values())
    judged = total - by_decision.get("invalid", 0)
    if s.get("byState") and states != judged:
        out.append(f"the states add up to {states:,} rows, not the {judged:,} rows that are "
                   "not invalid")
    if "sourceErrors" in s and int(s["sourceErrors"]) != by_reason.get("SOURCE_ERROR", 0):
        out.append(f"sourceErrors is {int(s['sourceErrors']):,} but "
                   f"{by_reason.get('SOURCE_ERROR', 0):,} rows carry SOURCE_ERROR")
    if int(s.get("uniqueSuppressed", 0)) > int(s.get("uniqueValid", 0)):
        out.append("more unique numbers are counted not callable than there are unique "
                   "valid numbers")
    if scan is None:
        return out
    if scan.rows != total:
        out.append(f"the results file has {scan.rows:,} rows, the summary {total:,}")
    file_decisions = scan.decisions()
    for d in sorted(set(file_decisions) | set(by_decision)):
        if file_decisions.get(d, 0) != by_decision.get(d, 0):
            out.append(f"{d}: {file_decisions.get(d, 0):,} rows in the results file, "
                       f"{by_decision.get(d, 0):,} in the summary")
    file_reasons = scan.reasons()
    for code in sorted(set(file_reasons) | set(by_reason)):
        if file_reasons.get(code, 0) != by_reason.get(code, 0):
            out.append(f"{code}: {file_reasons.get(code, 0):,} rows in the results file, "
                       f"{by_reason.get(code, 0):,} in the summary")
    return out


# -- the report -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Retained:
    """What became of a job's retained results file: ``intact``, ``altered`` (its SHA-256 is
    not the record's), ``missing`` (recorded as retained, and gone), ``unreadable`` or
    ``not retained`` (``retain_results`` was off)."""

    state: str
    file: str = ""
    error: str = ""

    @property
    def problem(self) -> bool:
        """Whether the file the record names is not the file it hashed."""
        return self.state in ("altered", "missing", "unreadable")

    @property
    def text(self) -> str:
        """The Job table's fact."""
        if self.state == "missing":
            return (f"MISSING: {self.file} was retained when the job was recorded and is "
                    "gone (deleted since): its rows can no longer be shown or proven")
        if self.state == "unreadable":
            return f"UNREADABLE: {self.file} cannot be read ({self.error})"
        return {"altered": "ALTERED"}.get(self.state, self.state)

    @property
    def why(self) -> str:
        """Why the file gives no counts, in a sentence's words."""
        return {"altered": "the retained results file was altered",
                "missing": f"the retained results file is MISSING ({self.file} is gone)",
                "unreadable": f"the retained results file cannot be read ({self.error})",
                }.get(self.state, "the results file was not retained")


def retained_file(log: AuditLog, results: dict[str, Any]) -> tuple[Path | None, Retained]:
    """The job's retained results file (None when none was retained) and its state."""
    retained = results.get("retained")
    if not retained:
        return None, Retained("not retained")
    path = log.settings.home / str(retained)
    try:
        digest = file_sha256(path)
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return path, Retained("missing", str(retained))
    except OSError as exc:
        return path, Retained("unreadable", str(retained), exc.strerror or str(exc))
    return path, Retained("intact" if digest == results.get("sha256") else "altered",
                          str(retained))


def job_warnings(summary: dict[str, Any]) -> list[str]:
    """The warnings the job's summary recorded (a list changed while it ran, a context column
    nearly named, an earlier verdict's columns replaced, ...)."""
    found = summary.get("warnings") or []
    if not isinstance(found, list):
        found = [found]
    return [w if isinstance(w, str) else json.dumps(w) for w in found]


def _warnings(warnings: list[str]) -> list[str]:
    """The job's warnings, shown before anything else."""
    if not warnings:
        return []
    return (['<div class="alert" id="warnings"><h2>Warnings recorded with the job: '
             f'{len(warnings):,}</h2><p>The job ran with these; read them before relying on '
             "the figures below.</p><ul>"]
            + [f'<li data-warning="{i}">{escape(w)}</li>' for i, w in enumerate(warnings)]
            + ["</ul></div>"])


def _data_used(used: list[UsedVersion], dial_date: date) -> list[str]:
    """The freshness table: one line per version of each list the job used."""
    out = [f"<h2>Data used: freshness of every list</h2><p>Ages are counted to the dial "
           f"date {escape(dial_date.isoformat())}. A national or state list may be used for "
           "the days its jurisdiction's registry rule allows (US national registry 31, "
           "Florida 122, ...), an operator override, or else the default for lists without "
           "a rule; older lists are flagged. A list that changed while the job ran has one "
           "line per version, with the rows that used it. A list without a snapshot date is "
           "versioned by its last change. A list removed since the job is judged by the "
           "kind and jurisdiction its last import recorded in the audit trail (not judged "
           "when the trail no longer holds it).</p><table><tr><th>list</th><th>snapshot "
           "date or version</th><th>age (days)</th><th>status</th><th>max age (days)</th>"
           "<th>limit set by</th><th>rows that used it</th></tr>"]
    for u in used:
        f = u.freshness
        max_age = "" if f is None or f.max_age_days is None else str(f.max_age_days)
        limit = "" if f is None or f.max_age_days is None else f.limit_text()
        out.append(f'<tr><td data-list-used="{escape(u.name)}">{escape(u.name)}</td>'
                   f"<td>{escape(u.shown)}</td>"
                   f'<td class="n">{"" if u.age_days is None else u.age_days}</td>'
                   f"<td>{_status(u)}</td>"
                   f'<td class="n" data-max-age="{escape(u.name)}">{max_age}</td>'
                   f"<td>{escape(limit)}</td>"
                   f'<td data-rows="{escape(u.name)}">{escape(u.rows or "all")}</td></tr>')
    return out


def build_report(log: AuditLog, job_id: str, *, sample_size: int = 40,
                 generated_at: datetime | None = None) -> str:
    """The HTML report of one job."""
    rec = log.find("job", job_id)
    if rec is None:
        raise AuditError(f"no audit record for job {job_id!r}")
    s: dict[str, Any] = rec.data.get("summary", {})
    results: dict[str, Any] = rec.data.get("results", {})
    merkle: dict[str, Any] = rec.data.get("merkle", {})
    path, kept = retained_file(log, results)
    intact = {"intact": True, "altered": False}.get(kept.state)
    scan = None
    if path is not None and intact is not None:
        try:
            scan = scan_results(path, sample_size)
        except Exception as exc:  # an altered file may hold anything: no sample then
            if intact:  # the file the record hashed: it was read when the job was recorded
                raise AuditError(f"cannot read the retained results file {path}: {exc}") from exc
    # An altered file still gives the sample (flagged), never counts or fixes.
    trusted = scan if intact else None
    total = int(s.get("totalRows", 0))
    counted = {k: int(v) for k, v in s.get("byDecision", {}).items()}
    by_decision = {d: counted.pop(d, 0) for d in _GROUP} | counted  # allowed, suppressed, ...
    by_reason: dict[str, int] = {k: int(v) for k, v in s.get("byReason", {}).items()}
    by_list: dict[str, int] = s.get("byList", {})
    by_state: dict[str, dict[str, int]] = s.get("byState", {})
    suppressed = sum(by_decision[d] for d in SUPPRESSED)
    not_verified = by_decision[NOT_VERIFIED]
    dial = s.get("dial_time") or rec.at.isoformat()
    try:
        dial_date = datetime.fromisoformat(str(dial).replace("Z", "+00:00")).date()
    except ValueError:
        dial_date = rec.at.date()
    versions = rec.versions
    lists: dict[str, Any] = versions.get("lists", {}) or s.get("lists", {})
    ruleset = versions.get("ruleset") or s.get("ruleset")
    warnings = job_warnings(s)
    now = generated_at or log.clock()
    verify = log.verify()
    used = _used_lists(log, lists, warnings, dial_date)
    # what to fix: each list's last version the job used, judged
    freshness = [u.freshness for u in used if u.freshness is not None and u.latest]
    problems = disagreements(s, trusted)

    h: list[str] = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>dncguard compliance report: {escape(job_id)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>Compliance report: scrub job <code>{escape(job_id)}</code></h1>",
        f'<p class="muted">Generated {escape(now.isoformat())} by dncguard from audit record '
        f'{rec.seq} (hash <code>{escape(rec.hash)}</code>). Numbers are masked.</p>',
        '<div class="grid">',
    ]
    unique_valid = int(s.get("uniqueValid", 0))
    unique_out = int(s.get("uniqueSuppressed", 0))
    rate = s.get("suppressionRate")
    cards: list[tuple[str, str, Any, str]] = [
        ("Total contacts", "totalRows", total, "rows"),
        ("Allowed", "allowed", by_decision["allow"], "rows decided allow"),
        ("Suppressed", "suppressed", suppressed, "rows decided block or defer"),
        ("Not verified", "notVerified", not_verified,
         "rows decided error: could not be checked"),
        ("Invalid", "invalid", by_decision["invalid"], "rows"),
        ("Not callable", "suppressionRate", rate,
         f"{unique_out:,} of {unique_valid:,} unique valid numbers: block, defer or error "
         "(suppressionRate)"),
    ]
    for label, fieldname, value, note in cards:
        shown = (f"{value:.1%}" if isinstance(value, float) and fieldname == "suppressionRate"
                 else _fmt(value))
        css = "card error" if fieldname == "notVerified" and value else "card"
        h.append(f'<div class="{css}">{escape(label)}<b data-field="{fieldname}" '
                 f'data-value="{escape(json.dumps(value))}">{escape(shown)}</b>'
                 f"<small>{escape(note)}</small></div>")
    h.append("</div>")
    h.extend(_warnings(warnings))
    h.append('<p class="muted">Allowed, suppressed, not verified and invalid rows add up to '
             "the total. Rows not verified are not suppressed: dncguard could not check them, "
             "so they must not be dialed until their cause is fixed and they are checked "
             "again.</p>")

    h.append("<h2>Job</h2><table>")
    consistency = ("all counts agree: the decisions add up to the total"
                   + ("; the retained results file has the summary's rows, decisions and "
                      "reason codes" if trusted else "") if not problems
                   else "DISAGREE: " + "; ".join(problems))
    facts = [
        ("Job id", "jobId", job_id), ("Run by", "who", rec.who),
        ("Campaign", "campaign", s.get("campaign")), ("Dial time", "dialTime", dial),
        ("Started", "startedAt", s.get("started_at")),
        ("Finished", "finishedAt", s.get("finished_at")),
        ("Input file", "input", Path(str(s.get("input") or "")).name or None),
        ("Results file", "resultsFile", results.get("file")),
        ("Unique valid numbers", "uniqueValid", s.get("uniqueValid")),
        ("Duplicate rows (number seen in an earlier row)", "duplicates", s.get("duplicates")),
        ("Unique valid numbers not callable (block, defer or error)", "uniqueSuppressed",
         s.get("uniqueSuppressed")),
        ("Rows that could not be verified (decision error)", "notVerifiedRows", not_verified),
        ("of which a list or source failed (SOURCE_ERROR)", "sourceErrors",
         s.get("sourceErrors")),
        ("Rows with bad input (invalid number, unreadable row or refused context value)",
         "rowErrorCount", s.get("rowErrorCount")),
        ("Rows per second", "rowsPerSecond", s.get("rowsPerSecond")),
        ("Ruleset version", "ruleset", ruleset or "none (no calling rules applied)"),
        ("Results file SHA-256", "resultsSha256", results.get("sha256")),
        ("Merkle root of every row's verdict", "merkleRoot", merkle.get("root")),
        ("Warnings recorded with the job", "warningCount", len(warnings)),
        ("Retained results file", "retained", kept.text),
        ("Audit chain", "chain", ("verified: " if verify.ok else "FAILED: ") + verify.message),
        ("Summary consistency", "consistency", consistency),
    ]
    warned = {"consistency": bool(problems), "retained": kept.problem,
              "warningCount": bool(warnings)}
    for label, fieldname, value in facts:
        css = ' class="warn"' if warned.get(fieldname) else ""
        h.append(f'<tr><th>{escape(label)}</th><td data-field="{fieldname}"{css}>'
                 f"{escape(_fmt(value))}</td></tr>")
    h.append("</table>")

    h.append("<h2>Decisions</h2><table><tr><th>decision</th><th>counts as</th><th>meaning</th>"
             "<th>rows</th></tr>")
    for d, n in by_decision.items():
        h.append(f'<tr><td>{escape(d)}</td><td>{escape(_GROUP.get(d, "other"))}</td>'
                 f'<td>{escape(_MEANING.get(d, ""))}</td>'
                 f'<td class="n" data-decision="{escape(d)}">{n:,}</td></tr>')
    h.append("</table>")
    h.append(bar_chart("Rows by decision", list(by_decision.items()), colours=_COLOURS,
                       chart_id="chart-decision"))

    h.extend(_unverified(by_reason, not_verified, trusted, freshness, kept))

    suppression_codes = {c: n for c, n in by_reason.items() if code_decision(c) in SUPPRESSED}
    h.append("<h2>Suppression by reason</h2><p>Rows carrying each reason that blocks or "
             "defers on its own. A row may carry several reasons, and a registry match that an "
             "exemption lifts (consent, EBR) still counts here.</p>")
    h.append(bar_chart("Rows by suppression reason", _ranked(suppression_codes),
                       chart_id="chart-reason"))
    h.append("<h3>Every reason code of the job</h3><table><tr><th>reason code</th><th>implies"
             "</th><th>rows</th></tr>")
    for code, n in sorted(by_reason.items(), key=lambda kv: (_order(kv[0]), -kv[1], kv[0])):
        h.append(f"<tr><td>{escape(code)}</td><td>{escape(_code_group(code))}</td>"
                 f'<td class="n" data-reason="{escape(code)}">{n:,}</td></tr>')
    h.append("</table>")

    h.append("<h2>Lists named by reasons</h2><p>Rows whose reasons name each list: a match on "
             "it (also a match an exemption lifts) or, for a registry, its snapshot judged "
             "stale or its area codes not covering the number (REGISTRY_MISSING).</p>")
    ranked_lists = _ranked(by_list)
    h.append(bar_chart("Rows naming each list", ranked_lists, chart_id="chart-source"))
    h.append("<table><tr><th>list</th><th>rows</th></tr>")
    h.extend(f'<tr><td>{escape(k)}</td><td class="n" data-list="{escape(k)}">{n:,}</td></tr>'
             for k, n in ranked_lists)
    h.append("</table>")

    h.append("<h2>Suppression and rows not verified by state</h2><p>Suppressed: rows decided "
             "block or defer. Not verified: rows decided error. Invalid numbers have no state."
             "</p>")
    states = sorted(by_state.items(), key=lambda kv: (
        -sum(int(kv[1].get(d, 0)) for d in (*SUPPRESSED, NOT_VERIFIED)), kv[0]))
    charted = [(st, {d: int(c.get(d, 0)) for d in ("block", "defer", "error")})
               for st, c in states if any(c.get(d) for d in ("block", "defer", "error"))]
    h.append(stacked_chart("Rows suppressed (block, defer) and not verified (error) per state "
                           "or region", charted, ["block", "defer", "error"],
                           colours=_COLOURS, chart_id="chart-state"))
    h.append("<table><tr><th>state / region</th><th>suppressed</th><th>not verified</th>"
             "<th>all decisions</th></tr>")
    for st, c in states:
        n_sup = sum(int(c.get(d, 0)) for d in SUPPRESSED)
        n_err = int(c.get(NOT_VERIFIED, 0))
        detail = ", ".join(f"{k} {v:,}" for k, v in c.items())
        h.append(f'<tr><td>{escape(st)}</td><td class="n" data-state="{escape(st)}">{n_sup:,}'
                 f'</td><td class="n" data-state-error="{escape(st)}">{n_err:,}</td>'
                 f"<td>{escape(detail)}</td></tr>")
    h.append("</table>")

    h.extend(_data_used(used, dial_date))
    h.append(f'</table><p>Ruleset version: <b data-field="rulesetVersion">'
             f"{escape(ruleset or 'none')}</b></p>")

    sample = scan.sample if scan is not None else []
    altered = (' <span class="warn">The retained results file was ALTERED after the job: '
               "these rows are not evidence.</span>" if intact is False else
               f' <span class="warn">No row can be shown: {escape(kept.why)}.</span>'
               if kept.problem else "")
    h.append(f"<h2>Sample of decisions</h2><p>{len(sample)} of {_fmt(total)} rows: the first "
             "of each decision and reason combination, then others. Details are shortened "
             "(the fixes above are not repeated; the results file has every row's full detail)."
             f" Any row can be proven against the Merkle root with <code>dncguard audit prove "
             f"{escape(job_id)} ROW</code>.{altered}</p>")
    h.append("<table><tr><th>row</th><th>number</th><th>decision</th><th>reasons</th>"
             "<th>detail</th><th>next allowed</th></tr>")
    for r in sample:
        colour = _COLOURS.get(str(r["decision"]), "#222")
        h.append(f'<tr data-row="{r["row"]}"><td class="n">{r["row"]}</td>'
                 f'<td><code>{escape(str(r["number"]))}</code></td>'
                 f'<td style="color:{colour};font-weight:600">{escape(str(r["decision"]))}</td>'
                 f'<td>{escape(str(r["codes"]).replace(";", ", "))}</td>'
                 f'<td>{escape(short_detail(str(r["detail"])))}</td>'
                 f'<td>{escape(str(r["next"] or ""))}</td></tr>')
    h.append("</table>")
    h.append('<p class="muted">This report is generated from the tamper-evident audit trail; '
             "<code>dncguard audit verify</code> checks the chain it comes from.</p>")
    h.append("</body></html>")
    return "\n".join(h)


def _unverified(by_reason: dict[str, int], not_verified: int,
                scan: ResultsScan | None, freshness: list[Freshness],
                kept: Retained) -> list[str]:
    """The section on rows not verified: how many, by cause, and what to fix (each missing or
    stale list once, with the command to run)."""
    error_rows = scan.reasons(NOT_VERIFIED) if scan is not None else None
    # A cause is a code implying error; on rows decided error, also a code dncguard does not
    # define (a custom check's).
    causes = sorted((c for c in by_reason if code_decision(c) == NOT_VERIFIED or (
        error_rows is not None and error_rows.get(c) and code_decision(c) is None)),
        key=lambda c: (-(error_rows or by_reason).get(c, 0), -by_reason[c], c))
    out = [f'<h2 id="not-verified">Rows that could not be verified: '
           f'<span data-field="notVerifiedHeading">{not_verified:,}</span></h2>']
    if not not_verified and not causes:
        out.append('<p class="ok">Every row was verified: no row was decided error.</p>')
        return out
    if not_verified:
        out.append(f"<p>{_rows(not_verified)} decided <code>error</code>: dncguard could not "
                   "verify them, whatever the cause, so they are neither allowed nor counted "
                   "as suppressed. A row may have several causes.</p>")
    else:
        out.append("<p>No row was decided <code>error</code>, but some rows carry a cause of "
                   "it that a more severe reason outranked (a list match, for example): what "
                   "it names still needs fixing.</p>")
    if error_rows is not None:
        out.append("<table><tr><th>cause (reason code)</th><th>meaning</th><th>rows not "
                   "verified</th><th>rows with the code, any decision</th></tr>")
        charted = _ranked({c: error_rows.get(c, 0) for c in causes})
    else:
        why = (f'<span class="warn">{escape(kept.why)}</span>' if kept.problem
               else escape(kept.why))
        out.append(f'<p class="muted">Counts by cause are rows carrying the code whatever '
                   f"their decision (the summary's byReason): {why}, so rows not verified "
                   "cannot be told apart by cause.</p><table><tr><th>cause (reason code)</th>"
                   "<th>meaning</th><th>rows with the code, any decision</th></tr>")
        charted = _ranked({c: by_reason[c] for c in causes})
    for code in causes:
        meaning = (_CAUSE_MEANING.get(code) or RULE_CODES.get(code, (None, ""))[1]
                   or "Not a dncguard reason code (a custom check's).")
        cells = (f'<td class="n" data-cause="{escape(code)}">{error_rows.get(code, 0):,}</td>'
                 if error_rows is not None else "")
        out.append(f"<tr><td>{escape(code)}</td><td>{escape(meaning)}</td>{cells}"
                   f'<td class="n" data-cause-any="{escape(code)}">{by_reason[code]:,}</td>'
                   "</tr>")
    if scan is not None:
        known = set(causes)
        unexplained = sum(n for (d, codes), n in scan.combos.items()
                          if d == NOT_VERIFIED and not known.intersection(codes.split(";")))
        if unexplained:
            out.append(f'<tr><td>(no cause given)</td><td>rows decided error without a '
                       f'reason code of error</td><td class="n" data-cause="">'
                       f"{unexplained:,}</td><td></td></tr>")
    out.append("</table>")
    out.append(bar_chart("Rows not verified by cause" if error_rows is not None
                         else "Rows with each cause, any decision", charted,
                         colours=dict.fromkeys(causes, _COLOURS["error"]),
                         chart_id="chart-cause"))
    out.extend(_fixes(causes, by_reason, error_rows, scan, freshness))
    return out


def _fixes(causes: list[str], by_reason: dict[str, int], error_rows: Counter[str] | None,
           scan: ResultsScan | None, freshness: list[Freshness]) -> list[str]:
    """"What to fix": one line per cause, and under it one line per list or value."""
    out = ['<div class="fix"><h3>What to fix</h3><ul>']
    for code in causes:
        fix = _CAUSE_FIX.get(code, "see the detail column of the results file")
        rows = _rows(by_reason[code]) + (f", {error_rows.get(code, 0):,} not verified"
                                          if error_rows is not None else "")
        out.append(f'<li data-fix="{escape(code)}"><b>{escape(code)}</b> ({rows}): '
                   f"{escape(fix)}")
        items: list[str] = []
        if code == "REGISTRY_MISSING":
            if scan is None:
                items.append("the detail column of the results file names each list to "
                             "import")
            for m in sorted((scan.missing.values() if scan else []),
                            key=lambda m: (-m.rows, m.jurisdiction)):
                note = f" ({m.note})" if m.note else ""
                items.append(
                    f'<li data-missing="{escape(m.jurisdiction)}">{escape(m.registry)} '
                    f"({escape(m.jurisdiction)}): {_rows(m.rows)}, {m.error_rows:,} not "
                    f"verified{escape(note)}.<br><code>{escape(m.command)}</code><br>"
                    f'<span class="muted">or, if this registry is scrubbed elsewhere: '
                    f"<code>{escape(m.waiver)}</code></span></li>")
        elif code == "REGISTRY_STALE":
            found = dict(scan.stale) if scan else {}
            for f in freshness:
                if f.enforced and not f.fresh and f.name not in found:
                    found[f.name] = StaleList(f.name, f.jurisdiction or "", f.problem() or "")
            kinds = {f.name: f for f in freshness}
            for st in sorted(found.values(), key=lambda st: (-st.rows, st.name)):
                used = kinds.get(st.name)
                kind = used.kind if used else ("state" if "-" in st.jurisdiction
                                               else "national")
                jur = (used.jurisdiction if used else None) or st.jurisdiction
                counted = (f"{_rows(st.rows)}, {st.error_rows:,} not verified; " if scan
                           else "")
                items.append(
                    f'<li data-stale="{escape(st.name)}">{escape(st.name)}: {counted}'
                    f"{escape(st.text)}.<br><code>dncguard lists import FILE --kind "
                    f"{escape(kind)} --jurisdiction {escape(jur)} --snapshot-date YYYY-MM-DD "
                    f"--name {escape(st.name)}</code></li>")
        elif code == "CONTEXT_INVALID" and scan is not None:
            for (column, why), n in sorted(scan.context.items(),
                                           key=lambda kv: (-kv[1], kv[0])):
                first = ", ".join(str(r) for r in scan.context_rows[(column, why)]) + (
                    ", ..." if n > 5 else "")
                items.append(f"<li>column {escape(column)}: {escape(why)}: {_rows(n)} "
                             f"(row{'s' if n > 1 else ''} {first})</li>")
            for column, expected in sorted(scan.expected.items()):
                items.append(f'<li class="muted">column {escape(column)} expects '
                             f"{escape(expected)}</li>")
        elif code == "CONTEXT_INVALID":
            items.append("the summary's rowErrors and the results file's detail column "
                         "name each row, column and value")
        if items:
            out.append("<ul>" + "".join(i if i.startswith("<li") else f"<li>{escape(i)}</li>"
                                        for i in items) + "</ul>")
        out.append("</li>")
    out.append("</ul></div>")
    return out


_GROUP_ORDER = {"block": 0, "defer": 1, "error": 2, "invalid": 3, "allow": 4}


def _order(code: str) -> int:
    if code == "DUPLICATE":
        return 5
    return _GROUP_ORDER.get(code_decision(code) or "", 6)


def _ranked(counts: dict[str, Any]) -> list[tuple[str, int]]:
    return sorted(((k, int(v)) for k, v in counts.items() if int(v)),
                  key=lambda kv: (-kv[1], kv[0]))


def write_report(log: AuditLog, job_id: str, out: Path, *, sample_size: int = 40) -> Path:
    html = build_report(log, job_id, sample_size=sample_size)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html, encoding="utf-8")
    return out
