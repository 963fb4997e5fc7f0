"""A campaign profile's ``lists`` select a source's lists by their own names: the source runs,
checks those lists and no others, and the verdict names their versions (a source selected by
its name checks, and names, all its lists). Against the sandbox on loopback (real sockets),
with the sources the settings configure (``sources.registry``), as a scrub builds them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from dncguard.config import Settings, load_settings
from dncguard.engine.scrubber import Scrubber
from dncguard.models import Decision, Verdict
from dncguard.sandbox import SandboxServer, run_sandbox
from dncguard.sources.cxone import CxoneClient, CxoneSync, load_cxone

#: Two active CXone groups and two http-batch lists, each holding its own number.
SEED = {
    "groups": [
        {"dncGroupId": 364, "dncGroupName": "Internal DNC", "records": ["2025550101"]},
        {"dncGroupId": 365, "dncGroupName": "Collections DNC", "records": ["6175550105"]},
    ],
    "http_batch": {"lists": {"partner-dnc": ["+14155550111"],
                             "other-dnc": ["+13125550120"]}},
}
ON_364, ON_365 = "+12025550101", "+16175550105"
ON_PARTNER, ON_OTHER = "+14155550111", "+13125550120"

PROFILES = """
[campaigns.cx-group]
lists = ["cxone:364"]
[campaigns.cx-source]
lists = ["cxone"]
[campaigns.partner]
lists = ["http-batch:partner-dnc"]
[campaigns.hb-source]
lists = ["http-batch"]
"""


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    with run_sandbox(data=SEED) as server:
        yield server


@pytest.fixture
def configured(sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch,
               tmp_path: Path) -> Settings:
    """Settings pointing CXone and http-batch at the sandbox, with the profiles above, and
    the CXone groups synced."""
    import asyncio

    for name, value in sandbox.env().items():
        monkeypatch.setenv(name, value)
    home = tmp_path / "home"
    home.mkdir(parents=True, exist_ok=True)
    (home / "dncguard.toml").write_text(PROFILES, encoding="utf-8")
    cfg = load_settings(home=home)
    cx = load_cxone(cfg)

    async def sync() -> None:
        async with CxoneClient(cx) as client:
            await CxoneSync(cfg, cx, client).sync()

    asyncio.run(sync())
    return cfg


def check(cfg: Settings, phone: str, campaign: str) -> Verdict:
    return Scrubber(cfg, audit=False).check(phone, at=datetime.now(UTC), campaign=campaign)


def test_a_profile_selecting_a_cxone_group_runs_the_cxone_check_on_that_group(
        configured: Settings) -> None:
    """``lists = ["cxone:364"]``: a number in group 364 is blocked (it was allowed: the CXone
    check ran only for a profile naming ``cxone``), a number only in group 365 is not, and
    the verdict names the group it used."""
    v = check(configured, ON_364, "cx-group")
    assert v.decision is Decision.BLOCK
    assert [(r.code, r.list) for r in v.reasons] == [("DNC_CXONE", "cxone:364")]
    assert list(v.versions.lists) == ["cxone:364"]
    assert check(configured, ON_365, "cx-group").decision is Decision.ALLOW
    assert check(configured, ON_365, "default").decision is Decision.BLOCK


def test_a_profile_selecting_the_cxone_source_names_every_group_it_used(
        configured: Settings) -> None:
    """``lists = ["cxone"]`` checks every group, and the verdict's versions name them (they
    were left out: no group's own name is in the profile)."""
    v = check(configured, ON_364, "cx-source")
    assert v.decision is Decision.BLOCK and v.reasons[0].list == "cxone:364"
    assert sorted(v.versions.lists) == ["cxone:364", "cxone:365"]
    assert check(configured, ON_365, "cx-source").decision is Decision.BLOCK


def test_a_profile_selecting_an_http_batch_list_asks_about_that_list_only(
        configured: Settings) -> None:
    """``lists = ["http-batch:partner-dnc"]``: the service is asked, about that list only: a
    number on it is blocked (it was allowed), a number on the other list is not."""
    v = check(configured, ON_PARTNER, "partner")
    assert v.decision is Decision.BLOCK
    assert [(r.code, r.list) for r in v.reasons] == [("DNC_REMOTE", "http-batch:partner-dnc")]
    assert v.versions.lists == {"http-batch:partner-dnc": None}
    assert check(configured, ON_OTHER, "partner").decision is Decision.ALLOW
    source = check(configured, ON_OTHER, "hb-source")  # the source by name: every list
    assert source.decision is Decision.BLOCK
    assert sorted(source.versions.lists) == ["http-batch:other-dnc", "http-batch:partner-dnc"]
