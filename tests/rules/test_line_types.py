"""A number of unknown line type is judged by every rule its line could meet (by default), and
the evidence on a line's type is read the strict way when it disagrees.

Before: unknown lines were judged as mobile only, so a residential line's cap (3 prerecorded
calls in 30 days) never counted them; ``unknown_line_type = "ignore"`` dropped the residential
rules as well as the wireless ones (a prerecorded telemarketing call with no consent was
``allow``); and a row saying ``landline`` outweighed a wireless (port) list, dropping the
wireless rules (an autodialed call with no consent was ``allow``)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

from dncguard.config import CampaignProfile, Settings
from dncguard.lists.store import ListStore
from dncguard.models import Reason
from dncguard.sources.local import LineTypes
from dncguard.sources.protocol import Batch, CheckContext
from dncguard.sources.rules import AttemptStore, ConsentStore, RulesCheck

from .conftest import run_check

AT = datetime(2026, 12, 2, 19, 0, tzinfo=UTC)  # Wed 14:00 in New York
NY = "+12025550142"


def _codes(reasons: list[Reason]) -> list[str]:
    return [r.code for r in reasons]


def test_an_unknown_line_meets_the_residential_cap_by_default(
        settings: Settings, make_check: Callable[..., RulesCheck]) -> None:
    ConsentStore(settings).add(NY, "express", date(2026, 1, 5))
    for day in (20, 25, 30):
        AttemptStore(settings).record(NY, datetime(2026, 11, day, 16, tzinfo=UTC),
                                      purpose="informational")
    check = make_check(unknown_line_type="any")
    reasons = run_check(check, NY, AT, purpose="informational", call_type="prerecorded")
    assert "FREQUENCY_CAP" in _codes(reasons)
    (assumed,) = [r for r in reasons if r.code == "LINE_TYPE_ASSUMED"]
    assert "either kind" in (assumed.detail or "")
    assert "US:prerecorded_exempt_residential_cap" in (assumed.detail or "")
    # judged as mobile only (the setting's other value), the residential cap is not met
    mobile = run_check(make_check(unknown_line_type="mobile"), NY, AT,
                       purpose="informational", call_type="prerecorded")
    assert "FREQUENCY_CAP" not in _codes(mobile)


def test_the_default_is_the_strict_reading() -> None:
    from dncguard.sources.rules import RulesSettings

    assert RulesSettings().unknown_line_type == "any"


def test_ignore_judges_an_unknown_line_as_a_landline(
        make_check: Callable[..., RulesCheck]) -> None:
    """``ignore`` drops the wireless rules, never the residential ones."""
    reasons = run_check(make_check(unknown_line_type="ignore"), "+12025550143", AT,
                        call_type="prerecorded")
    assert "CONSENT_REQUIRED" in _codes(reasons)
    (needs,) = [r for r in reasons if r.code == "CONSENT_REQUIRED"]
    assert "wireless" not in (needs.rule or "")


def test_a_landline_row_on_a_wireless_list_meets_both_kinds_of_rule(
        settings: Settings, tmp_path: Path, make_check: Callable[..., RulesCheck]) -> None:
    path = tmp_path / "ported.csv"
    path.write_text("phone\n+12015550150\n+12015550151\n", encoding="utf-8")
    store = ListStore(settings)
    store.import_file(path, kind="wireless", name="ported")
    phones = ["+12015550150", "+12015550151", "+12015550152"]
    rows = [{"line_type": "landline"}, {}, {"line_type": " Landline "}]
    batch = Batch.of(phones, ["US"] * 3, ["NJ"] * 3, rows)
    ctx = CheckContext(at=AT, campaign="default", purpose="telemarketing",
                       call_type="autodialed", profile=CampaignProfile())
    LineTypes(store).mark(batch, ctx)
    contexts, index = batch.contexts()
    assert [contexts[int(i)].get("line_type") for i in index] == ["voip", "mobile",
                                                                   " Landline "]
    check = make_check()
    listed = run_check(check, "+12015550150", AT, call_type="autodialed", line_type="voip")
    assert "CONSENT_REQUIRED" in _codes(listed)
    assert any("wireless" in (r.rule or "") for r in listed
               if r.code in ("CONSENT_REQUIRED", "WIRELESS_RESTRICTED"))
    unlisted = run_check(check, "+12015550152", AT, call_type="autodialed",
                         line_type="landline")
    assert not any("wireless" in (r.rule or "") for r in unlisted)
