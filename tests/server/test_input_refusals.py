"""Input the service cannot take as given is refused, 422 naming where, never a 500 or a
silent reading:

* a string that is not text (a lone UTF-16 surrogate, ``"\\ud800"`` in JSON, or its raw
  UTF-8-style bytes): UTF-8 cannot encode it, so it could be neither stored, written to a job's
  file nor answered back; every string of a request body, a JSON job's values and the keys
  of their objects;
* a query parameter given more than once (the framework keeps the last one, and a repeated
  ``campaign``, ``list`` or ``phone`` would be acted on for the other value) unless the
  operation declares it as a list;
* ``create`` of ``POST /v1/dnc`` that is not a JSON boolean (``"yes"``, ``1`` made a list).

In process (the whole application, the fast path of ``POST /v1/check`` in front).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi import Depends, FastAPI, Query
from fastapi.testclient import TestClient

from dncguard.config import load_settings

from .conftest import make_key

PHONE = "+12025550123"
NOT_TEXT = "U+D800"  # every refusal of a lone surrogate names it
JSON = {"content-type": "application/json"}


@dataclass
class Ctx:
    client: TestClient
    keys: dict[str, str]

    def headers(self, scope: str, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[scope]}", **extra}

    def post(self, path: str, body: bytes, scope: str) -> Any:
        return self.client.post(path, content=body, headers=self.headers(scope, **JSON))


@pytest.fixture(scope="module")
def ctx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ctx]:
    from dncguard.server.app import create_app

    home = tmp_path_factory.mktemp("refusals") / "home"
    keys = {s: make_key(home, s) for s in ("check", "jobs", "dnc:write", "admin")}
    app = create_app(load_settings(home=home), run_jobs=False)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Ctx(client, keys)


def refused(resp: Any, *fields: str) -> list[dict[str, str]]:
    """The 422's field errors; it names exactly ``fields``, in order."""
    assert resp.status_code == 422, (resp.status_code, resp.text)
    error = resp.json()["error"]
    assert error["status"] == 422 and error["code"] == "validation_error", error
    assert [f["field"] for f in error["fields"]] == list(fields), error
    assert error["message"].startswith(("invalid request (", "unknown query")), error
    return list(error["fields"])


# --- 1. a lone surrogate ------------------------------------------------------------------

S = "\\ud800"  # as JSON writes it (the bodies below are bytes)

BODY_STRINGS = [
    # (path, scope, body, the field named)
    ("/v1/check", "check", f'{{"phone":"{PHONE}{S}"}}', "body.phone"),
    ("/v1/check", "check", f'{{"phone":"{PHONE}","campaign":"{S}"}}', "body.campaign"),
    ("/v1/check", "check", f'{{"phone":"{PHONE}","state":"{S}"}}', "body.state"),
    ("/v1/check", "check", f'{{"phone":"{PHONE}","zip":"{S}"}}', "body.zip"),
    ("/v1/check", "check", f'{{"phone":"{PHONE}","line_type":"{S}"}}', "body.line_type"),
    ("/v1/check", "check", f'{{"phone":"{PHONE}","timezone":"{S}"}}', "body.timezone"),
    ("/v1/check", "check", f'{{"phone":"{PHONE}","region":"{S}"}}', "body.region"),
    ("/v1/check", "check", f'{{"phone":"{PHONE}","subject":"a{S}b"}}', "body.subject"),
    ("/v1/check/batch", "check", f'{{"phones":["+12025550124","{S}"]}}', "body.phones.1"),
    ("/v1/check/batch", "check", f'{{"phones":["{PHONE}"],"subject":"{S}"}}', "body.subject"),
    ("/v1/dnc", "dnc:write", f'{{"phone":"+12025550124","reason":"{S}"}}', "body.reason"),
    ("/v1/dnc", "dnc:write", f'{{"phone":"+12025550124{S}"}}', "body.phone"),
    ("/v1/attempts", "dnc:write",
     f'{{"phone":"{PHONE}","purpose":"telemarketing","subject":"{S}"}}', "body.subject"),
    ("/v1/attempts", "dnc:write",
     f'{{"phone":"{PHONE}","purpose":"telemarketing","campaign":"{S}"}}', "body.campaign"),
    ("/v1/attempts", "dnc:write",
     f'{{"phone":"{PHONE}","purpose":"telemarketing","outcome":"{S}"}}', "body.outcome"),
    ("/v1/attempts", "dnc:write", f'{{"phone":"{S}","purpose":"telemarketing"}}',
     "body.phone"),
    ("/v1/consents", "dnc:write", f'{{"phone":"{S}","type":"express","date":"2026-01-01"}}',
     "body.phone"),
    ("/v1/jobs", "jobs", f'["+12025550124{S}"]', "body.0"),
    ("/v1/jobs", "jobs", f'["{PHONE}",{{"phone":"+12025550124","subject":"{S}"}}]',
     "body.1.subject"),
    ("/v1/jobs", "jobs", f'[{{"phone":"{S}"}}]', "body.0.phone"),
]


@pytest.mark.parametrize(("path", "scope", "body", "field"), BODY_STRINGS,
                         ids=[f"{p}:{f}" for p, _, _, f in BODY_STRINGS])
def test_a_lone_surrogate_is_refused_naming_the_field(
        ctx: Ctx, caplog: pytest.LogCaptureFixture, path: str, scope: str, body: str,
        field: str) -> None:
    with caplog.at_level(logging.ERROR):
        fields = refused(ctx.post(path, body.encode(), scope), field)
    assert NOT_TEXT in fields[0]["message"], fields
    assert "remove it" in fields[0]["message"], fields
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


@pytest.mark.parametrize(("path", "scope", "body", "field"), [
    ("/v1/check/batch", "check", b'{"phones":["+12025550124","\xed\xa0\x80"]}', "body.phones.1"),
    ("/v1/dnc", "dnc:write", b'{"phone":"+12025550124","reason":"x\xed\xa0\x80"}',
     "body.reason"),
    ("/v1/jobs", "jobs", b'["+12025550124\xed\xa0\x80"]', "body.0"),
])
def test_a_surrogate_in_raw_bytes_is_refused_too(ctx: Ctx, path: str, scope: str, body: bytes,
                                                 field: str) -> None:
    """Python's JSON parser reads the UTF-8-style bytes of a surrogate (not UTF-8: no
    encoder writes them) as that surrogate."""
    fields = refused(ctx.post(path, body, scope), field)
    assert NOT_TEXT in fields[0]["message"], fields


@pytest.mark.parametrize(("path", "scope", "body", "field"), [
    ("/v1/check", "check", f'{{"phone":"{PHONE}","{S}":1}}', "body.\\ud800"),
    ("/v1/check", "check", f'{{"phone":"{PHONE}","x{S}":1,"x{S}":2}}', "body.x\\ud800"),
    ("/v1/dnc", "dnc:write", f'{{"phone":"{PHONE}","a":{{"{S}":1}}}}', "body.a.\\ud800"),
    ("/v1/jobs", "jobs", f'[{{"phone":"{PHONE}","{S}":"x"}}]', "body.0.\\ud800"),
    ("/v1/jobs", "jobs", f'[{{"phone":"{PHONE}","{S}":"x","{S}":"y"}}]', "body.0.\\ud800"),
])
def test_a_key_that_is_not_text_is_named_escaped(ctx: Ctx, caplog: pytest.LogCaptureFixture,
                                                 path: str, scope: str, body: str,
                                                 field: str) -> None:
    """A key with a lone surrogate is named as JSON escapes it (the answer is UTF-8), once
    (also when it is given twice)."""
    with caplog.at_level(logging.ERROR):
        fields = refused(ctx.post(path, body.encode(), scope), field)
    assert NOT_TEXT in fields[0]["message"], fields
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


def test_a_refused_body_changes_nothing(ctx: Ctx) -> None:
    phone = "+12025550177"
    refused(ctx.post("/v1/dnc", f'{{"phone":"{phone}","reason":"{S}"}}'.encode(), "dnc:write"),
            "body.reason")
    check = ctx.client.post("/v1/check", json={"phone": phone},
                            headers=ctx.headers("check")).json()
    assert "DNC_INTERNAL" not in [r["code"] for r in check["reasons"]], check
    before = ctx.client.get("/v1/jobs", headers=ctx.headers("jobs")).json()["jobs"]
    refused(ctx.post("/v1/jobs", f'["{PHONE}","{phone}{S}"]'.encode(), "jobs"), "body.1")
    assert ctx.client.get("/v1/jobs", headers=ctx.headers("jobs")).json()["jobs"] == before


def test_text_outside_the_basic_plane_is_taken(ctx: Ctx) -> None:
    """A surrogate *pair* is one character (U+1F600): text, taken as such."""
    resp = ctx.post("/v1/dnc", b'{"phone":"+12025550178","reason":"\\ud83d\\ude00 asked"}',
                    "dnc:write")
    assert resp.status_code == 201, resp.text
    resp = ctx.post("/v1/jobs", b'[{"phone":"+12025550178","subject":"\\ud83d\\ude00"}]',
                    "jobs")
    assert resp.status_code == 202, resp.text


def test_the_shared_type_refuses_what_utf8_cannot_encode() -> None:
    from pydantic import TypeAdapter, ValidationError

    from dncguard.server._text import Unicode, not_text

    adapter = TypeAdapter(Unicode)
    assert adapter.validate_python("ok \U0001f600") == "ok \U0001f600"
    for bad in ("\ud800", "a\udfff", "\udc80\ud800"):
        assert not_text(bad) is not None
        with pytest.raises(ValidationError, match=r"U\+D[89A-F]"):
            adapter.validate_python(bad)
    assert not_text("plain") is None
    with pytest.raises(ValidationError, match="valid string"):  # not a string: as before
        adapter.validate_python(12)


# --- 2. a query parameter given more than once ---------------------------------------------

REPEATED = [
    ("GET", "/v1/rules/when?phone=%2B12025550199&phone=%2B12025550123", "check", "phone"),
    ("GET", f"/v1/rules/when?phone={PHONE}&phone={PHONE}", "check", "phone"),  # same value
    ("GET", "/v1/rules/when?phone=%2B12025550123&campaign=nope&campaign=default", "check",
     "campaign"),
    ("GET", "/v1/rules/when?phone=%2B12025550123&days=2&days=", "check", "days"),
    ("DELETE", "/v1/dnc/%2B12025550123?list=nope&list=internal", "dnc:write", "list"),
    ("DELETE", "/v1/dnc/%2B12025550123?reason=a&reason=b", "dnc:write", "reason"),
    ("GET", "/v1/metrics/summary?from=2026-01-01T00:00:00Z&from=2026-01-02T00:00:00Z",
     "admin", "from"),
    ("GET", "/v1/audit/search?phone=%2B12025550123&to=2026-01-01&to=2026-02-01", "admin", "to"),
    ("GET", "/v1/jobs?limit=1&limit=2", "jobs", "limit"),
]


@pytest.mark.parametrize(("method", "url", "scope", "name"), REPEATED,
                         ids=[u.split("/v1/")[1] for _, u, _, _ in REPEATED])
def test_a_query_parameter_given_twice_is_refused(ctx: Ctx, method: str, url: str, scope: str,
                                                  name: str) -> None:
    resp = ctx.client.request(method, url, headers=ctx.headers(scope))
    fields = refused(resp, f"query.{name}")
    assert fields[0]["message"] == "given more than once", fields
    assert resp.json()["error"]["message"] == f"invalid request (query.{name}: given more " \
                                              "than once)"


def test_a_repeated_parameter_acts_on_nothing(ctx: Ctx) -> None:
    phone = "%2B12025550179"
    assert ctx.client.post("/v1/dnc", json={"phone": "+12025550179"},
                           headers=ctx.headers("dnc:write")).status_code == 201
    refused(ctx.client.delete(f"/v1/dnc/{phone}?list=nope&list=internal",
                              headers=ctx.headers("dnc:write")), "query.list")
    before = ctx.client.get("/v1/jobs", headers=ctx.headers("jobs")).json()["jobs"]
    refused(ctx.client.post("/v1/jobs?campaign=nope&campaign=default", content=b'["+12025550179"]',
                            headers=ctx.headers("jobs", **JSON)), "query.campaign")
    assert ctx.client.get("/v1/jobs", headers=ctx.headers("jobs")).json()["jobs"] == before
    gone = ctx.client.delete(f"/v1/dnc/{phone}?list=internal", headers=ctx.headers("dnc:write"))
    assert gone.status_code == 200 and gone.json()["wasListed"] is True, gone.text


def test_an_unknown_parameter_is_still_named_as_unknown(ctx: Ctx) -> None:
    """Given twice or not, a name the operation does not take is unknown (the fast path of
    ``POST /v1/check`` hands any query string to the route)."""
    resp = ctx.client.post("/v1/check?campaign=a&campaign=b", json={"phone": PHONE},
                           headers=ctx.headers("check"))
    refused(resp, "query.campaign")
    assert resp.json()["error"]["message"] == "unknown query parameter(s): campaign"


def test_every_operation_with_query_parameters_refuses_repeats(ctx: Ctx) -> None:
    """Each query parameter of each operation of the OpenAPI document, given twice, is
    refused (``strict_query`` is a dependency of the whole application, before the key)."""
    operations = 0
    paths = ctx.client.get("/openapi.json").json()["paths"]
    for path, item in paths.items():
        for method, op in item.items():
            names = [p["name"] for p in op.get("parameters", ()) if p["in"] == "query"]
            if not names:
                continue
            operations += 1
            url = path.replace("{phone}", "%2B12025550123").replace("{job_id}", "nope")
            for name in names:
                resp = ctx.client.request(method, f"{url}?{name}=x&{name}=y",
                                          headers=ctx.headers("admin"))
                refused(resp, f"query.{name}")
    assert operations >= 6, paths.keys()  # dnc, when, jobs (2), metrics, audit


def test_a_parameter_declared_as_a_list_may_repeat() -> None:
    from dncguard.server._deps import strict_query
    from dncguard.server._errors import install

    app = FastAPI(dependencies=[Depends(strict_query)])
    install(app)

    @app.get("/t")
    def t(tag: list[str] = Query(default=[]), one: str | None = None) -> dict[str, Any]:
        return {"tag": tag, "one": one}

    with TestClient(app) as c:
        assert c.get("/t?tag=a&tag=b&one=x").json() == {"tag": ["a", "b"], "one": "x"}
        refused(c.get("/t?tag=a&one=x&one=y&tag=b"), "query.one")
        fields = refused(c.get("/t?one=x&one=y&nope=1&nope=2"), "query.nope")
        assert fields[0]["message"] == "not a parameter of this operation"


# --- 3. create: a JSON boolean, nothing else -----------------------------------------------

@pytest.mark.parametrize(("value", "name"), [
    ("yes", "typo-yes"), ("true", "typo-true-text"), (1, "typo-one"), ("1", "typo-one-text"),
    (1.0, "typo-one-float"), (0, "typo-zero"), ("no", "typo-no"), (None, "typo-null")])
def test_create_must_be_a_boolean(ctx: Ctx, value: Any, name: str) -> None:
    resp = ctx.client.post("/v1/dnc", json={"phone": PHONE, "list": name, "create": value},
                           headers=ctx.headers("dnc:write"))
    fields = refused(resp, "body.create")
    assert fields[0]["message"] == "Input should be a valid boolean", fields
    lists = ctx.client.get("/v1/lists", headers=ctx.headers("check")).json()["lists"]
    assert name not in [x["name"] for x in lists]


def test_create_true_still_makes_the_list(ctx: Ctx) -> None:
    resp = ctx.client.post("/v1/dnc", json={"phone": PHONE, "list": "made-here", "create": True},
                           headers=ctx.headers("dnc:write"))
    assert resp.status_code == 201, resp.text
    resp = ctx.client.post("/v1/dnc", json={"phone": PHONE, "list": "not-made", "create": False},
                           headers=ctx.headers("dnc:write"))
    assert resp.status_code == 422 and resp.json()["error"]["fields"][0]["field"] == "body.list"


def test_a_query_value_that_is_not_utf8_is_refused_and_changes_nothing(ctx: Ctx) -> None:
    """The framework reads each bad byte as U+FFFD: an opt-out's removal reason went into the
    audit trail altered. It is refused, naming the parameter; the number stays listed."""
    phone = "%2B12025550181"
    assert ctx.client.post("/v1/dnc", json={"phone": "+12025550181"},
                           headers=ctx.headers("dnc:write")).status_code == 201
    for query, name in (("list=internal&reason=caf%E9", "reason"),  # Latin-1, not UTF-8
                        ("reason=%C3", "reason"),  # a sequence cut short
                        ("list=intern%FFal", "list"),
                        ("%FF=1", "\ufffd")):  # the name itself
        resp = ctx.client.delete(f"/v1/dnc/{phone}?{query}", headers=ctx.headers("dnc:write"))
        fields = refused(resp, f"query.{name}")
        assert fields[0]["message"] == "not valid UTF-8 once decoded"
    # still listed: the removal below finds it (and its reason, escaped UTF-8, is taken)
    gone = ctx.client.delete(f"/v1/dnc/{phone}?list=internal&reason=caf%C3%A9+ok",
                             headers=ctx.headers("dnc:write"))
    assert gone.status_code == 200 and gone.json()["wasListed"] is True, gone.text
