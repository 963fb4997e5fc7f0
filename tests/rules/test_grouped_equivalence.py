"""The grouped rules evaluation gives exactly the reasons of a per-number evaluation.

``RulesCheck.evaluate`` groups a batch's numbers by everything the rules look at and shares
the reasons of a group; :func:`tests.rules.reference.reference_reasons` (each number on its
own) is the straightforward reference. A few thousand varied numbers (split-zone area codes, many
states, ZIPs, time zones, line types, consent and attempt records, registry lists) are run
through both under several kinds of call and moments.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dncguard import nanp
from dncguard.config import CampaignProfile, Settings
from dncguard.lists.store import ListStore
from dncguard.phones import _npa_states, normalise, state_for
from dncguard.sources.protocol import Batch, CheckContext
from dncguard.sources.rules import (
    AttemptStore,
    ConsentStore,
    EmergencyDeclaration,
    RulesCheck,
    load_ruleset,
    resolve_location,
)
from dncguard.sources.rules._zones import _pn_zones, _pn_zones_uncached, zone_keys

from .conftest import region_of
from .reference import reference_reasons

ZONES = ["America/New_York", "America/Chicago", "America/Denver", "America/Phoenix",
         "America/Los_Angeles", "America/Anchorage", "Pacific/Honolulu", "America/Boise",
         "America/Indiana/Knox", "Not/AZone", "America/Toronto", "America/Regina"]
STATES = ["FL", "TX", "CA", "NY", "ID", "KY", "TN", "SD", "ND", "AK", "IN", "MS", "LA", "OR",
          "NE", "KS", "MI", "AZ", "UT", "WY", "MA", "NJ", "ON", "SK", "BC", "ZZ", "fl",
          "PR", "VI", "GU", "MP", "AS"]
ZIPS = ["32401", "32501", "33101", "83201", "83814", "42001", "37303", "57701", "59801",
        "70112", "11701", "99501", "96813", "10001", "000", "S7K 1A1", "V6B", "zz",
        "00901", "00802", "96910", "96950", "96799"]
#: the US territories' area codes (PR, VI, GU, MP, AS), and American Samoa mobile exchanges
#: (which phonenumbers calls non-geographic)
TERRITORY_NPAS = ["787", "939", "340", "671", "670", "684"]
TERRITORY_EXCHANGES = ["684248", "684252", "684733", "684622", "671300", "670234", "340642",
                       "787234", "939234"]
LINES = ["mobile", "landline", "voip", "Mobile ", "pager", ""]


def _numbers(rng: random.Random, n: int) -> list[str]:
    """Ten-digit NANP numbers: every split-zone area code, many state area codes, numbers
    sharing exchanges, toll-free and odd exchanges, and a few GB and AU numbers."""
    npas = sorted({*load_ruleset().zones.multi_timezone_npas,
                   *(f"{k:03d}" for k in _npa_states())})
    assert set(TERRITORY_NPAS) <= set(npas)
    exchanges = [f"{rng.choice(npas)}{rng.randrange(200, 1000):03d}" for _ in range(n // 8)]
    exchanges += TERRITORY_EXCHANGES * 3
    out: set[str] = set()
    while len(out) < n:
        roll = rng.random()
        if roll < 0.55:
            prefix = rng.choice(exchanges)
        elif roll < 0.9:
            prefix = f"{rng.choice(npas)}{rng.randrange(200, 1000):03d}"
        elif roll < 0.95:
            prefix = f"{rng.choice(['800', '888', '900', '500', '876', '787'])}" \
                     f"{rng.randrange(200, 1000):03d}"
        else:
            out.add(rng.choice(["+4420794600", "+4416173000", "+612987654", "+614123456"])
                    + f"{rng.randrange(100):02d}")
            continue
        out.add(f"+1{prefix}{rng.randrange(10_000):04d}")
    return sorted(out, key=lambda _: rng.random())


def _row(rng: random.Random, e164: str) -> tuple[str, str | None, dict[str, str]]:
    """(region, batch state, row hints) as the pipeline passes them, varied."""
    region = region_of(e164)
    state = state_for(e164)
    extra: dict[str, str] = {}
    if rng.random() < 0.3:
        extra["state"] = rng.choice(STATES)
        state = extra["state"]
    if rng.random() < 0.25:
        extra["zip"] = rng.choice(ZIPS)
    if rng.random() < 0.15:
        extra["timezone"] = rng.choice(ZONES)
    if rng.random() < 0.5:
        extra["line_type"] = rng.choice(LINES)
    if rng.random() < 0.05:
        extra["subject"] = "debt-1"
    if rng.random() < 0.02:
        extra["region"] = rng.choice(["US", "CA", "uk"])
    if rng.random() < 0.05:
        region = ""  # the default region applies
    return region, state, extra


@pytest.fixture(scope="module")
def data() -> tuple[list[str], list[str], list[str | None], list[dict[str, str]]]:
    rng = random.Random(20261127)
    numbers = _numbers(rng, 2000)
    rows = [_row(rng, e) for e in numbers]
    return (numbers, [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows])


@pytest.fixture
def records(settings: Settings, tmp_path: Path,
            data: tuple[list[str], Any, Any, Any]) -> None:
    """Consents and attempts for some numbers; a fresh US and a stale FL registry list."""
    numbers = [e for e in data[0] if normalise(e).ok]
    rng = random.Random(7)
    settings.campaigns["spring"] = CampaignProfile()  # an attempt names a campaign profile
    consents = ConsentStore(settings)
    attempts = AttemptStore(settings)
    base = datetime(2026, 11, 18, 17, 0, tzinfo=UTC)
    for e164 in rng.sample(numbers, 120):
        for _ in range(rng.randint(1, 2)):
            kind = rng.choice(["express", "express_written", "ebr_purchase", "ebr_inquiry"])
            granted = date(2026, 11, 1) - timedelta(days=rng.choice([3, 100, 400, 800]))
            revoked = rng.choice([None, None, None, date(2026, 10, 1)])
            consents.add(e164, kind, granted,
                         expires=rng.choice([None, None, date(2026, 11, 10), date(2027, 1, 1)]),
                         revoked=revoked if revoked and revoked >= granted else None)
    for e164 in rng.sample(numbers, 150):
        for _ in range(rng.randint(1, 5)):
            attempts.record(e164, base - timedelta(minutes=rng.randrange(-600, 60 * 24 * 8)),
                            campaign=rng.choice(["default", "spring"]),
                            purpose=rng.choice(["telemarketing", "collections"]),
                            subject=rng.choice([None, "debt-1"]),
                            outcome=rng.choice([None, "conversation", "voicemail"]))
    store = ListStore(settings)
    for name, jur, snap in (("us-national", "US", date(2026, 11, 1)),
                            ("fl-state", "US-FL", date(2026, 1, 1))):
        f = tmp_path / f"{name}.txt"
        f.write_text("+12125550199\n")
        store.import_file(f, kind="national" if jur == "US" else "state", name=name,
                          jurisdiction=jur, snapshot_date=snap)


def _coded(numbers: list[str], regions: list[str], states: list[str | None],
           extras: list[dict[str, str]]) -> Batch:
    """The batch the engine would build of these numbers: integers, regions and states as
    codes, the row contexts shared."""
    def codes(values: list[Any]) -> tuple[np.ndarray[Any, Any], list[Any]]:
        table = list(dict.fromkeys(values))
        return np.array([table.index(v) for v in values], dtype=np.int64), table

    keys = [tuple(sorted(x.items())) for x in extras]
    index, distinct = codes(keys)
    return Batch.coded(np.array([int(e[1:]) for e in numbers], dtype=np.uint64),
                       codes(regions), codes(states), [dict(k) for k in distinct], index)


def test_a_large_batch_without_records_never_becomes_strings(
        make_check: Callable[..., RulesCheck],
        data: tuple[list[str], list[str], list[str | None], list[dict[str, str]]]) -> None:
    """No consent or attempt recorded: the rules group a coded batch of 2,000 numbers
    without making its lists of E.164 strings, regions, states or contexts (a file's
    million numbers would each become a Python string), and say what a batch of strings
    gets said."""
    numbers, regions, states, extras = data
    check = make_check()
    ctx = CheckContext(at=CONTEXTS[0][0])
    coded = _coded(numbers, regions, states, extras)
    got = _dump(check.evaluate_groups(coded, ctx).per_number())
    assert (coded._e164, coded._region, coded._state, coded._extra) == (None,) * 4
    assert got == _dump(check.evaluate_groups(Batch.of(numbers, regions, states, extras),
                                              ctx).per_number())


def _dump(out: list[list[Any]]) -> list[list[dict[str, Any]]]:
    return [[r.model_dump() for r in reasons] for reasons in out]


CONTEXTS = [
    # (at, campaign, purpose, call type, profile)
    (datetime(2026, 11, 18, 17, 0, tzinfo=UTC), "default", "telemarketing", "manual", None),
    (datetime(2026, 11, 19, 2, 30, tzinfo=UTC), "spring", "telemarketing", "autodialed", None),
    (datetime(2026, 11, 22, 15, 0, tzinfo=UTC), "default", "telemarketing", "prerecorded",
     None),  # a Sunday
    (datetime(2026, 11, 26, 16, 0, tzinfo=UTC), "spring", "telemarketing", "manual",  # Thanksgiving
     CampaignProfile(calling_hours=("09:00", "17:30"), margin_minutes=15)),
    (datetime(2026, 11, 18, 12, 45, tzinfo=UTC), "default", "collections", "autodialed", None),
    (datetime(2026, 11, 18, 23, 0, tzinfo=UTC), "default", "informational", "prerecorded",
     None),
    (datetime(2026, 9, 2, 16, 0, tzinfo=UTC), "default", "telemarketing", "manual",
     None),  # declared emergencies in LA and (ZIP 117) NY
]


@pytest.mark.usefixtures("records")
@pytest.mark.parametrize("config", [
    {},
    {"unknown_timezone": "error", "unknown_line_type": "mobile"},
])
def test_grouped_equals_per_number(make_check: Callable[..., RulesCheck],
                                   data: tuple[list[str], list[str], list[str | None],
                                               list[dict[str, str]]],
                                   config: dict[str, Any]) -> None:
    numbers, regions, states, extras = data
    assert {state_for(e) for e in numbers} >= {"PR", "VI", "GU", "MP", "AS"}
    check = make_check(require_registries=True, emergencies=[
        EmergencyDeclaration(jurisdiction="US-LA", start=date(2026, 8, 28),
                             end=date(2026, 9, 5)),
        EmergencyDeclaration(jurisdiction="US-NY", start=date(2026, 8, 28),
                             end=date(2026, 9, 5), zips=["117"])], **config)
    batch = Batch.of(numbers, regions, states, extras)
    seen: set[str] = set()
    for at, campaign, purpose, call_type, profile in CONTEXTS:
        ctx = CheckContext(at=at, campaign=campaign, purpose=purpose, call_type=call_type,
                           profile=profile or CampaignProfile())
        grouped = asyncio.run(check.check(batch, ctx))
        reference = reference_reasons(check, batch, ctx)
        assert len(grouped) == len(numbers)
        for e164, got, want in zip(numbers, _dump(grouped), _dump(reference), strict=True):
            assert got == want, (e164, ctx)
        # the array-grouped evaluation (what the scrub pipeline runs) agrees too, on a batch
        # of strings and on one of integers and codes (what the engine builds)
        for form, b in (("strings", batch), ("coded", _coded(numbers, regions, states,
                                                             extras))):
            by_arrays = check.evaluate_groups(b, ctx).per_number()
            for e164, got, want in zip(numbers, _dump(by_arrays), _dump(reference),
                                       strict=True):
                assert got == want, (e164, ctx, "evaluate_groups", form)
        seen |= {r.code for reasons in grouped for r in reasons}
        # each number gets its own list (callers may extend it)
        assert len({id(reasons) for reasons in grouped}) == len(numbers)
    expected = {"OUTSIDE_CALLING_WINDOW", "DAY_PROHIBITED", "HOLIDAY", "STATE_OF_EMERGENCY",
                "FREQUENCY_CAP", "CONSENT_REQUIRED", "WIRELESS_RESTRICTED", "REGISTRY_MISSING",
                "REGISTRY_STALE", "EXEMPT_CONSENT", "EXEMPT_EBR"}
    if config.get("unknown_timezone") == "error":
        expected.add("TIMEZONE_UNKNOWN")
    assert expected <= seen, expected - seen
    # the verdict's time zone column: grouped, and as the location of each number alone
    zones = check.timezones(batch)
    for i, e164 in enumerate(numbers):
        region = (regions[i] or check.settings.default_region).upper()
        loc = resolve_location(e164, region, states[i], extras[i], check.ruleset)
        assert zones[i] == (";".join(loc.zones), loc.how), e164


def test_zone_classes_match_phonenumbers(
        data: tuple[list[str], Any, Any, Any]) -> None:
    """The NPA-NXX classes give phonenumbers' own answer: the test batch, a sample of every
    run of the NANP table (valid, invalid and per-number prefixes) and random numbers."""
    rng = random.Random(3)
    codes, _ = nanp.load_table()
    sample = [f"+1{n:010d}" for n in nanp.sample_numbers(codes, per_code=1)]
    numbers = data[0] + rng.sample(sample, min(len(sample), 4000)) + \
        [f"+1{rng.randrange(10 ** 10):010d}" for _ in range(3000)]
    fallback = np.flatnonzero(codes == nanp.FALLBACK).tolist()
    numbers += [f"+1{p:06d}{rng.randrange(10_000):04d}" for p in fallback for _ in range(30)]
    for e164 in numbers:
        assert _pn_zones(e164) == _pn_zones_uncached(e164), e164
    # equal keys mean equal zones and area code
    keys = zone_keys(numbers)
    by_key: dict[object, tuple[str, tuple[str, ...]]] = {}
    for e164, key in zip(numbers, keys, strict=True):
        seen = by_key.setdefault(key, (e164[:5], _pn_zones_uncached(e164)))
        if key != e164:
            assert seen == (e164[:5], _pn_zones_uncached(e164)), e164


@pytest.mark.usefixtures("records")
def test_time_reasons_kept_within_a_minute_are_right(
        make_check: Callable[..., RulesCheck],
        data: tuple[list[str], list[str], list[str | None], list[dict[str, str]]]) -> None:
    """The time reasons a check keeps for the rest of a minute (across batches) are what a
    fresh per-number evaluation gives at any moment of that minute, on either side of a
    window's start (08:00 EST is 13:00 UTC; 08:00 CST 14:00 UTC)."""
    numbers, regions, states, extras = data
    check = make_check(require_registries=True)
    batch = Batch.of(numbers, regions, states, extras)
    minutes = [datetime(2026, 11, 18, 12, 59, tzinfo=UTC), datetime(2026, 11, 18, 13, 0,
                                                                    tzinfo=UTC),
               datetime(2026, 11, 18, 13, 59, tzinfo=UTC), datetime(2026, 11, 18, 14, 0,
                                                                    tzinfo=UTC)]
    for minute in minutes:
        for seconds in (0.0, 31.5, 59.999999):
            at = minute + timedelta(seconds=seconds)
            ctx = CheckContext(at=at, campaign="default", purpose="telemarketing",
                               call_type="manual", profile=CampaignProfile())
            kept = check.evaluate_groups(batch, ctx).per_number()
            reference = reference_reasons(check, batch, ctx)
            for e164, got, want in zip(numbers, _dump(kept), _dump(reference), strict=True):
                assert got == want, (e164, at)
