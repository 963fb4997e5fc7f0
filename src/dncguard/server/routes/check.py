"""``POST /v1/check`` and ``POST /v1/check/batch``: the pre-dial check."""

from __future__ import annotations

import email.message
import json
import logging
from typing import Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from ...engine.context import clean_field
from ...errors import ContextError
from ...models import Verdict
from ...sources.protocol import CheckContext
from .._context import context_or_422
from .._deps import CheckKey, DncKey, Service, ServiceDep
from .._errors import ApiError, FieldError, Instant, responses
from .._realtime import let_others_run
from .._text import Unicode, key_name, not_text

log = logging.getLogger("dncguard.server")


class _Twice(list[tuple[str, Any]]):
    """The pairs of a JSON object that has a key more than once, or a key that is not text."""


#: What a key given twice is refused with.
GIVEN_TWICE = "given twice"


def keys_given_twice(body: bytes, where: str = "body", most: int = 20) -> list[str]:
    """Where a key of a JSON object in ``body`` is given twice (``body.phone``,
    ``body.phones.0.x``), in document order, the first ``most``; JSON parsers keep the last
    one silently, so the first would be lost. Empty when there is none, and for a body that is
    not JSON at all (the framework's parser says what is wrong with it)."""
    return [f.field for f in key_refusals(body, where, most) if f.message == GIVEN_TWICE]


def key_refusals(body: bytes, where: str = "body", most: int = 20) -> list[FieldError]:
    """The keys of the JSON objects in ``body`` that are given twice (:func:`keys_given_twice`)
    or are not text (:func:`~.._text.not_text`: a lone surrogate), each named once (a key
    not text as such, also when given twice; as :func:`~.._text.key_name` writes it), in
    document order, the first ``most``. One parse of the body."""
    found = False

    def pairs(items: list[tuple[str, Any]]) -> Any:
        nonlocal found
        obj = dict(items)
        if len(obj) == len(items) and not_text("".join(obj)) is None:  # (one test for all)
            return obj
        found = True
        return _Twice(items)

    try:
        data = json.loads(body, object_pairs_hook=pairs)
    except (ValueError, RecursionError):
        return []
    if not found:
        return []
    out: dict[str, str] = {}  # field -> why, in the order found
    stack: list[tuple[str, Any]] = [(where, data)]
    while stack:  # depth first, in document order (no recursion: any depth JSON can have)
        path, value = stack.pop()
        children: list[tuple[str, Any]] = []
        if isinstance(value, _Twice):
            seen: set[str] = set()
            for key, item in value:
                name = f"{path}.{key_name(key)}"
                why = not_text(key) or (GIVEN_TWICE if key in seen else None)
                if why is not None and name not in out:
                    out[name] = why
                    if len(out) == most:
                        return [FieldError(field=f, message=m) for f, m in out.items()]
                seen.add(key)
                children.append((name, item))
        elif isinstance(value, dict):
            children = [(f"{path}.{key_name(k)}", v) for k, v in value.items()]
        elif isinstance(value, list):
            children = [(f"{path}.{i}", v) for i, v in enumerate(value)]
        stack.extend(reversed(children))
    return [FieldError(field=f, message=m) for f, m in out.items()]


def _parsed_as_json(content_type: str | None) -> bool:
    """Whether the framework reads a body of this content type as JSON (FastAPI's own test:
    application/json or application/*+json; a body without a content type is not)."""
    if not content_type:
        return False
    message = email.message.Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json"))


async def no_key_twice(request: Request, _key: CheckKey) -> None:
    """A JSON body in which an object gives a key twice is refused, 422 naming each such key
    (``given twice``): the parser keeps the last value, and the first would be lost; so is
    one with a key that is not text (:func:`key_refusals`). A dependency of the check routes,
    after the key (its 401, 403, 429 come first, as for the body's other refusals; the key is
    the one the route gets, verified and counted once)."""
    await refuse_keys_twice(request)


async def no_key_twice_dnc(request: Request, _key: DncKey) -> None:
    """:func:`no_key_twice` for the routes that change opt-outs, consents and attempts."""
    await refuse_keys_twice(request)


async def refuse_keys_twice(request: Request) -> None:
    """422 naming each key an object of the request's JSON body gives twice, or that is not
    text (:func:`key_refusals`)."""
    if _parsed_as_json(request.headers.get("content-type")):
        raise_key_refusals(await request.body())


def raise_key_refusals(body: bytes) -> None:
    """:func:`key_refusals` of ``body`` as a 422, when there is any."""
    refusals = key_refusals(body)
    if refusals:
        first = refusals[0]
        raise ApiError(422, f"invalid request ({first.field}: {first.message})",
                       fields=refusals)


router = APIRouter(tags=["check"])


class CheckOptions(BaseModel):
    """The context a number is checked in; everything is optional, nothing is ignored: a value
    that is not understood answers 422 naming the field (see ``dncguard.engine.context``)."""

    model_config = ConfigDict(extra="forbid")

    campaign: Unicode = Field(default="default", min_length=1, max_length=100,
                              description="Campaign profile name: default or a configured "
                                          "[campaigns.NAME]; any other name answers 422")
    purpose: Literal["telemarketing", "informational", "collections"] | None = None
    call_type: Literal["manual", "autodialed", "prerecorded"] | None = None
    state: Unicode | None = Field(default=None, max_length=40,
                                  description="Called party's state or province: code, name or AP "
                                              "abbreviation (FL, Florida, Fla.)")
    zip: Unicode | None = Field(default=None, max_length=12,
                                description="US ZIP (12345, 12345-6789), Canadian postal code or "
                                            "UK postcode")
    line_type: Unicode | None = Field(default=None, max_length=20,
                                      description="mobile (wireless, cell), landline (wireline, "
                                                  "fixed) or voip")
    timezone: Unicode | None = Field(default=None, max_length=64, description="IANA zone")
    region: Unicode | None = Field(
        default=None, max_length=4,
        description="Region of a number written in national format: US, CA, GB (UK), AU")
    subject: Unicode | None = Field(default=None, max_length=200,
                                    description="Frequency-cap subject, e.g. a debt id")
    at: Instant | None = Field(
        default=None, description="Dial time, an ISO 8601 instant with an offset (default now)")

    @field_validator("state", "zip", "line_type", "timezone", "region", "subject")
    @classmethod
    def _understood(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        try:
            return clean_field(str(info.field_name), value) or None
        except ContextError as exc:
            raise ValueError(exc.why) from None

    def defaults(self) -> dict[str, str]:
        values = {"state": self.state, "zip": self.zip, "line_type": self.line_type,
                  "timezone": self.timezone, "region": self.region, "subject": self.subject}
        return {k: v for k, v in values.items() if v}


class CheckRequest(CheckOptions):
    phone: Unicode = Field(min_length=1, max_length=64, description="E.164 or national format",
                           examples=["+12025550123"])


class BatchRequest(CheckOptions):
    phones: list[Unicode] = Field(description="Up to the batch limit (10,000 by default)",
                                  examples=[["+12025550123", "(202) 555-0124"]])


class BatchResponse(BaseModel):
    count: int
    duplicates: int
    verdicts: list[Verdict] = Field(description="In request order; row is the 1-based index")


def _who(key: object) -> str:
    return f"api:{getattr(key, 'name', 'no-auth')}"


def check_context(svc: Service, options: CheckOptions) -> CheckContext:
    """The check context of a request; an unknown campaign answers 422 naming it. A profile
    that the checks prepared last refuse is judged again by those of the current list
    version (one query) before it is refused: a list created since must not be unknown
    until some other check prepares them again. (The checks a request runs with judge its
    profile once more: see :meth:`Scrubber.run`.)"""
    try:
        return svc.provider.prepared().context(
            at=options.at, campaign=options.campaign, purpose=options.purpose,
            call_type=options.call_type)
    except ContextError:
        pass
    return context_or_422(svc.provider.get(), at=options.at, campaign=options.campaign,
                          purpose=options.purpose, call_type=options.call_type, where="body")


@router.post("/v1/check", response_model=Verdict, dependencies=[Depends(no_key_twice)],
             responses=responses(401, 403, 413, 422, 429),
             summary="Check one number right before dialing")
async def check(body: CheckRequest, svc: ServiceDep, _key: CheckKey) -> Response:
    """The verdict for one number: same schema as ``dncguard check --json``.

    Fails closed: when the database cannot be read the decision is ``error`` (SOURCE_ERROR);
    the verdict is answered once its audit record is committed, and when that fails it is
    ``error`` (AUDIT_UNAVAILABLE).
    """
    data = await answer_check(svc, body, check_context(svc, body), _key)
    return Response(data, media_type="application/json")


async def answer_check(svc: Service, body: CheckRequest, ctx: CheckContext,
                       key: object) -> bytes:
    """The verdict of one check as the JSON answered (also :mod:`..fastcheck`'s answer);
    the real-time checker counts it in the metrics."""
    verdict = await svc.realtime.check(body.phone, ctx, body.defaults(),
                                       fixed_at=body.at is not None, who=_who(key))
    return verdict.__pydantic_serializer__.to_json(verdict)


@router.post("/v1/check/batch", response_model=BatchResponse,
             dependencies=[Depends(no_key_twice)],
             responses=responses(401, 403, 413, 422, 429, 503),
             summary="Check up to 10,000 numbers at once")
async def check_batch(body: BatchRequest, svc: ServiceDep, _key: CheckKey) -> Response:
    """Verdicts in request order; a repeated number carries DUPLICATE and its first row.

    Answers 503 (nothing checked) when the database cannot be read; every verdict is
    ``error`` (AUDIT_UNAVAILABLE) when their audit records cannot be written.
    """
    limit = svc.server.batch_limit
    if len(body.phones) > limit:
        raise ApiError(413, f"{len(body.phones):,} numbers in one batch; the limit is {limit:,} "
                       "(use POST /v1/jobs for files)")
    bad = [i for i, p in enumerate(body.phones) if len(p) > 64]
    if bad:
        raise ApiError(422, "phone numbers are at most 64 characters", fields=[
            FieldError(field=f"body.phones.{i}", message="at most 64 characters")
            for i in bad[:20]])
    ctx = check_context(svc, body)
    verdicts = await svc.realtime.check_many(body.phones, ctx, body.defaults(), _who(_key))
    return Response(await batch_json(verdicts), media_type="application/json")


async def batch_json(verdicts: list[Verdict], step: int = 1000) -> bytes:
    """:class:`BatchResponse` as JSON, the bytes ``model_dump_json`` gives, written a slice
    of verdicts at a time with a yield to the event loop between slices (10,000 verdicts
    are several MB: single checks beside a batch do not wait for all of it)."""
    dups = sum(1 for v in verdicts if any(r.code == "DUPLICATE" for r in v.reasons))
    parts = [f'{{"count":{len(verdicts)},"duplicates":{dups},"verdicts":['.encode()]
    for start in range(0, len(verdicts), step):
        if start:
            parts.append(b",")
        parts.append(b",".join(v.__pydantic_serializer__.to_json(v)
                               for v in verdicts[start:start + step]))
        await let_others_run()
    parts.append(b"]}")
    return b"".join(parts)
