"""The compliance report: one self-contained HTML file (inline CSS and SVG, no scripts, no
links) that a compliance officer can file as safe-harbor evidence for one scrub job.

Every number shown comes from the job's audit record (the summary stored when the job ran);
the sample of decisions comes from the retained results file, with numbers masked.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import date, datetime
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..phones import mask
from .jobs import AuditError, file_sha256, verdict_cells
from .log import AuditLog

if TYPE_CHECKING:
    from ..freshness import Freshness

_COLOURS = {"allow": "#2e7d32", "defer": "#f9a825", "error": "#8e24aa", "block": "#c62828",
            "invalid": "#757575"}
_BAR = "#1565c0"

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;
max-width:960px;color:#222;padding:0 1em}
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.2em;margin-top:1.8em;
border-bottom:1px solid #ddd;padding-bottom:.2em}
table{border-collapse:collapse;margin:.5em 0;width:100%}
th,td{border:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f5f5f5}td.n{text-align:right;font-variant-numeric:tabular-nums}
.muted{color:#666}.stale{color:#c62828;font-weight:600}.ok{color:#2e7d32}
code{font-size:.9em;word-break:break-all}.grid{display:flex;flex-wrap:wrap;gap:1em}
.card{border:1px solid #ddd;border-radius:6px;padding:.6em 1em;min-width:120px}
.card b{display:block;font-size:1.5em}
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


def _freshness(log: AuditLog, lists: dict[str, str | None], day: date) -> list[Freshness]:
    """Every list used, judged on the dial date by :mod:`dncguard.freshness` (the rules'
    definition): its kind and jurisdiction as stored now, its snapshot date as recorded. A
    list removed since is judged as a dated list without a registry rule."""
    from ..freshness import FreshnessPolicy, ListRef
    from ..lists import ListStore

    try:
        known = {i.name: i for i in ListStore(log.settings).all()}
    except Exception:  # the report still shows dates and ages, judged by the default
        known = {}
    policy = FreshnessPolicy.of(log.settings)
    out = []
    for name, snap in sorted(lists.items()):
        info = known.get(name)
        kind = info.kind if info else ("national" if snap else "internal")
        jurisdiction = info.jurisdiction if info else None
        out.append(policy.judge(ListRef(name, kind, jurisdiction, snap), day))
    return out


def _status(f: Freshness) -> str:
    if f.max_age_days is None:
        return '<span class="muted">undated (maintained continuously)</span>'
    if f.fresh:
        return '<span class="ok">current</span>'
    over = f.days_over
    if not over:
        return '<span class="stale">stale</span> (no readable snapshot date)'
    return f'<span class="stale">stale</span> ({over} day{"s" if over != 1 else ""} over)'


def _sample(path: Path | None, size: int) -> list[dict[str, Any]]:
    """Up to ``size`` rows: first rows of every decision and reason code, then the rest."""
    if path is None or not path.is_file():
        return []
    picked: list[dict[str, Any]] = []
    seen: Counter[str] = Counter()
    per = max(1, size // 8)
    rest: list[dict[str, Any]] = []
    for i, (e164, decision, codes, detail, next_at) in enumerate(verdict_cells(path), 1):
        row = {"row": i, "number": mask(e164) if e164 else "(none)", "decision": decision,
               "codes": codes, "detail": detail, "next": next_at}
        key = f"{decision}|{codes}"
        if seen[key] < per and len(picked) < size:
            seen[key] += 1
            picked.append(row)
        elif len(rest) < size:
            rest.append(row)
        if len(picked) >= size:
            break
    picked.extend(rest[: size - len(picked)])
    return sorted(picked, key=lambda r: int(r["row"]))


def build_report(log: AuditLog, job_id: str, *, sample_size: int = 40,
                 generated_at: datetime | None = None) -> str:
    """The HTML report of one job."""
    rec = log.find("job", job_id)
    if rec is None:
        raise AuditError(f"no audit record for job {job_id!r}")
    s: dict[str, Any] = rec.data.get("summary", {})
    results: dict[str, Any] = rec.data.get("results", {})
    merkle: dict[str, Any] = rec.data.get("merkle", {})
    retained = results.get("retained")
    path = log.settings.home / retained if retained else None
    intact = None
    if path is not None and path.is_file():
        intact = file_sha256(path) == results.get("sha256")
    by_decision: dict[str, int] = s.get("byDecision", {})
    by_reason: dict[str, int] = s.get("byReason", {})
    by_list: dict[str, int] = s.get("byList", {})
    by_state: dict[str, dict[str, int]] = s.get("byState", {})
    suppressed = sum(int(by_decision.get(d, 0)) for d in ("block", "defer", "error"))
    dial = s.get("dial_time") or rec.at.isoformat()
    try:
        dial_date = datetime.fromisoformat(str(dial).replace("Z", "+00:00")).date()
    except ValueError:
        dial_date = rec.at.date()
    versions = rec.versions
    lists: dict[str, str | None] = versions.get("lists", {}) or s.get("lists", {})
    ruleset = versions.get("ruleset") or s.get("ruleset")
    now = generated_at or log.clock()
    verify = log.verify()

    h: list[str] = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>dncguard compliance report: {escape(job_id)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>Compliance report: scrub job <code>{escape(job_id)}</code></h1>",
        f'<p class="muted">Generated {escape(now.isoformat())} by dncguard from audit record '
        f'{rec.seq} (hash <code>{escape(rec.hash)}</code>). Numbers are masked.</p>',
        '<div class="grid">',
    ]
    cards = [("Total contacts", "totalRows", s.get("totalRows", 0)),
             ("Suppressed (rows)", "suppressed", suppressed),
             ("Allowed (rows)", "allowed", int(by_decision.get("allow", 0))),
             ("Invalid (rows)", "invalid", int(by_decision.get("invalid", 0))),
             ("Suppression rate", "suppressionRate", s.get("suppressionRate"))]
    for label, fieldname, value in cards:
        shown = (f"{value:.1%}" if isinstance(value, float) and fieldname == "suppressionRate"
                 else _fmt(value))
        h.append(f'<div class="card">{escape(label)}<b data-field="{fieldname}" '
                 f'data-value="{escape(json.dumps(value))}">{escape(shown)}</b></div>')
    h.append("</div>")

    h.append("<h2>Job</h2><table>")
    facts = [
        ("Job id", "jobId", job_id), ("Run by", "who", rec.who),
        ("Campaign", "campaign", s.get("campaign")), ("Dial time", "dialTime", dial),
        ("Started", "startedAt", s.get("started_at")),
        ("Finished", "finishedAt", s.get("finished_at")),
        ("Input file", "input", Path(str(s.get("input") or "")).name or None),
        ("Results file", "resultsFile", results.get("file")),
        ("Unique valid numbers", "uniqueValid", s.get("uniqueValid")),
        ("Duplicates", "duplicates", s.get("duplicates")),
        ("Unique numbers suppressed", "uniqueSuppressed", s.get("uniqueSuppressed")),
        ("Rows that could not be verified", "sourceErrors", s.get("sourceErrors")),
        ("Rows with bad input", "rowErrorCount", s.get("rowErrorCount")),
        ("Rows per second", "rowsPerSecond", s.get("rowsPerSecond")),
        ("Ruleset version", "ruleset", ruleset or "none (no calling rules applied)"),
        ("Results file SHA-256", "resultsSha256", results.get("sha256")),
        ("Merkle root of every row's verdict", "merkleRoot", merkle.get("root")),
        ("Retained results file", "retained",
         "intact" if intact else ("ALTERED" if intact is False else "not retained")),
        ("Audit chain", "chain", ("verified: " if verify.ok else "FAILED: ") + verify.message),
    ]
    for label, fieldname, value in facts:
        h.append(f'<tr><th>{escape(label)}</th><td data-field="{fieldname}">'
                 f"{escape(_fmt(value))}</td></tr>")
    h.append("</table>")

    h.append("<h2>Decisions</h2><table><tr><th>decision</th><th>rows</th></tr>")
    for d, n in by_decision.items():
        h.append(f'<tr><td>{escape(d)}</td><td class="n" data-decision="{escape(d)}">'
                 f"{n:,}</td></tr>")
    h.append("</table>")
    h.append(bar_chart("Rows by decision", [(k, int(v)) for k, v in by_decision.items()],
                       colours=_COLOURS, chart_id="chart-decision"))

    h.extend(_ranked("Suppression by reason", "Rows by reason code", "chart-reason",
                     ("reason code", "rows"), "reason", by_reason))
    h.extend(_ranked("Suppression by source (list)", "Rows matched per list", "chart-source",
                     ("list", "rows matched"), "list", by_list))

    h.append("<h2>Suppression by state</h2>")
    states = sorted(((st, sum(int(c.get(d, 0)) for d in ("block", "defer", "error")))
                     for st, c in by_state.items()), key=lambda kv: (-kv[1], kv[0]))
    h.append(bar_chart("Rows suppressed per state or region", states, chart_id="chart-state"))
    h.append("<table><tr><th>state / region</th><th>suppressed</th><th>all decisions</th></tr>")
    for st, n in states:
        detail = ", ".join(f"{k} {v:,}" for k, v in by_state[st].items())
        h.append(f'<tr><td>{escape(st)}</td><td class="n" data-state="{escape(st)}">{n:,}'
                 f"</td><td>{escape(detail)}</td></tr>")
    h.append("</table>")

    h.append(f"<h2>Data used: freshness of every list</h2><p>Ages are counted to the dial "
             f"date {escape(dial_date.isoformat())}. A national or state list may be used for "
             "the days its jurisdiction's registry rule allows (US national registry 31, "
             "Florida 122, ...), an operator override, or else the default for lists without "
             "a rule; older lists are flagged.</p><table><tr><th>list</th><th>snapshot date"
             "</th><th>age (days)</th><th>status</th><th>max age (days)</th><th>limit set by"
             "</th></tr>")
    for f in _freshness(log, lists, dial_date):
        limit = "" if f.max_age_days is None else f.limit_text()
        h.append(f'<tr><td data-list-used="{escape(f.name)}">{escape(f.name)}</td>'
                 f"<td>{escape(f.snapshot_date or '-')}</td><td class=\"n\">"
                 f"{'' if f.age_days is None else f.age_days}</td><td>{_status(f)}</td>"
                 f'<td class="n" data-max-age="{escape(f.name)}">'
                 f"{'' if f.max_age_days is None else f.max_age_days}</td>"
                 f"<td>{escape(limit)}</td></tr>")
    h.append(f'</table><p>Ruleset version: <b data-field="rulesetVersion">'
             f"{escape(ruleset or 'none')}</b></p>")

    sample = _sample(path, sample_size)
    h.append(f"<h2>Sample of decisions</h2><p>{len(sample)} of "
             f"{_fmt(s.get('totalRows', 0))} rows: the first of each decision and reason "
             "combination, then others. Any row can be proven against the Merkle root with "
             f"<code>dncguard audit prove {escape(job_id)} ROW</code>.</p>")
    h.append("<table><tr><th>row</th><th>number</th><th>decision</th><th>reasons</th>"
             "<th>detail</th><th>next allowed</th></tr>")
    for r in sample:
        colour = _COLOURS.get(str(r["decision"]), "#222")
        h.append(f'<tr data-row="{r["row"]}"><td class="n">{r["row"]}</td>'
                 f'<td><code>{escape(str(r["number"]))}</code></td>'
                 f'<td style="color:{colour};font-weight:600">{escape(str(r["decision"]))}</td>'
                 f'<td>{escape(str(r["codes"]).replace(";", ", "))}</td>'
                 f'<td>{escape(str(r["detail"]))}</td><td>{escape(str(r["next"] or ""))}</td>'
                 "</tr>")
    h.append("</table>")
    h.append('<p class="muted">This report is generated from the tamper-evident audit trail; '
             "<code>dncguard audit verify</code> checks the chain it comes from.</p>")
    h.append("</body></html>")
    return "\n".join(h)


def write_report(log: AuditLog, job_id: str, out: Path, *, sample_size: int = 40) -> Path:
    html = build_report(log, job_id, sample_size=sample_size)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html, encoding="utf-8")
    return out


def _ranked(title: str, chart_title: str, chart_id: str, columns: tuple[str, str],
            attribute: str, counts: dict[str, Any]) -> list[str]:
    """A report section: a bar chart and a table of counts, largest first."""
    ranked = sorted(((k, int(v)) for k, v in counts.items()), key=lambda kv: -kv[1])
    out = [f"<h2>{escape(title)}</h2>", bar_chart(chart_title, ranked, chart_id=chart_id),
           f"<table><tr><th>{escape(columns[0])}</th><th>{escape(columns[1])}</th></tr>"]
    out.extend(f'<tr><td>{escape(key)}</td><td class="n" data-{attribute}="{escape(key)}">'
               f"{n:,}</td></tr>" for key, n in ranked)
    out.append("</table>")
    return out
