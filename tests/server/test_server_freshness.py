"""List freshness in the service: ``/v1/lists``, ``/readyz`` and ``/metrics`` use the rules'
maximum ages (:mod:`dncguard.sources.rules.freshness`), with the same numbers as the rules and
``lists ls`` (tests/test_freshness.py)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

from dncguard.config import load_settings
from dncguard.lists.store import ListStore
from dncguard.sources.rules.freshness import FreshnessPolicy
from dncguard.store import utcnow

from .conftest import Server, make_key, server_env


def test_lists_readiness_and_metrics_judge_by_the_rules(
        tmp_path: Path, start_server: Callable[..., Server]) -> None:
    home = tmp_path / "home"
    admin = make_key(home, "admin")
    store = ListStore(load_settings(home=home))
    day = utcnow().date()
    dates = {"us-fl": day - timedelta(days=62), "us-ftc": day - timedelta(days=32),
             "us-ca": day - timedelta(days=40)}
    for name, kind, jurisdiction, line in (("us-fl", "state", "US-FL", "3055550150"),
                                           ("us-ftc", "national", "US", "2025550100"),
                                           ("us-ca", "state", "US-CA", "4155550100")):
        source = tmp_path / f"{name}.txt"
        source.write_text(line + "\n", encoding="utf-8")
        store.import_file(source, kind=kind, name=name, jurisdiction=jurisdiction,
                          snapshot_date=dates[name])
    server = start_server(server_env(home))
    with server.client(admin) as c:
        body = c.get("/v1/lists").json()
        as_of = date.fromisoformat(body["asOf"])
        late = (as_of - day).days  # 0 unless UTC midnight passed since the import
        got = {x["name"]: x for x in body["lists"]}
        fields = ("ageDays", "maxAgeDays", "fresh", "maxAgeRule", "maxAgeBasis")
        assert {k: got["us-fl"][k] for k in fields} == {
            "ageDays": 62 + late, "maxAgeDays": 122, "fresh": True,
            "maxAgeRule": "US-FL:state_dnc", "maxAgeBasis": "rule"}
        assert {k: got["us-ftc"][k] for k in fields} == {
            "ageDays": 32 + late, "maxAgeDays": 31, "fresh": False,
            "maxAgeRule": "US:national_dnc", "maxAgeBasis": "rule"}
        assert {k: got["us-ca"][k] for k in fields} == {  # no registry rule for California
            "ageDays": 40 + late, "maxAgeDays": 31, "fresh": False, "maxAgeRule": None,
            "maxAgeBasis": "default"}
        assert sorted(body["stale"]) == ["us-ca", "us-ftc"]
        # the service's numbers are the definition's numbers
        policy = FreshnessPolicy.of(load_settings(home=home))
        for info in store.all():
            f = policy.judge(info, as_of)
            assert (got[info.name]["ageDays"], got[info.name]["maxAgeDays"],
                    got[info.name]["fresh"]) == (f.age_days, f.max_age_days, f.fresh)

        ready = c.get("/readyz")
        assert ready.status_code == 503
        reasons = ready.json()["reasons"]
        assert len(reasons) == 1, reasons  # not us-fl (fresh), not us-ca (no rule to break)
        assert reasons[0].startswith(
            f"list us-ftc is stale: snapshot {dates['us-ftc']} is {32 + late} days old on "
            f"{as_of}, {1 + late} day{'s' if late else ''} past the 31 days allowed by rule "
            "US:national_dnc")
        assert "REGISTRY_STALE" in reasons[0] and "US numbers" in reasons[0]

        metrics = c.get("/metrics").text
        assert 'dncguard_list_fresh{list="us-fl"} 1.0' in metrics
        assert 'dncguard_list_fresh{list="us-ftc"} 0.0' in metrics
        assert 'dncguard_list_max_age_seconds{list="us-fl"} 1.05408e+07' in metrics  # 122 d
        assert 'dncguard_list_max_age_seconds{list="us-ftc"} 2.6784e+06' in metrics  # 31 d

        # a current national registry: ready, although Florida's list is 62 days old
        source = tmp_path / "ftc-new.txt"
        source.write_text("2025550100\n", encoding="utf-8")
        store.import_file(source, kind="national", name="us-ftc", jurisdiction="US",
                          snapshot_date=day)
        assert c.get("/readyz").status_code == 200, c.get("/readyz").text
        assert sorted(c.get("/v1/lists").json()["stale"]) == ["us-ca"]
