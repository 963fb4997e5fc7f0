"""One definition of list freshness: the rules, ``lists ls`` and the compliance report agree
(the service's ``/readyz``, ``/v1/lists`` and metrics: tests/server/test_server_freshness.py).

A Florida list 62 days old is fresh everywhere (Florida's registry rule allows 122 days); a
US national registry 32 days old is stale everywhere, by the same 1 day past 31.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from dncguard.audit import AuditLog, new_job_id
from dncguard.audit._jobs import record_job
from dncguard.audit.report import build_report
from dncguard.audit.settings import AuditSettings
from dncguard.cli import run
from dncguard.config import Settings
from dncguard.engine.scrubber import Scrubber
from dncguard.lists.store import ListStore
from dncguard.sources.protocol import Batch, CheckContext
from dncguard.sources.rules import RulesCheck, RulesSettings
from dncguard.sources.rules._loader import load_ruleset
from dncguard.sources.rules.freshness import (
    DEFAULT_MAX_AGE_DAYS,
    FreshnessPolicy,
    ListRef,
    blocking,
)

from .conftest import AT

DAY = AT.date()
FL_DATE = DAY - timedelta(days=62)
FTC_DATE = DAY - timedelta(days=32)
FL_NUMBER = "+13055550150"


@pytest.fixture
def policy() -> FreshnessPolicy:
    return FreshnessPolicy(load_ruleset())


def ref(name: str, kind: str, jurisdiction: str | None, snap: date | str | None) -> ListRef:
    return ListRef(name, kind, jurisdiction, snap.isoformat() if isinstance(snap, date)
                   else snap)


# -- the definition -----------------------------------------------------------------------------
def test_florida_62_days_is_fresh_by_its_rule(policy: FreshnessPolicy) -> None:
    f = policy.judge(ref("us-fl", "state", "US-FL", FL_DATE), DAY)
    assert (f.age_days, f.max_age_days, f.fresh, f.days_over) == (62, 122, True, -60)
    assert (f.basis, f.rule, f.citation) == ("rule", "US-FL:state_dnc", "Fla. Stat. 501.059")
    assert f.enforced and f.problem() is None


def test_us_national_32_days_is_stale_by_its_rule(policy: FreshnessPolicy) -> None:
    f = policy.judge(ref("us-ftc", "national", "US", FTC_DATE), DAY)
    assert (f.age_days, f.max_age_days, f.fresh, f.days_over) == (32, 31, False, 1)
    assert f.rule == "US:national_dnc" and f.citation is not None
    assert f.problem() == (f"list us-ftc is stale: snapshot {FTC_DATE} is 32 days old on "
                           f"{DAY}, 1 day past the 31 days allowed by rule US:national_dnc, "
                           f"{f.citation}")
    edge = policy.judge(ref("us-ftc", "national", "US", DAY - timedelta(days=31)), DAY)
    assert edge.fresh and edge.days_over == 0


def test_overrides_defaults_and_undated_kinds(policy: FreshnessPolicy) -> None:
    strict = FreshnessPolicy(load_ruleset(), {"us-fl": 30}, default_days=10)
    f = strict.judge(ref("us-fl", "state", "US-FL", FL_DATE), DAY)
    assert (f.max_age_days, f.fresh, f.basis, f.rule) == (30, False, "override",
                                                          "US-FL:state_dnc")
    assert "[rules] max_age_days for US-FL (overriding US-FL:state_dnc)" in (f.problem() or "")
    # a state without a registry rule (California) falls back on the default, not enforced
    ca = policy.judge(ref("us-ca", "state", "US-CA", DAY - timedelta(days=40)), DAY)
    assert (ca.max_age_days, ca.fresh, ca.basis, ca.rule) == (DEFAULT_MAX_AGE_DAYS, False,
                                                              "default", None)
    assert not ca.enforced
    assert strict.judge(ref("us-ca", "state", "US-CA", DAY - timedelta(days=11)), DAY
                        ).max_age_days == 10
    # lists that are not dated downloads never age
    for kind in ("internal", "litigator", "hashed", "prefix", "wireless", "cxone"):
        f = policy.judge(ref("x", kind, None, None), DAY)
        assert (f.max_age_days, f.fresh, f.basis) == (None, True, "undated")
    # a dated kind without a readable date is never fresh
    for snap in (None, "not-a-date"):
        f = policy.judge(ref("us-ftc", "national", "US", snap), DAY)
        assert (f.age_days, f.fresh) == (None, False)
        assert "cannot be shown" in (f.problem() or "")


def test_blocking_is_the_newest_list_of_each_enforced_registry(
        policy: FreshnessPolicy) -> None:
    judged = policy.judge_all([
        ref("us-ftc-old", "national", "US", DAY - timedelta(days=90)),
        ref("us-ftc", "national", "US", DAY - timedelta(days=3)),
        ref("us-fl", "state", "US-FL", FL_DATE),
        ref("us-tx", "state", "US-TX", DAY - timedelta(days=200)),
        ref("us-ca", "state", "US-CA", DAY - timedelta(days=400)),  # no rule: not blocking
    ], DAY)
    assert [f.name for f in judged if not f.fresh] == ["us-ftc-old", "us-tx", "us-ca"]
    assert [f.name for f in blocking(judged)] == ["us-tx"]


# -- the same numbers everywhere ------------------------------------------------------------
@pytest.fixture
def home(store: ListStore, write_lines: Callable[..., Path]) -> ListStore:
    """us-fl 62 days old and us-ftc 32 days old at the dial time AT."""
    store.import_file(write_lines(["3055550150"], "fl.txt"), kind="state", name="us-fl",
                      jurisdiction="US-FL", snapshot_date=FL_DATE)
    # a US national list covers the area codes it holds: 202 and Florida's 305
    store.import_file(write_lines(["2025550100", "3055550199"], "ftc.txt"), kind="national",
                      name="us-ftc", jurisdiction="US", snapshot_date=FTC_DATE)
    return store


def rule_reasons(settings: Settings, monkeypatch: pytest.MonkeyPatch,
                 phone: str) -> list[tuple[str, str | None, str]]:
    monkeypatch.delenv("DNCGUARD_RULES_ENABLED", raising=False)
    check = RulesCheck(settings, rules_settings=RulesSettings())
    batch = Batch.of([phone], ["US"], ["FL"])
    ctx = CheckContext(at=AT)
    reasons = asyncio.run(check.check(batch, ctx))[0]
    return [(r.code, r.rule, r.detail) for r in reasons if r.code.startswith("REGISTRY")]


def test_the_rules(home: ListStore, settings: Settings,
                   monkeypatch: pytest.MonkeyPatch) -> None:
    found = rule_reasons(settings, monkeypatch, FL_NUMBER)
    # Florida's list is fresh (no US-FL reason); the national registry is 1 day too old
    assert [(c, r) for c, r, _ in found] == [("REGISTRY_STALE", "US:national_dnc")]
    assert f"snapshot of {FTC_DATE} is 32 days old at the dial time; US allows 31 days" \
        in found[0][2]


def test_the_rules_follow_the_override(home: ListStore, settings: Settings,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DNCGUARD_RULES_MAX_AGE_DAYS", json.dumps({"us-fl": 60, "US": 20}))
    found = rule_reasons(settings, monkeypatch, FL_NUMBER)
    assert sorted((c, r) for c, r, _ in found) == [("REGISTRY_STALE", "US-FL:state_dnc"),
                                                   ("REGISTRY_STALE", "US:national_dnc")]
    details = " ".join(d for _, _, d in found)
    assert "62 days old at the dial time; US-FL allows 60 days" in details
    assert "32 days old at the dial time; US allows 20 days" in details


@pytest.mark.parametrize(("overrides", "says"), [
    ({"US": 4000}, "max_age_days for US is 4000 days, longer than the 31 days of its registry "
                   "rule US:national_dnc"),
    ({"us-fl": 150}, "max_age_days for US-FL is 150 days, longer than the 122 days"),
    ({"US-FX": 10}, "max_age_days: 'US-FX' is not a jurisdiction a list can have"),
    ({"XX": 10}, "max_age_days: 'XX' is not a jurisdiction"),
])
def test_an_override_longer_than_the_law_or_of_no_jurisdiction_is_refused(
        home: ListStore, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        overrides: dict[str, int], says: str) -> None:
    """An override may only be stricter than its registry rule: a longer one made a registry
    years old callable and /readyz ok. Refused in one line (exit 2), as an override for a
    jurisdiction no list can have is; the stricter ones and those of jurisdictions without a
    registry rule load."""
    monkeypatch.setenv("DNCGUARD_RULES_MAX_AGE_DAYS", json.dumps(overrides))
    assert run(["check", FL_NUMBER, "--json"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: invalid [rules] settings: ") and says in err
    assert len(err.strip().splitlines()) == 1 and "input_value" not in err
    monkeypatch.setenv("DNCGUARD_RULES_MAX_AGE_DAYS", json.dumps({"US": 31, "US-CA": 400,
                                                                  "CA-ON": 5, "gb": 28}))
    assert run(["lists", "ls", "--json"]) == 0


def test_lists_ls(home: ListStore, capsys: pytest.CaptureFixture[str],
                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("dncguard.sources.rules.freshness.utcnow", lambda: AT)
    assert run(["lists", "ls", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert {k: rows["us-fl"][k] for k in ("ageDays", "maxAgeDays", "fresh", "maxAgeRule")} == {
        "ageDays": 62, "maxAgeDays": 122, "fresh": True, "maxAgeRule": "US-FL:state_dnc"}
    assert {k: rows["us-ftc"][k] for k in ("ageDays", "maxAgeDays", "fresh", "maxAgeRule")} == {
        "ageDays": 32, "maxAgeDays": 31, "fresh": False, "maxAgeRule": "US:national_dnc"}
    assert rows["us-ftc"]["asOf"] == DAY.isoformat()
    monkeypatch.setenv("COLUMNS", "160")
    assert run(["lists", "ls"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"us-fl .*│ 62/122 +│ yes ", out), out
    assert re.search(r"us-ftc .*│ 32/31 +│ STALE \+1d ", out), out


def test_the_report(home: ListStore, settings: Settings, write_lines: Callable[..., Path],
                    tmp_path: Path) -> None:
    contacts = write_lines(["phone", "3055550150", "2025550199"], "contacts.csv")
    out = tmp_path / "verdicts.csv"
    summary = Scrubber(settings, clock=lambda: AT).scrub_file(contacts, out, at=AT)
    assert summary.lists == {"us-fl": FL_DATE.isoformat(), "us-ftc": FTC_DATE.isoformat()}
    log = AuditLog(settings, audit=AuditSettings(hmac_key="test-key"),
                   clock=lambda: datetime(2027, 3, 1, tzinfo=UTC))  # judged at the dial date
    job = new_job_id()
    record_job(log, job, out, summary)
    html = build_report(log, job)
    assert re.search(rf'us-fl</td><td>{FL_DATE}</td><td class="n">62</td><td><span '
                     r'class="ok">current</span></td><td class="n" data-max-age="us-fl">122<',
                     html), html
    assert re.search(rf'us-ftc</td><td>{FTC_DATE}</td><td class="n">32</td><td><span '
                     r'class="stale">stale</span> \(1 day over\)</td><td class="n" '
                     r'data-max-age="us-ftc">31</td><td>rule US:national_dnc', html), html
