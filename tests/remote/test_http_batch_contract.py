"""What the http-batch check does not understand, it does not pass: a source configured only
in part is refused (it used to be left out of every check without a word); an answer with
fields beside ``results``, about numbers not asked, or with a ``listMatches`` that is not a
list of names is an error, not an allow; an error body's phone number is masked."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from dncguard.config import load_settings
from dncguard.errors import ConfigError
from dncguard.models import Decision, Reason, ReasonCode
from dncguard.sources.protocol import Batch, CheckContext
from dncguard.sources.registry import default_checks
from dncguard.sources.remote import HttpBatchCheck, HttpBatchSettings

from ..fakes import FakeSleep

BASE = "https://dnc.example.test"
NUMBERS = ["+12025550123", "+12025550124"]
FULL: dict[str, Any] = {"base_url": BASE, "token_url": f"{BASE}/oauth/token",
                        "client_id": "id", "client_secret": "secret",
                        "list_ids": ["remote-dnc"]}
Answer = Callable[[list[str]], httpx.Response]


def check_with(answer: Answer) -> HttpBatchCheck:
    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/token":
            return httpx.Response(200, json={"access_token": "tok", "expires_in": 3600})
        sent = [c["phoneNumber"] for c in json.loads(request.content)["contacts"]]
        return answer(sent)

    http = httpx.AsyncClient(transport=httpx.MockTransport(handle))
    return HttpBatchCheck(HttpBatchSettings(**FULL, max_attempts=2), http=http,
                          sleep=FakeSleep())


async def run(check: HttpBatchCheck) -> list[list[Reason]]:
    batch = Batch.of(NUMBERS, ["US"] * len(NUMBERS), [None] * len(NUMBERS))
    return await check.check(batch, CheckContext(at=datetime.now(UTC)))


def all_errors(out: list[list[Reason]]) -> bool:
    return all(r and all(x.code == ReasonCode.SOURCE_ERROR and x.decision is Decision.ERROR
                         for x in r) for r in out)


def allowed(sent: list[str], **extra: Any) -> httpx.Response:
    return httpx.Response(200, json={"results": [{"phoneNumber": n, "status": "allowed"}
                                                 for n in sent], **extra})


async def test_a_plain_answer_still_allows() -> None:
    assert await run(check_with(allowed)) == [[], []]


@pytest.mark.parametrize("extra", [{"error": "partial failure", "errorCount": 1},
                                   {"nextPage": "abc"}, {"truncated": True}])
async def test_fields_beside_the_results_are_not_understood(extra: dict[str, Any]) -> None:
    out = await run(check_with(lambda sent: allowed(sent, **extra)))
    assert all_errors(out), out
    assert sorted(extra)[0] in (out[0][0].detail or "")


async def test_an_answer_about_a_number_not_asked_is_not_trusted() -> None:
    def answer(sent: list[str]) -> httpx.Response:
        results = [{"phoneNumber": n, "status": "allowed"} for n in sent]
        results.append({"phoneNumber": "+19999999999", "status": "suppressed"})
        return httpx.Response(200, json={"results": results})

    out = await run(check_with(answer))
    assert all_errors(out), out


@pytest.mark.parametrize("matches", [{"remote-dnc": True}, 5, [1, 2]])
async def test_list_matches_not_a_list_of_names_is_an_error(matches: Any) -> None:
    def answer(sent: list[str]) -> httpx.Response:
        return httpx.Response(200, json={"results": [
            {"phoneNumber": n, "status": "allowed", "listMatches": matches} for n in sent]})

    out = await run(check_with(answer))
    assert all_errors(out), out


async def test_a_suppressed_result_with_odd_list_matches_still_blocks() -> None:
    def answer(sent: list[str]) -> httpx.Response:
        return httpx.Response(200, json={"results": [
            {"phoneNumber": n, "status": "suppressed", "listMatches": {"x": 1}} for n in sent]})

    out = await run(check_with(answer))
    assert all(r and r[0].decision is Decision.BLOCK for r in out), out


async def test_a_number_in_an_error_body_is_masked(caplog: pytest.LogCaptureFixture) -> None:
    def answer(sent: list[str]) -> httpx.Response:
        return httpx.Response(400, json={"message": f"invalid E.164 {sent[1]}"})

    with caplog.at_level(logging.INFO):
        out = await run(check_with(answer))
    assert all_errors(out)
    said = " ".join([r.detail or "" for rs in out for r in rs] + [caplog.text])
    assert "invalid E.164 +120255*****" in said
    assert not any(n in said for n in NUMBERS)


@pytest.mark.parametrize("missing", sorted(FULL))
def test_a_source_configured_in_part_is_refused(missing: str, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    given = {k: v for k, v in FULL.items() if k != missing}
    with pytest.raises(ValidationError, match=missing):
        HttpBatchSettings(**given)
    for key, value in given.items():
        monkeypatch.setenv(f"DNCGUARD_HTTP_BATCH_{key.upper()}",
                           json.dumps(value) if isinstance(value, list) else value)
    settings = load_settings(home=tmp_path / "home")
    with pytest.raises(ConfigError, match=f"configured only in part: {missing}"):
        default_checks(settings)


def test_none_given_is_no_source_and_a_blank_list_id_is_refused(tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path / "home")
    assert not any(isinstance(c, HttpBatchCheck) for c in default_checks(settings))
    with pytest.raises(ValidationError, match="list id is blank"):
        HttpBatchSettings(**{**FULL, "list_ids": ["remote-dnc", " "]})

