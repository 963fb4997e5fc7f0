"""Prometheus metrics, the access log (masked), and the hourly decision counts table.

Each app has its own :class:`~prometheus_client.CollectorRegistry`. With several uvicorn
workers each process reports its own series (scrape each, or run one worker per container).
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, MutableMapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client import Counter as PromCounter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine, and_, func, insert, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from ..engine.summary import place_key
from ..lists.store import ListStore
from ..models import Decision, Reason, Verdict
from ..sources.rules.freshness import FreshnessPolicy
from ..store import utcnow
from .tables import decision_counts_table

access_log = logging.getLogger("dncguard.access")
log = logging.getLogger("dncguard.server")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_DIGITS = re.compile(r"\d")


def masked_path(scope: Scope) -> str:
    """The route template (``/v1/dnc/{phone}``) or, unmatched, the path with digits masked."""
    route = scope.get("route")
    template = getattr(route, "path", None)
    if isinstance(template, str):
        return template
    return _DIGITS.sub("#", str(scope.get("path", "")))[:200]


#: Request series whose children :class:`Metrics` keeps at hand.
_SERIES_MAX = 1024


class Metrics:
    """The service's Prometheus series."""

    def __init__(self, list_ages: Callable[[], Iterable[ListAge]],
                 outbox: Callable[[], dict[str, float]] | None = None,
                 cxone_outbox: Callable[[], dict[str, float]] | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = PromCounter("dncguard_http_requests", "HTTP requests",
                                    ["method", "route", "status"], registry=self.registry)
        self.latency = Histogram(
            "dncguard_http_request_duration_seconds", "HTTP request latency",
            ["method", "route"], registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
        self.decisions = PromCounter("dncguard_decisions", "Verdicts served, by decision and "
                                     "reason (a verdict counts once per reason)",
                                     ["decision", "reason"], registry=self.registry)
        self.source_errors = PromCounter("dncguard_source_errors", "SOURCE_ERROR reasons served",
                                         ["source"], registry=self.registry)
        self.jobs_rows = PromCounter("dncguard_job_rows", "Job rows committed",
                                     registry=self.registry)
        self.registry.register(_ListAgeCollector(list_ages))
        self.registry.register(_RetryCollector())
        self.registry.register(_PrefilterCollector())
        if outbox is not None:
            self.registry.register(_OutboxCollector(outbox))
        if cxone_outbox is not None:  # the write-back queue (topic cxone.push)
            self.registry.register(_OutboxCollector(cxone_outbox, "dncguard_cxone_outbox",
                                                    "CXone write-back"))
        #: the request series' children by (method, route label, status): a label look-up
        #: costs more than the increment (the labels are bounded: unmatched paths share one,
        #: and so do methods other than the usual ones)
        self._request_series: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def request_done(self, method: str, label: str, status: int, elapsed: float) -> None:
        """Count one answered request and its latency."""
        key = (method, label, status)
        series = self._request_series.get(key)
        if series is None:
            series = (self.requests.labels(method, label, str(status)),
                      self.latency.labels(method, label))
            if len(self._request_series) < _SERIES_MAX:
                self._request_series[key] = series
        series[0].inc()
        series[1].observe(elapsed)

    def observe(self, verdicts: Iterable[Verdict]) -> None:
        """Count verdicts (see :meth:`observe_rows`)."""
        self.observe_rows((v.decision, v.reasons) for v in verdicts)

    def observe_rows(self, rows: Iterable[tuple[Decision, Sequence[Reason]]]) -> None:
        """Count (decision, reasons) rows, a check's, a batch's or a job chunk's: tallied
        first, then one increment per series (a batch of 10,000 verdicts is a few series, not
        10,000 label look-ups)."""
        tally: Counter[tuple[str, tuple[int, ...]]] = Counter()
        seen: dict[tuple[int, ...], _Signature] = {}
        for decision, reasons in rows:
            tally[(decision.value, _signature(reasons, seen))] += 1
        errors: Counter[str] = Counter()
        for (value, key), n in tally.items():
            sig = seen[key]
            for code in sig.codes or ("",):
                self.decisions.labels(value, code).inc(n)
            for source in sig.errors:
                errors[source] += n
        for source, n in errors.items():
            self.source_errors.labels(source).inc(n)


class _ListAgeCollector(Collector):
    def __init__(self, ages: Callable[[], Iterable[ListAge]]) -> None:
        self.ages = ages

    def collect(self) -> Iterable[GaugeMetricFamily]:
        age = GaugeMetricFamily("dncguard_list_age_seconds",
                                "Age of each list's data (snapshot date, else last update)",
                                labels=["list"])
        max_age = GaugeMetricFamily("dncguard_list_max_age_seconds",
                                    "Age a dated list may reach (its registry rule, an "
                                    "override or the default; dncguard.sources.rules.freshness)",
                                    labels=["list"])
        fresh = GaugeMetricFamily("dncguard_list_fresh",
                                  "1 while the list is within its maximum age, else 0",
                                  labels=["list"])
        intact = GaugeMetricFamily("dncguard_list_snapshot_ok",
                                   "1 while the list's snapshot file matches its seal, else 0 "
                                   "(its checks answer error)", labels=["list"])
        try:
            for item in self.ages():
                age.add_metric([item.name], item.seconds)
                fresh.add_metric([item.name], 1.0 if item.fresh else 0.0)
                if item.max_age_seconds is not None:
                    max_age.add_metric([item.name], item.max_age_seconds)
                if item.snapshot_ok is not None:
                    intact.add_metric([item.name], 1.0 if item.snapshot_ok else 0.0)
        except Exception:  # the database is away: report no ages rather than fail the scrape
            log.warning("list ages unavailable for /metrics")
        yield age
        yield max_age
        yield fresh
        yield intact


class _RetryCollector(Collector):
    """Retries of the remote sources (CXone, http-batch) made in this process."""

    def collect(self) -> Iterable[CounterMetricFamily]:
        from ..sources.remote.resilience import RETRIES_TOTAL

        family = CounterMetricFamily("dncguard_remote_retries",
                                     "Retries of remote DNC sources, by source and cause",
                                     labels=["source", "cause"])
        for (source, cause), n in sorted(RETRIES_TOTAL.items()):
            family.add_metric([source, cause], n)
        yield family


#: The pre-filter's counters: (series suffix, field of the stats, help text).
_PREFILTER_COUNTERS = (
    ("checks", "checked", "Numbers looked up in the remote sources' pre-filter"),
    ("hits", "hits", "Pre-filter hits (numbers recently reported as listed)"),
    ("local_suppressions", "localSuppressions",
     "Numbers suppressed from the pre-filter without a remote call"),
    ("remote_calls_saved", "remoteCallsSaved", "Remote calls the pre-filter made unnecessary"),
    ("reverified", "reverified", "Pre-filter hits re-verified with the source"),
    ("false_positives", "falsePositives",
     "Re-verified pre-filter hits the source no longer reports"),
)


class _PrefilterCollector(Collector):
    """The hash pre-filter of remote sources: counters of this process, the false-positive
    rate of re-verified hits, the current TTL and the live entries."""

    def collect(self) -> Iterable[CounterMetricFamily | GaugeMetricFamily]:
        from ..sources.remote import prefilter

        totals = prefilter.totals()
        sources = sorted({src for src, _ in totals})
        for suffix, key, text in _PREFILTER_COUNTERS:
            family = CounterMetricFamily(f"dncguard_prefilter_{suffix}", text, labels=["source"])
            for src in sources:
                family.add_metric([src], totals.get((src, key), 0))
            yield family
        rate = GaugeMetricFamily("dncguard_prefilter_false_positive_rate",
                                 "False positives over re-verified pre-filter hits, this process",
                                 labels=["source"])
        for src in sources:
            reverified = totals.get((src, "reverified"), 0)
            if reverified:
                rate.add_metric([src], totals.get((src, "falsePositives"), 0) / reverified)
        yield rate
        ttl = GaugeMetricFamily("dncguard_prefilter_ttl_seconds",
                                "Current time to live of pre-filter entries", labels=["source"])
        entries = GaugeMetricFamily("dncguard_prefilter_entries",
                                    "Estimated live entries of the pre-filter", labels=["source"])
        latest: dict[str, Any] = {}
        for store in sorted(prefilter.stores(), key=lambda st: st.last_used):
            latest[store.source] = store  # the most recently used store of each source
        for src, store in sorted(latest.items()):
            try:
                ttl.add_metric([src], store.ttl)
                entries.add_metric([src], store.entries())
            except Exception:  # never fail the scrape
                log.warning("pre-filter %s numbers unavailable for /metrics", src)
        yield ttl
        yield entries


class _OutboxCollector(Collector):
    """An outbox's backlog, failures, oldest pending item: the audit export's
    (``dncguard_audit_outbox``) or the CXone write-back's (``dncguard_cxone_outbox``)."""

    def __init__(self, numbers: Callable[[], dict[str, float]],
                 name: str = "dncguard_audit_outbox", what: str = "Audit export") -> None:
        self.numbers = numbers
        self.name = name
        self.what = what

    def collect(self) -> Iterable[GaugeMetricFamily]:
        family = GaugeMetricFamily(self.name, f"{self.what} outbox items by state "
                                   "(pending, delivered, dead, failing) and the oldest pending "
                                   "item's age in seconds", labels=["what"])
        try:
            for what, value in sorted(self.numbers().items()):
                family.add_metric([what], value)
        except Exception:  # the database is away: report nothing rather than fail the scrape
            log.warning("%s outbox numbers unavailable for /metrics", self.what)
        yield family


@dataclass(frozen=True)
class ListAge:
    """One list's series: age, maximum age and freshness
    (:mod:`dncguard.sources.rules.freshness`), and whether its snapshot verifies (None: no
    snapshot file)."""

    name: str
    seconds: float
    max_age_seconds: float | None
    fresh: bool
    snapshot_ok: bool | None


def list_ages(store: ListStore) -> list[ListAge]:
    now = utcnow()
    policy = FreshnessPolicy.of(store.settings)
    out = []
    for info in store.all():
        f = policy.judge(info, now.date())
        moment = None
        if info.snapshot_date and f.age_days is not None:
            moment = datetime.combine(date.fromisoformat(info.snapshot_date),
                                      datetime.min.time(), UTC)
        moment = moment or info.synced_at or info.updated_at
        out.append(ListAge(
            info.name, max((now - moment).total_seconds(), 0.0),
            None if f.max_age_days is None else f.max_age_days * 86400.0, f.fresh,
            None if info.current_file is None else store.snapshot_problem(info) is None))
    return out


class ObserveMiddleware:
    """Request metrics and one masked access-log line per request (uvicorn's is off)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            record_request(self.metrics, scope, status, time.perf_counter() - start)


#: The methods the request series name; any other (PROPFIND, M-SEARCH, made-up ones: the
#: server passes every token through) counts as ``OTHER``.
METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})


def record_request(metrics: Metrics, scope: Scope, status: int, elapsed: float) -> None:
    """A request's metrics and its masked access-log line."""
    route = masked_path(scope)
    method = str(scope.get("method", ""))
    # unmatched paths share one label, other methods another: anyone who can reach the port
    # must not grow the series without end
    label = route if scope.get("route") is not None else "<unmatched>"
    metrics.request_done(method if method in METHODS else "OTHER", label, status, elapsed)
    client = scope.get("client") or ("-", 0)
    key = scope.get("state", {}).get("key_id", "-")
    access_log.info('%s "%s %s" %d %.1fms key=%s', client[0], method, route, status,
                    elapsed * 1000, key)


@dataclass(frozen=True, slots=True)
class _Signature:
    """What the counts read off a verdict's reasons, worked out once per distinct list."""

    reasons: tuple[Reason, ...]  # held, so that no other object takes their ids meanwhile
    codes: tuple[str, ...]  # distinct, in order
    sources: tuple[str, ...]  # distinct lists (else sources), in order
    errors: tuple[str, ...]  # the source of each SOURCE_ERROR reason


def _signature(reasons: Sequence[Reason], seen: dict[tuple[int, ...], _Signature]
               ) -> tuple[int, ...]:
    """The key of ``reasons`` in ``seen`` (the reason objects' identities: the rows of a
    batch share their reasons' objects), its :class:`_Signature` added when new."""
    key = tuple(map(id, reasons))
    if key not in seen:
        seen[key] = _Signature(
            tuple(reasons), tuple(dict.fromkeys(r.code for r in reasons)),
            tuple(s for s in dict.fromkeys(r.list or r.source for r in reasons) if s),
            tuple(r.source or r.list or "unknown" for r in reasons if r.code == "SOURCE_ERROR"))
    return key


def _hour(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


class DecisionCounter:
    """Counts verdicts per hour in memory and adds them to ``decision_counts`` periodically."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._pending: Counter[tuple[datetime, str, str, str]] = Counter()
        self._lock = threading.Lock()

    def record(self, verdicts: Iterable[Verdict]) -> None:
        self.record_rows((v.decision, v.reasons, place_key(v.state, v.region)) for v in verdicts)

    def record_rows(self, rows: Iterable[tuple[Decision, Sequence[Reason], str | None]]) -> None:
        """Count (decision, reasons, state) rows in the current hour (rows tallied by
        decision, reasons and state first, then each tally added to its counts)."""
        hour = _hour(utcnow())
        tally: Counter[tuple[str, tuple[int, ...], str | None]] = Counter()
        seen: dict[tuple[int, ...], _Signature] = {}
        for decision, reasons, state in rows:
            tally[(decision.value, _signature(reasons, seen), state)] += 1
        batch: Counter[tuple[datetime, str, str, str]] = Counter()
        for (d, key, state), n in tally.items():
            sig = seen[key]
            batch[(hour, "decision", d, d)] += n
            for code in sig.codes:
                batch[(hour, "reason", code, d)] += n
            for src in sig.sources:
                batch[(hour, "source", src[:200], d)] += n
            batch[(hour, "state", (state or "unknown")[:200], d)] += n
        with self._lock:
            self._pending.update(batch)

    def flush(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, Counter()
        if not pending:
            return
        t = decision_counts_table
        try:
            with self.engine.begin() as conn:
                for (hour, kind, key, decision), n in pending.items():
                    where = and_(t.c.hour == hour, t.c.kind == kind, t.c.key == key,
                                 t.c.decision == decision)
                    if conn.execute(update(t).where(where).values(n=t.c.n + n)).rowcount:
                        continue
                    conn.execute(insert(t).values(hour=hour, kind=kind, key=key,
                                                  decision=decision, n=n))
        except (IntegrityError, SQLAlchemyError) as exc:
            # another replica inserted the same hour's row first, or the database is away:
            # keep the counts for the next flush
            log.info("decision counts not flushed yet: %s", type(exc).__name__)
            with self._lock:
                self._pending.update(pending)

    def summary(self, start: datetime, end: datetime) -> dict[str, Any]:
        self.flush()
        t = decision_counts_table
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(t.c.kind, t.c.key, t.c.decision, func.sum(t.c.n))
                .where(t.c.hour >= _hour(start), t.c.hour <= end)
                .group_by(t.c.kind, t.c.key, t.c.decision)).all()
        out: dict[str, dict[str, dict[str, int]]] = {
            "reason": {}, "source": {}, "state": {}, "decision": {}}
        for kind, key, decision, n in rows:
            out.setdefault(kind, {}).setdefault(key, {})[decision] = int(n)
        by_decision = {k: sum(v.values()) for k, v in out["decision"].items()}
        total = sum(by_decision.values())
        suppressed = sum(by_decision.get(d, 0) for d in ("block", "defer", "error"))
        return {
            "from": _hour(start), "to": end, "verdicts": total, "byDecision": by_decision,
            "suppressionRate": round(suppressed / total, 6) if total else None,
            "byReason": out["reason"], "bySource": out["source"], "byState": out["state"],
        }


def default_range(start: datetime | None, end: datetime | None) -> tuple[datetime, datetime]:
    end = end or utcnow()
    return (start or end - timedelta(days=1)), end
