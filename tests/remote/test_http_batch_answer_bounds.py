"""An http-batch answer is bounded, and a list it was not asked about is not understood.

* The answer body is streamed and read up to ``max_answer_bytes`` (by default 2 KiB per result
  the request can call for, plus 64 KiB), decoded bytes counted: 4 contacts answered with
  400,000 results (27 MB) were read whole and parsed (memory ~10x the body). Beyond the bound
  the chunk's numbers are ``error`` / ``SOURCE_ERROR`` (not understood, not retried).
* More results than the request can call for (one per contact and list id: a service
  answering per list) are not understood either.
* A ``suppressed`` naming a list that was not asked was taken as named
  (``http-batch:someone-elses-list``) and the pre-filter counted the re-verified hit as a
  false positive (and vetoed it) although the service still blocked. The block stands, on the
  lists asked, named in the reason with the list not understood; the pre-filter neither records
  the answer nor counts it.
"""

from __future__ import annotations

import gzip
import json
import random
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from dncguard.models import Decision, Reason, ReasonCode
from dncguard.sources.protocol import Batch, CheckContext
from dncguard.sources.remote import HttpBatchCheck, HttpBatchSettings
from dncguard.sources.remote.prefilter import Prefilter, PrefilterSettings, PrefilterStore

from ..fakes import FakeSleep

BASE = "https://dnc.example.test"
NUMBERS = ["+12025550110", "+12025550111", "+12025550112", "+13125550113"]
FULL: dict[str, Any] = {"base_url": BASE, "token_url": f"{BASE}/oauth/token",
                        "client_id": "id", "client_secret": "secret",
                        "list_ids": ["remote-dnc"], "max_attempts": 2}
Answer = Callable[[list[dict[str, Any]]], httpx.Response]


def mock_check(answer: Answer, *, prefilter: Prefilter | None = None,
               **over: Any) -> HttpBatchCheck:
    """A check whose batch endpoint answers ``answer(contacts)``."""

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/token":
            return httpx.Response(200, json={"access_token": "tok", "expires_in": 3600})
        return answer(json.loads(request.content)["contacts"])

    http = httpx.AsyncClient(transport=httpx.MockTransport(handle))
    return HttpBatchCheck(HttpBatchSettings(**{**FULL, **over}), http=http, sleep=FakeSleep(),
                          prefilter=prefilter)


async def run(check: HttpBatchCheck, nums: list[str] = NUMBERS) -> list[list[Reason]]:
    batch = Batch.of(nums, ["US"] * len(nums), [None] * len(nums))
    return await check.check(batch, CheckContext(at=datetime.now(UTC)))


def results(contacts: list[dict[str, Any]], listed: tuple[str, ...] = (NUMBERS[0],),
            matches: list[str] | None = None) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for c in contacts:
        n = c["phoneNumber"]
        if n in listed:
            out.append({"phoneNumber": n, "status": "suppressed",
                        "listMatches": c["listIds"][:1] if matches is None else matches})
        else:
            out.append({"phoneNumber": n, "status": "allowed"})
    return out


def all_source_errors(out: list[list[Reason]]) -> bool:
    return all([(r.code, r.decision) for r in reasons]
               == [(ReasonCode.SOURCE_ERROR, Decision.ERROR)] for reasons in out)


def details(out: list[list[Reason]]) -> str:
    return " | ".join(r.detail for reasons in out for r in reasons)


# -- 1. the body is bounded ----------------------------------------------------------------------

class Endless(httpx.AsyncByteStream):
    """A body of ``total`` bytes in 64 KiB pieces, counting what the client pulled."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.pulled = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        piece = b" " * 65_536
        while self.pulled < self.total:
            self.pulled += len(piece)
            yield piece


def test_the_default_bound_follows_the_request() -> None:
    from dncguard.sources.remote import http_batch

    assert (http_batch.ANSWER_BYTES_PER_RESULT, http_batch.ANSWER_BYTES_BASE) == (2048, 65_536)
    assert HttpBatchSettings(**FULL).max_answer_bytes is None


async def test_a_huge_answer_fails_its_chunk_as_not_understood() -> None:
    """The reviewer's repro: 4 contacts answered with 400,000 results."""

    def huge(contacts: list[dict[str, Any]]) -> httpx.Response:
        res = results(contacts)
        return httpx.Response(200, json={"results": res + [res[0]] * 400_000})

    out = await run(mock_check(huge))
    assert all_source_errors(out), out
    # 4 contacts x 1 list: 4 * 2048 + 65536 bytes
    assert "answered the batch of 4 with more than 73,728 bytes" in details(out)
    assert "not understood, so the numbers are not verified" in details(out)


async def test_the_body_is_read_no_further_than_the_bound() -> None:
    """The answer is streamed: reading stops at the bound, whatever the body's length (and
    without a Content-Length to refuse it by)."""
    streams: list[Endless] = []

    def endless(_contacts: list[dict[str, Any]]) -> httpx.Response:
        streams.append(Endless(16 * 1024 * 1024))
        return httpx.Response(200, stream=streams[-1],
                              headers={"Content-Type": "application/json"})

    out = await run(mock_check(endless))
    assert all_source_errors(out), out
    assert len(streams) == 1  # not retried: more bytes would not make it understood
    assert streams[0].pulled <= 73_728 + 65_536


async def test_an_error_status_with_a_huge_body_is_retried_without_reading_it() -> None:
    """A 503 whose body is endless: its status is what counts (retried), its body is read no
    further than the bound."""
    streams: list[Endless] = []

    def flaky(contacts: list[dict[str, Any]]) -> httpx.Response:
        if not streams:
            streams.append(Endless(16 * 1024 * 1024))
            return httpx.Response(503, stream=streams[-1])
        return httpx.Response(200, json={"results": results(contacts)})

    check = mock_check(flaky)
    out = await run(check)
    assert [[r.code for r in reasons] for reasons in out] == [
        [ReasonCode.DNC_REMOTE], [], [], []]
    assert check.last_resilient is not None and check.last_resilient.stats.retries == 1
    assert streams[0].pulled <= 73_728 + 65_536


async def test_decoded_bytes_count_a_small_gzip_of_a_huge_answer_is_refused() -> None:
    def bomb(contacts: list[dict[str, Any]]) -> httpx.Response:
        body = json.dumps({"results": results(contacts)}).encode() + b" " * 8_000_000
        return httpx.Response(200, content=gzip.compress(body),
                              headers={"Content-Type": "application/json",
                                       "Content-Encoding": "gzip"})

    out = await run(mock_check(bomb))
    assert all_source_errors(out), out
    assert "with more than 73,728 bytes" in details(out)


async def test_max_answer_bytes_sets_the_bound() -> None:
    def ok(contacts: list[dict[str, Any]]) -> httpx.Response:
        return httpx.Response(200, json={"results": results(contacts)})

    out = await run(mock_check(ok, max_answer_bytes=100))
    assert all_source_errors(out), out
    assert "with more than 100 bytes" in details(out)
    out = await run(mock_check(ok, max_answer_bytes=10_000))
    assert [[r.code for r in reasons] for reasons in out] == [
        [ReasonCode.DNC_REMOTE], [], [], []]


# -- 2. no more results than the request can call for ------------------------------------------

async def test_more_results_than_contacts_and_lists_asked_are_not_understood() -> None:
    def doubled(contacts: list[dict[str, Any]]) -> httpx.Response:
        res = results(contacts)
        return httpx.Response(200, json={"results": res + [
            {"phoneNumber": res[1]["phoneNumber"], "status": "allowed"}]})

    out = await run(mock_check(doubled))
    assert all_source_errors(out), out
    assert ("http-batch answered 5 results where at most 4 (one per number and list asked) "
            "can be; not understood") in details(out)


async def test_a_service_answering_per_list_is_understood() -> None:
    """Two lists asked: two results per number are within the bound, and merged."""

    def per_list(contacts: list[dict[str, Any]]) -> httpx.Response:
        out: list[dict[str, Any]] = []
        for c in contacts:
            for lst in c["listIds"]:
                listed = c["phoneNumber"] == NUMBERS[0] and lst == "b"
                out.append({"phoneNumber": c["phoneNumber"],
                            "status": "suppressed" if listed else "allowed",
                            **({"listMatches": [lst]} if listed else {})})
        out.append(out[-1])  # one more than 4 numbers x 2 lists: not understood
        return httpx.Response(200, json={"results": out if len(contacts) > 3 else out[:-1]})

    out = await run(mock_check(per_list, list_ids=["a", "b"]))
    assert all_source_errors(out), out
    assert "9 results where at most 8" in details(out)
    out = await run(mock_check(per_list, list_ids=["a", "b"]), NUMBERS[:3])
    assert [[(r.code, r.list) for r in reasons] for reasons in out] == [
        [(ReasonCode.DNC_REMOTE, "http-batch:b")], [], []]


# -- 3. a list that was not asked ----------------------------------------------------------------

def other_list(contacts: list[dict[str, Any]]) -> httpx.Response:
    return httpx.Response(200, json={"results": results(contacts,
                                                        matches=["someone-elses-list"])})


def listed(contacts: list[dict[str, Any]]) -> httpx.Response:
    return httpx.Response(200, json={"results": results(contacts)})


async def test_a_suppressed_on_a_list_not_asked_blocks_on_the_lists_asked() -> None:
    out = await run(mock_check(other_list, list_ids=["remote-dnc", "partner"]))
    assert [(r.code, r.decision, r.list) for r in out[0]] == [
        (ReasonCode.DNC_REMOTE, Decision.BLOCK, "http-batch:remote-dnc")]
    assert out[0][0].detail == (
        "suppressed by http-batch, which named list(s) not asked (someone-elses-list; not "
        "understood) when asked about remote-dnc, partner: blocked on those")
    assert out[1:] == [[], [], []]
    # a known list beside the unknown one is the list named
    mixed = await run(mock_check(
        lambda c: httpx.Response(200, json={"results": results(
            c, matches=["someone-elses-list", "partner"])}),
        list_ids=["remote-dnc", "partner"]))
    assert mixed[0][0].list == "http-batch:partner"
    assert "not asked (someone-elses-list; not understood)" in mixed[0][0].detail


def gate(tmp_path: Path) -> Prefilter:
    pf = PrefilterSettings(flush_seconds=0.0, sample_rate=1.0, capacity=10_000)
    store = PrefilterStore(tmp_path / "hb.npz", pf, b"test-salt", source="http-batch")
    return Prefilter("http-batch", store, namespace=BASE, per_call=1000,
                     rng=random.Random(1))


async def test_the_prefilter_counts_no_false_positive_for_a_list_not_asked(
        tmp_path: Path) -> None:
    """The reviewer's pf_otherlist.py: listed, then re-verified (sample rate 1) by an answer
    naming another list: still a block, no false positive, no veto; asked again, the service's
    ordinary answer is a hit re-verified."""
    pf = gate(tmp_path)
    out = await run(mock_check(listed, prefilter=pf), NUMBERS[:1])
    assert [r.list for r in out[0]] == ["http-batch:remote-dnc"]
    out = await run(mock_check(other_list, prefilter=pf), NUMBERS[:1])
    assert [(r.decision, r.list) for r in out[0]] == [(Decision.BLOCK, "http-batch:remote-dnc")]
    assert "someone-elses-list; not understood" in out[0][0].detail
    stats = pf.stats()
    assert (stats["hits"], stats["reverified"], stats["falsePositives"]) == (1, 0, 0)
    out = await run(mock_check(listed, prefilter=pf), NUMBERS[:1])
    stats = pf.stats()
    assert (stats["hits"], stats["reverified"], stats["falsePositives"]) == (2, 1, 0)
    assert pf.plan(NUMBERS[:1], ["remote-dnc"]).sampled  # never vetoed: still a hit
