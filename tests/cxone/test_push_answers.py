"""A write-back item counts as delivered only when CXone's answer says so without doubt: its
record's one result has ``success`` the JSON ``true`` and no error text, and the answer's
``errorCount`` agrees. Any other answer fails the item (retried, or parked at the retry
limit) with the reason kept; a string ``"false"``, a second result that refuses, an
``errorCount`` of 1 beside a success, or a success with an error text were all once recorded
as delivered."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from dncguard.config import Settings
from dncguard.outbox import DEAD, DELIVERED, PENDING, Outbox
from dncguard.sandbox import SandboxServer
from dncguard.sources.cxone import TOPIC, enqueue_expire, enqueue_optout, push
from dncguard.sources.cxone.push import PushReport
from dncguard.store import get_engine

from .conftest import FakeSleep, client, cx_settings

A, B = "+12025550161", "+12125550162"
#: each record's result as the sandbox would give it, before a test rewrites the answer
Results = list[dict[str, Any]]


def answering(change: Callable[[Results], tuple[Any, Any]]) -> Callable[..., Any]:
    """A hook that replaces each records write's answer: ``change`` gets the sandbox's
    results and gives (errorCount, recordResults); the sandbox's own envelope is kept
    (``resultSet`` for an add, none for an expiry). ``...`` as errorCount leaves it out."""
    def hook(request: httpx.Request, response: httpx.Response) -> Any:
        if not request.url.path.endswith("/records") or request.method == "GET":
            return None
        body = response.json()
        inner = body.get("resultSet", body)
        count, results = change(inner["recordResults"])
        new: dict[str, Any] = {"recordResults": results}
        if count is not ...:
            new["errorCount"] = count
        return {"resultSet": new} if "resultSet" in body else new
    return hook


async def pushed(settings: Settings, sandbox: SandboxServer, hook: Callable[..., Any],
                 numbers: tuple[str, ...] = (A,), *, expire: bool = False,
                 max_attempts: int | None = None) -> tuple[PushReport, Outbox]:
    engine = get_engine(settings)
    for e164 in numbers:
        if expire:
            assert enqueue_expire(engine, e164, datetime.now(UTC), group_id="364")
        else:
            assert enqueue_optout(engine, e164, group_id="364")
    box = Outbox(engine, rng=random.Random(0), max_attempts=max_attempts)
    async with client(cx_settings(sandbox), FakeSleep(), hook) as c:
        report = await push(c, box, "364")
    return report, box


def one(change: Callable[[dict[str, Any]], Any], count: Any = ...) -> Callable[..., Any]:
    """The answer to a one-record write: its result changed by ``change`` (a dict, or a list
    of dicts for several results), ``errorCount`` as given."""
    def rewrite(results: Results) -> tuple[Any, Any]:
        out = change(dict(results[0]))
        return count, out if isinstance(out, list) else [out]
    return rewrite


#: Answers that said "delivered" to the old push (each one's item was acknowledged).
ONCE_DELIVERED = [
    pytest.param(one(lambda r: {**r, "success": "false"}), id="success-string-false"),
    pytest.param(one(lambda r: {**r, "success": "False"}), id="success-string-False"),
    pytest.param(one(lambda r: {**r, "success": "0"}), id="success-string-0"),
    pytest.param(one(lambda r: [r, {**r, "success": False, "error": "Group is locked"}], 1),
                 id="two-results-second-refuses"),
    pytest.param(one(lambda r: r, 1), id="errorCount-1-beside-success"),
    pytest.param(one(lambda r: {**r, "error": "Group is locked"}, 1),
                 id="success-with-error-text"),
    pytest.param(one(lambda r: {**r, "success": "false"}, 0),
                 id="success-string-false-errorCount-0"),
    pytest.param(one(lambda r: {**r, "success": "true"}), id="success-string-true"),
    pytest.param(one(lambda r: {**r, "success": 1}), id="success-number-1"),
    pytest.param(one(lambda r: [r, r], 0), id="two-identical-results"),
    pytest.param(one(lambda r: r, "0"), id="errorCount-string"),
    pytest.param(one(lambda r: [r, "ok"], 0), id="a-result-not-an-object"),
    pytest.param(one(lambda r: [r, {**r, "phoneNumber": "3055550163",
                                    "formattedPhone": "3055550163"}], 0),
                 id="a-result-for-a-number-not-sent"),
    pytest.param(one(lambda r: {**r, "formattedPhone": "3055550163"}, 0),
                 id="a-result-naming-two-numbers"),
    pytest.param(one(lambda r: [r, {"success": True, "error": ""}], 0),
                 id="an-extra-result-naming-no-number"),
]


@pytest.mark.parametrize("change", ONCE_DELIVERED)
async def test_an_answer_that_is_not_a_clear_success_delivers_nothing(
        settings: Settings, sandbox: SandboxServer, change: Callable[..., Any]) -> None:
    """The item stays pending with the reason recorded and is reported to retry."""
    report, box = await pushed(settings, sandbox, answering(change))
    assert report.delivered == 0 and not report.ok
    assert [m for m, _ in report.retrying] == ["+1202555****"]
    assert box.stats(TOPIC) == {PENDING: 1, DELIVERED: 0, DEAD: 0}
    item = box.items(TOPIC)[0]
    assert item.attempts == 1 and item.last_error
    assert item.last_error == report.retrying[0][1]
    assert "2025550161" not in item.last_error  # the reason names no number


async def test_an_expiry_answered_success_false_as_a_string_is_not_delivered(
        settings: Settings, sandbox: SandboxServer) -> None:
    """The same rule holds for an expiry (``DELETE records``, an answer without
    ``resultSet``)."""
    sandbox.state.add_record(364, "2025550161")
    report, box = await pushed(settings, sandbox,
                               answering(one(lambda r: {**r, "success": "false"})),
                               expire=True)
    assert report.delivered == 0 and report.nothing_to_expire == []
    assert box.stats(TOPIC)[PENDING] == 1
    assert "not a success" in (box.items(TOPIC)[0].last_error or "")


async def test_at_the_retry_limit_such_an_item_is_parked_not_delivered(
        settings: Settings, sandbox: SandboxServer) -> None:
    """Failed like any other failure: parked as ``dead`` at the outbox's limit, reported."""
    report, box = await pushed(settings, sandbox,
                               answering(one(lambda r: {**r, "success": "False"})),
                               max_attempts=1)
    assert report.delivered == 0 and report.retrying == []
    assert [m for m, _ in report.dead] == ["+1202555****"]
    assert box.stats(TOPIC) == {PENDING: 0, DELIVERED: 0, DEAD: 1}
    assert "success 'False'" in (box.items(TOPIC, DEAD)[0].last_error or "")


async def test_the_reasons_say_what_was_wrong(settings: Settings,
                                              sandbox: SandboxServer) -> None:
    """The item's last error names the doubt: both results' words, or the count."""
    report, _ = await pushed(settings, sandbox, answering(
        one(lambda r: [r, {**r, "success": False, "error": "Group is locked"}], 1)))
    assert "2 results for this record" in report.retrying[0][1]
    assert "Group is locked" in report.retrying[0][1]
    report, _ = await pushed(settings, sandbox, answering(one(lambda r: r, 1)), (B,))
    assert "errorCount is 1 but 0 of 1 results" in report.retrying[0][1]


async def test_an_error_count_that_disagrees_fails_every_record_of_the_answer(
        settings: Settings, sandbox: SandboxServer) -> None:
    """Which record the uncounted error belongs to cannot be told: none is delivered."""
    report, box = await pushed(settings, sandbox,
                               answering(lambda results: (1, results)), (A, B))
    assert report.delivered == 0 and len(report.retrying) == 2
    assert box.stats(TOPIC)[PENDING] == 2


async def test_one_records_doubtful_result_does_not_hold_back_a_clear_one(
        settings: Settings, sandbox: SandboxServer) -> None:
    """With a count that agrees, each record is judged by its own result."""
    def change(results: Results) -> tuple[Any, Any]:
        first, second = results
        return 1, [first, {**second, "success": "false"}]

    report, box = await pushed(settings, sandbox, answering(change), (A, B))
    assert report.delivered == 1
    assert [i.payload["e164"] for i in box.items(TOPIC, DELIVERED)] == [A]
    assert [i.payload["e164"] for i in box.items(TOPIC, PENDING)] == [B]


@pytest.mark.parametrize("count", [0, ...], ids=["errorCount-0", "no-errorCount"])
async def test_a_clear_success_is_delivered(settings: Settings, sandbox: SandboxServer,
                                            count: Any) -> None:
    """One ``success: true`` result per record, no error, a count that agrees or none."""
    report, box = await pushed(settings, sandbox,
                               answering(lambda results: (count, results)), (A, B))
    assert report.delivered == 2 and report.ok
    assert box.stats(TOPIC) == {PENDING: 0, DELIVERED: 2, DEAD: 0}
    assert {"2025550161", "2125550162"} <= set(sandbox.state.records[364])


async def test_the_sandboxs_own_answer_is_delivered(settings: Settings,
                                                    sandbox: SandboxServer) -> None:
    """(Unchanged: ``success: true`` with an empty ``error`` and a matching count.)"""
    report, box = await pushed(settings, sandbox, lambda _req, _resp: None)
    assert report.delivered == 1 and box.stats(TOPIC)[DELIVERED] == 1


async def test_a_refusal_is_still_parked_when_permanent(settings: Settings,
                                                        sandbox: SandboxServer) -> None:
    """``success: false`` with an invalid-number error is parked at once, as before."""
    report, box = await pushed(settings, sandbox, answering(one(
        lambda r: {**r, "success": False, "error": "Invalid phone number"}, 1)))
    assert report.dead == [("+1202555****", "Invalid phone number")]
    assert box.stats(TOPIC)[DEAD] == 1


async def test_a_result_may_give_the_number_in_its_national_form(
        settings: Settings, sandbox: SandboxServer) -> None:
    """``formattedPhone`` in the national form (trunk 0, no country code) beside the
    ``phoneNumber`` sent is one number, not two."""
    report, box = await pushed(settings, sandbox, answering(
        one(lambda r: {**r, "formattedPhone": "020 7123 4567"}, 0)), ("+442071234567",))
    assert report.delivered == 1 and box.stats(TOPIC)[DELIVERED] == 1
