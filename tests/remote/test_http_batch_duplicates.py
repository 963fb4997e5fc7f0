"""Several http-batch results for one number are merged to the most severe, never the first.

The contract (``results: [{phoneNumber, status: suppressed | allowed | error, reason,
listMatches}]``) does not promise one result per number. A ``suppressed`` result is a list
match the service stated; an ``allowed`` next to it does not take it back. The check used
to keep the first result per number, so ``allowed`` then ``suppressed`` was an allow.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import httpx

from dncguard.config import Settings
from dncguard.engine.scrubber import Scrubber
from dncguard.models import Decision, Reason, ReasonCode
from dncguard.sources.protocol import Batch, CheckContext
from dncguard.sources.remote import HttpBatchCheck, HttpBatchSettings

from ..fakes import FakeSleep

NUMBER = "+12025550123"
OTHER = "+12025550124"
BASE = "https://dnc.example.test"
ALLOWED: dict[str, Any] = {"status": "allowed"}
SUPPRESSED: dict[str, Any] = {"status": "suppressed", "listMatches": ["litigators"],
                              "reason": "litigator"}


def service(answers: dict[str, list[dict[str, Any]]]) -> httpx.MockTransport:
    """A token endpoint and a batch endpoint answering each number sent with ``answers``
    (the number's results, in order; ``allowed`` for a number not in ``answers``)."""

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/token":
            return httpx.Response(200, json={"access_token": "tok", "expires_in": 3600})
        assert request.url.path == "/api/v2/dnc/contacts/batch"
        assert request.headers["Authorization"] == "Bearer tok"
        results = []
        for contact in json.loads(request.content)["contacts"]:
            value = contact["phoneNumber"]
            for answer in answers.get(value, [ALLOWED]):
                results.append({"phoneNumber": value, **answer})
        return httpx.Response(200, json={"results": results})

    return httpx.MockTransport(handle)


def make_check(answers: dict[str, list[dict[str, Any]]]) -> HttpBatchCheck:
    # three lists asked: a service answering per list may give each number three results
    # (more than one per number and list asked is not understood: see
    # test_http_batch_answer_bounds.py)
    hb = HttpBatchSettings(base_url=BASE, token_url=f"{BASE}/oauth/token", client_id="id",
                           client_secret="secret",
                           list_ids=["remote-dnc", "litigators", "internal"], max_attempts=2)
    http = httpx.AsyncClient(transport=service(answers))
    return HttpBatchCheck(hb, http=http, sleep=FakeSleep())


async def run(check: HttpBatchCheck, nums: list[str]) -> list[list[Reason]]:
    batch = Batch.of(nums, ["US"] * len(nums), [None] * len(nums))
    return await check.check(batch, CheckContext(at=datetime.now(UTC)))


def blocked_by_litigators(reasons: list[Reason]) -> bool:
    return ([(r.code, r.decision, r.list) for r in reasons]
            == [(ReasonCode.DNC_REMOTE, Decision.BLOCK, "http-batch:litigators")])


async def test_a_later_suppressed_result_blocks(settings: Settings) -> None:
    orders: list[list[dict[str, Any]]] = [[ALLOWED, SUPPRESSED], [SUPPRESSED, ALLOWED],
                                          [ALLOWED, {"status": "error"}, SUPPRESSED]]
    for results in orders:
        out = await run(make_check({NUMBER: results}), [NUMBER, OTHER])
        assert blocked_by_litigators(out[0]), (results, out[0])
        assert "litigator" in (out[0][0].detail or "")
        assert out[1] == []  # the other number of the chunk: allowed, as its one result says
    # the same number twice in one request gets the merged answer at both places
    out = await run(make_check({NUMBER: [ALLOWED, SUPPRESSED]}), [NUMBER, NUMBER])
    assert all(blocked_by_litigators(r) for r in out), out
    # and the verdict the dialer sees is a block, never an allow
    check = make_check({NUMBER: [ALLOWED, SUPPRESSED]})
    scr = Scrubber(settings, checks=[check])
    verdicts = await scr.ascrub([NUMBER], ctx=scr.context(at=datetime.now(UTC)))
    assert [v.decision for v in verdicts] == [Decision.BLOCK]


async def test_every_suppressed_results_lists_are_named() -> None:
    second = {"status": "suppressed", "listMatches": ["internal", "litigators"]}
    out = await run(make_check({NUMBER: [ALLOWED, SUPPRESSED, second]}), [NUMBER])
    assert [r.code for r in out[0]] == [ReasonCode.DNC_REMOTE]
    assert out[0][0].list == "http-batch:litigators"
    assert "litigators, internal" in (out[0][0].detail or "")


async def test_allowed_with_an_error_or_unknown_status_is_a_source_error() -> None:
    for odd in ({"status": "error"}, {"status": "pending"}, {}):
        out = await run(make_check({NUMBER: [ALLOWED, odd]}), [NUMBER])
        assert [(r.code, r.decision) for r in out[0]] == [
            (ReasonCode.SOURCE_ERROR, Decision.ERROR)], (odd, out[0])
        assert "status" in (out[0][0].detail or "")
    out = await run(make_check({NUMBER: [ALLOWED, ALLOWED]}), [NUMBER])
    assert out[0] == []  # results that agree: allowed


async def test_list_matches_not_a_list_still_block() -> None:
    """One list name as a string is that list (not its letters); anything else falls back to
    the configured lists, and never crashes the check."""
    cases: list[tuple[object, str]] = [("litigators", "http-batch:litigators"),
                                       (5, "http-batch:remote-dnc"),
                                       ({"id": 1}, "http-batch:remote-dnc")]
    for matches, where in cases:
        out = await run(make_check({NUMBER: [{"status": "suppressed",
                                              "listMatches": matches}]}), [NUMBER])
        assert [(r.code, r.list) for r in out[0]] == [(ReasonCode.DNC_REMOTE, where)], matches


async def test_allowed_that_names_a_list_match_is_not_verified(settings: Settings) -> None:
    """``allowed`` with ``listMatches`` contradicts itself: an error (not verified), never an
    allow; ``allowed`` with an empty match list is an ordinary allow."""
    contradicts = {"status": "allowed", "listMatches": ["remote-dnc"]}
    for found in ([contradicts], [ALLOWED, contradicts], [{"status": "allowed",
                                                           "listMatches": "remote-dnc"}]):
        out = await run(make_check({NUMBER: found}), [NUMBER])
        assert [(r.code, r.decision) for r in out[0]] == [
            (ReasonCode.SOURCE_ERROR, Decision.ERROR)], (found, out[0])
        assert "allowed with list matches" in (out[0][0].detail or "")
    out = await run(make_check({NUMBER: [{"status": "allowed", "listMatches": []}]}), [NUMBER])
    assert out[0] == []
