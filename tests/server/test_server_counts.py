"""The verdict counts (Prometheus series and the hourly ``decision_counts``) tally a batch
first, by decision, reasons and state: a batch must count what its verdicts counted one at a
time would, whether or not they share their reason objects."""

from __future__ import annotations

import copy
import random
from datetime import UTC, datetime
from pathlib import Path

from prometheus_client import generate_latest

from dncguard.models import Decision, Reason, ReasonCode, Verdict
from dncguard.server._metrics import DecisionCounter, Metrics
from dncguard.store import get_engine

T0 = datetime(2026, 11, 19, 15, 0, tzinfo=UTC)

_REASONS = [
    [],
    [Reason(code=ReasonCode.DNC_NATIONAL, decision=Decision.BLOCK, source="local",
            list="us-ftc")],
    [Reason(code=ReasonCode.DNC_NATIONAL, decision=Decision.BLOCK, source="local",
            list="us-ftc"),
     Reason(code=ReasonCode.DNC_STATE, decision=Decision.BLOCK, source="local", list="tx"),
     Reason(code=ReasonCode.DNC_NATIONAL, decision=Decision.BLOCK, source="local",
            list="us-ftc")],  # a code and a list twice: each counts once per verdict
    [Reason(code=ReasonCode.SOURCE_ERROR, decision=Decision.ERROR, source="cxone"),
     Reason(code=ReasonCode.SOURCE_ERROR, decision=Decision.ERROR, list="tx"),
     Reason(code=ReasonCode.SOURCE_ERROR, decision=Decision.ERROR)],
    [Reason(code="OUTSIDE_CALLING_WINDOW", decision=Decision.DEFER, source="rules",
            rule="US:calling_window")],
]
_DECISIONS = [Decision.ALLOW, Decision.BLOCK, Decision.BLOCK, Decision.ERROR, Decision.DEFER]


def _batch(n: int, seed: int) -> list[Verdict]:
    """Verdicts whose reason lists share their objects, as the engine's do."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        k = rng.randrange(len(_REASONS))
        out.append(Verdict(input=f"+1202555{i:04d}", e164=f"+1202555{i:04d}",
                           decision=_DECISIONS[k], reasons=list(_REASONS[k]), region="US",
                           state=rng.choice(["TX", "DC", None]), dial_time=T0, checked_at=T0))
    return out


def _series(m: Metrics) -> list[str]:
    return sorted(line for line in generate_latest(m.registry).decode().splitlines()
                  if line.startswith(("dncguard_decisions_total", "dncguard_source_errors_total")))


def test_metrics_of_a_batch_are_those_of_its_verdicts_one_by_one() -> None:
    verdicts = _batch(500, 1)
    together, alone = Metrics(lambda: []), Metrics(lambda: [])
    together.observe(verdicts)
    for v in verdicts:
        alone.observe([copy.deepcopy(v)])  # no object shared with any other verdict
    assert _series(together) == _series(alone)
    text = "\n".join(_series(together))
    errors = sum(1 for v in verdicts if v.decision == Decision.ERROR)
    assert errors and f'dncguard_source_errors_total{{source="cxone"}} {errors}.0' in text
    assert f'dncguard_source_errors_total{{source="unknown"}} {errors}.0' in text
    blocked = sum(1 for v in verdicts if any(r.code == "DNC_STATE" for r in v.reasons))
    assert f'dncguard_decisions_total{{decision="block",reason="DNC_STATE"}} {blocked}.0' in text


def test_hourly_counts_of_a_batch_are_those_of_its_verdicts_one_by_one(tmp_path: Path) -> None:
    from dncguard.config import load_settings

    engine = get_engine(load_settings(home=tmp_path / "home"))
    verdicts = _batch(500, 2)
    together, alone = DecisionCounter(engine), DecisionCounter(engine)
    together.record(verdicts)
    for v in verdicts:
        alone.record([copy.deepcopy(v)])
    assert together._pending == alone._pending
    hour = next(iter(together._pending))[0]
    nat = sum(1 for v in verdicts if any(r.code == "DNC_NATIONAL" for r in v.reasons))
    assert together._pending[(hour, "reason", "DNC_NATIONAL", "block")] == nat
    assert together._pending[(hour, "source", "us-ftc", "block")] == nat
    no_state = sum(1 for v in verdicts if v.decision == Decision.ALLOW and v.state is None)
    assert no_state and together._pending[(hour, "state", "US (country)", "allow")] == no_state


def test_a_country_is_not_counted_as_a_state(tmp_path: Path) -> None:
    """A Canadian number with no province was counted under California's CA, as the
    scrub's byState did (engine.summary.place_key is both's rule now)."""
    from dncguard.config import load_settings

    counter = DecisionCounter(get_engine(load_settings(home=tmp_path / "home")))
    counter.record([
        Verdict(input="+16005550100", e164="+16005550100", decision=Decision.ALLOW,
                region="CA", state=None, dial_time=T0, checked_at=T0),
        Verdict(input="+14155550100", e164="+14155550100", decision=Decision.ALLOW,
                region="US", state="CA", dial_time=T0, checked_at=T0)])
    states = {key[2]: n for key, n in counter._pending.items() if key[1] == "state"}
    assert states == {"CA (country)": 1, "CA": 1}
