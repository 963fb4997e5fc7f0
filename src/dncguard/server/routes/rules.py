"""``POST /v1/attempts``, ``POST /v1/consents`` and ``GET /v1/rules/when``: the rules engine.

Attempts and consents go to the same database tables as ``dncguard attempts record`` and
``dncguard consent import`` (:mod:`dncguard.sources.rules.stores`), so the very next check on every
replica counts them (the rules read both per check). ``/v1/rules/when`` answers what
``dncguard rules when --json`` prints, plus each window in every candidate zone's local time.
"""

from __future__ import annotations

import re
import threading
from datetime import UTC, date, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from ...engine.scrubber import Scrubber
from ...errors import InputError
from ...lists.store import ListStore
from ...phones import normalise
from ...sources.rules.schema import OUTCOMES
from ...sources.rules.source import RulesCheck
from ...sources.rules.stores import (
    DUPLICATE,
    AttemptStore,
    ConsentStore,
    campaign_problem,
    parse_outcome,
    subject_key,
)
from ...sources.rules.when import WhenOut
from .._context import clean_or_422, context_or_422
from .._deps import CheckKey, DncKey, Service, ServiceDep
from .._errors import ApiError, FieldError, Instant, responses
from .._text import Text, Unicode
from .check import no_key_twice_dnc

router = APIRouter(tags=["rules"])

Region = Literal["US", "CA", "GB", "AU"]
Purpose = Literal["telemarketing", "informational", "collections"]
CallType = Literal["manual", "autodialed", "prerecorded"]
LineType = Literal["mobile", "landline", "voip"]
ConsentType = Literal["express", "express_written", "ebr_purchase", "ebr_inquiry"]


def _day_text(value: object) -> object:
    """Dates are YYYY-MM-DD text (no Unix numbers, no date-times)."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _DAY.fullmatch(value):
        raise ValueError("expected a date, YYYY-MM-DD")
    return value


_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
#: A calendar date, YYYY-MM-DD.
Day = Annotated[date, BeforeValidator(_day_text), Field(examples=["2026-11-26"])]


class AttemptIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    phone: Unicode = Field(min_length=1, max_length=64, examples=["+13055550123"])
    at: Instant | None = Field(default=None, description="When the call was placed, an ISO "
                               "8601 instant with an offset (default now; more than 5 "
                               "minutes ahead of the server's clock is refused)")
    campaign: Text = Field(default="default", min_length=1, max_length=200,
                           description="A campaign profile: default, or a configured "
                                       "[campaigns.NAME] (any other name is refused)")
    purpose: Purpose | None = Field(default=None,
                                    description="Required unless the campaign is configured "
                                                "([campaigns.NAME]), whose purpose it takes")
    subject: Text | None = Field(default=None, min_length=1, max_length=200,
                                description="Same-subject key the caps count per (default: the "
                                            "campaign; a debt id for collections), stored and "
                                            "compared without spaces around, in lower case")
    outcome: Unicode | None = Field(default=None, min_length=1, max_length=40,
                                    description=f"One of {', '.join(OUTCOMES)} (any case)")
    region: Region | None = Field(default=None,
                                  description="Region of a number written in national format")

    _outcome = field_validator("outcome")(parse_outcome)  # refused: 422 naming body.outcome


class AttemptOut(BaseModel):
    e164: str
    at: datetime
    campaign: str
    purpose: str
    subject: str
    outcome: str | None
    added: bool = Field(description="False when the same attempt (number, time, subject, "
                                    "campaign, purpose, outcome) was already recorded; true "
                                    "when it was stored, or its outcome written on the stored "
                                    "attempt that had none")


class ConsentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    phone: Unicode = Field(min_length=1, max_length=64, examples=["+13055550123"])
    type: ConsentType
    date: Day = Field(description="Date of the consent, purchase or inquiry")
    expires: Day | None = Field(default=None, description="First day it no longer counts")
    revoked: Day | None = Field(default=None, description="Revocation date (revokes all "
                                                          "earlier consents of the number); "
                                                          "not before date, not in the future")
    region: Region | None = Field(default=None,
                                  description="Region of a number written in national format")


class ConsentOut(BaseModel):
    e164: str
    type: str
    date: Day
    expires: Day | None
    revoked: Day | None
    added: bool = Field(description="False when the same record was already stored")


_lock = threading.Lock()


def _rules(request: Request, svc: Service) -> RulesCheck:
    """One RulesCheck per app (the ruleset is parsed once; zones and plans are cached)."""
    check: RulesCheck | None = getattr(request.app.state, "rules_check", None)
    if check is None:
        with _lock:
            check = getattr(request.app.state, "rules_check", None)
            if check is None:
                check = RulesCheck(svc.settings, store=ListStore(svc.settings, svc.engine))
                request.app.state.rules_check = check
    return check


def _number(phone: str, region: str | None, where: str, svc: Service) -> tuple[str, str]:
    n = normalise(phone, region or svc.settings.default_region)
    if not n.ok or n.e164 is None or n.region is None:
        raise ApiError(422, f"not a valid number: {n.message}",
                       fields=[FieldError(field=where, message=n.message or "invalid number")])
    return n.e164, n.region


def _refused(exc: InputError, prefix: str) -> ApiError:
    """A 422 for a store's refusal, naming the field its message starts with (``revoked:
    ...`` is ``body.revoked``), else the body."""
    message = str(exc)
    known = {"consent date": "date", "expires": "expires", "revoked": "revoked", "at": "at",
             "purpose": "purpose", "outcome": "outcome", "campaign": "campaign",
             "subject": "subject"}
    field = known.get(message.partition(":")[0])
    where = f"{prefix}.{field}" if field else prefix
    return ApiError(422, message, fields=[FieldError(field=where, message=message)])


def _instant(at: datetime | None, where: str) -> datetime:
    try:
        return (at or datetime.now(UTC)).astimezone(UTC)
    except (OverflowError, ValueError) as exc:
        raise ApiError(422, f"{where}: out of range", fields=[
            FieldError(field=where, message="instant out of range")]) from exc


@router.post("/v1/attempts", status_code=201, response_model=AttemptOut,
             dependencies=[Depends(no_key_twice_dnc)],
             responses=responses(401, 403, 413, 422, 429, 503),
             summary="Record a call attempt (for frequency caps)")
def record_attempt(body: AttemptIn, svc: ServiceDep, _key: DncKey) -> AttemptOut:
    """Same as ``dncguard attempts record``: the next check counts it against the caps."""
    e164, _ = _number(body.phone, body.region, "body.phone", svc)
    at = _instant(body.at, "body.at")
    campaign = body.campaign.strip()
    problem = campaign_problem(svc.settings, campaign) if campaign else "is blank"
    if problem:  # a misspelt campaign's attempts would count for no check
        raise ApiError(422, f"body.campaign: {problem}", fields=[
            FieldError(field="body.campaign", message=problem)])
    if body.purpose:
        purpose: str = body.purpose
    elif campaign in svc.settings.campaigns:  # a configured campaign says its purpose
        purpose = svc.settings.campaigns[campaign].purpose
    else:  # the built-in default profile: the attempt's purpose must be given
        raise ApiError(422, f"body.purpose: campaign {campaign!r} has no configured "
                       "profile, so the attempt's purpose is unknown; send purpose",
                       fields=[FieldError(field="body.purpose",
                                          message="required unless the campaign is configured "
                                                  "([campaigns.NAME] in the settings file)")])
    try:
        done = AttemptStore(svc.settings).record_status(
            e164, at, campaign=body.campaign, purpose=purpose, subject=body.subject,
            outcome=body.outcome, who=f"api:{_key.name}")
    except InputError as exc:
        raise _refused(exc, "body") from exc
    subject = subject_key(body.campaign if body.subject is None else body.subject) or ""
    return AttemptOut(e164=e164, at=at, campaign=body.campaign.strip(), purpose=purpose,
                      subject=subject, outcome=body.outcome, added=done != DUPLICATE)


@router.post("/v1/consents", status_code=201, response_model=ConsentOut,
             dependencies=[Depends(no_key_twice_dnc)],
             responses=responses(401, 403, 413, 422, 429, 503),
             summary="Store a consent or established-business-relationship record")
def add_consent(body: ConsentIn, svc: ServiceDep, key: DncKey) -> ConsentOut:
    """Same as one row of ``dncguard consent import``."""
    e164, _ = _number(body.phone, body.region, "body.phone", svc)
    if body.expires is not None and body.expires <= body.date:
        raise ApiError(422, "expires is not after the consent date", fields=[
            FieldError(field="body.expires", message="is not after the consent date")])
    try:
        added = ConsentStore(svc.settings).add(e164, body.type, body.date, expires=body.expires,
                                               revoked=body.revoked, source=f"api:{key.name}",
                                               who=f"api:{key.name}")
    except InputError as exc:
        raise _refused(exc, "body") from exc
    return ConsentOut(e164=e164, type=body.type, date=body.date, expires=body.expires,
                      revoked=body.revoked, added=added)


@router.get("/v1/rules/when", response_model=WhenOut,
            responses=responses(401, 403, 422, 429, 503),
            summary="The next legal calling windows of a number")
def when(
    request: Request, svc: ServiceDep, _key: CheckKey,
    phone: Annotated[str, Query(min_length=1, max_length=64,
                                description="E.164 or national format")],
    at: Annotated[Instant | None, Query(description="Start, an ISO 8601 instant with an "
                                                    "offset (default now)")] = None,
    campaign: Annotated[str, Query(min_length=1, max_length=100)] = "default",
    purpose: Annotated[Purpose | None, Query()] = None,
    call_type: Annotated[CallType | None, Query()] = None,
    state: Annotated[str | None, Query(max_length=40)] = None,
    zip: Annotated[str | None, Query(max_length=12)] = None,
    line_type: Annotated[str | None, Query(max_length=20)] = None,
    timezone: Annotated[str | None, Query(max_length=64, description="IANA zone")] = None,
    region: Annotated[Region | None, Query()] = None,
    days: Annotated[int, Query(ge=1, le=14, description="How many days ahead")] = 7,
) -> Response:
    """The document ``dncguard rules when --json`` prints: windows in UTC and in every
    candidate zone, the zones and how they were found, the jurisdictions, the ruleset
    version, and the rule reasons a call at ``at`` would get."""
    e164, num_region = _number(phone, region, "query.phone", svc)
    start = _instant(at, "query.at")
    check = _rules(request, svc)
    ctx = context_or_422(Scrubber(svc.settings), at=start, campaign=campaign,
                         purpose=purpose, call_type=call_type)
    extra = clean_or_422({"state": state, "zip": zip, "timezone": timezone,
                          "line_type": line_type}, country=num_region)
    st = extra.get("state")
    try:
        result = check.when(e164, num_region, st, extra, ctx, days=days)
    except (OverflowError, ValueError) as exc:  # a start at the very end of the calendar
        raise ApiError(422, "query.at: out of range", fields=[
            FieldError(field="query.at", message="instant out of range")]) from exc
    out = result.document(e164, ruleset=check.ruleset.version, ctx=ctx, days=days,
                          rules_enabled=check.config.enabled)
    return Response(out.model_dump_json(by_alias=True), media_type="application/json")
