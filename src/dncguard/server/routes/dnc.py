"""``POST /v1/dnc`` and ``DELETE /v1/dnc/{phone}``: internal-list opt-outs.

Changes are in the database, so the next check on every replica sees them (see
:mod:`dncguard.server._checker`). Both go through :mod:`dncguard.optouts`, which also queues
CXone write-back when CXone is configured.
"""

from __future__ import annotations

import builtins
from typing import Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field, StrictBool

from ...errors import ListError
from ...lists.store import ListStore
from ...optouts import add_optout, not_read_by, remove_optout
from ...phones import normalise
from .._deps import DncKey, Service, ServiceDep
from .._errors import ApiError, FieldError, Instant, responses
from .._text import Text, Unicode
from .check import no_key_twice_dnc

router = APIRouter(tags=["dnc"])


class OptOut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    phone: Unicode = Field(min_length=1, max_length=64, examples=["+12025550123"])
    reason: Text | None = Field(default=None, max_length=500, description="Why, for the audit")
    expires: Instant | None = Field(default=None, description="When the opt-out lapses")
    list: Unicode = Field(default="internal", min_length=1, max_length=100,
                          pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$",
                          description="An internal or litigator list that exists (internal is "
                                      "made on first use)")
    create: StrictBool = Field(default=False, description="Make the list when it does not "
                               "exist (a JSON boolean: true or false, nothing else)")
    region: Literal["US", "CA", "GB", "AU"] | None = None


class OptOutResult(BaseModel):
    e164: str
    list: str
    listed: bool = Field(description="Whether the number is on the list now")
    was_listed: bool | None = Field(default=None, alias="wasListed",
                                    description="DELETE: whether it was listed before")
    not_read_by: builtins.list[str] | None = Field(  # (the field "list" hides the type)
        default=None, alias="notReadBy",
        description="POST: the configured campaigns whose profile's lists do not name this "
                    "list, so their checks do not read it (empty: every campaign reads it)")

    model_config = ConfigDict(populate_by_name=True)


def _e164(phone: str, region: str | None, where: str, svc: Service) -> str:
    n = normalise(phone, region or svc.settings.default_region)
    if not n.ok or n.e164 is None:
        raise ApiError(422, f"not a valid number: {n.message}",
                       fields=[FieldError(field=where, message=n.message or "invalid number")])
    return n.e164


@router.post("/v1/dnc", status_code=201, response_model=OptOutResult,
             dependencies=[Depends(no_key_twice_dnc)],
             responses=responses(401, 403, 404, 413, 422, 429, 503),
             summary="Add an opt-out to an internal list")
def add(body: OptOut, svc: ServiceDep, key: DncKey) -> OptOutResult:
    e164 = _e164(body.phone, body.region, "body.phone", svc)
    store = ListStore(svc.settings, svc.engine)
    try:
        e164 = add_optout(store, e164, list_name=body.list, reason=body.reason,
                          expires=body.expires, who=f"api:{key.name}", create=body.create)
    except ListError as exc:
        where = "body.expires" if str(exc).startswith("expires") else "body.list"
        raise ApiError(422, str(exc), fields=[FieldError(field=where,
                                                         message=str(exc))]) from exc
    return OptOutResult(e164=e164, list=body.list, listed=True,
                        not_read_by=not_read_by(svc.settings, body.list))


@router.delete("/v1/dnc/{phone}", response_model=OptOutResult,
               responses=responses(401, 403, 404, 422, 429, 503),
               summary="Remove a number from an internal list")
def remove(
    svc: ServiceDep, key: DncKey,
    phone: str = Path(min_length=1, max_length=64, description="E.164 (URL-encode the +)"),
    list_name: str = Query(default="internal", alias="list", min_length=1, max_length=100),
    region: Literal["US", "CA", "GB", "AU"] | None = Query(default=None),
    reason: Text | None = Query(default=None, max_length=500),
) -> OptOutResult:
    e164 = _e164(phone, region, "path.phone", svc)
    store = ListStore(svc.settings, svc.engine)
    try:
        store.get(list_name)
    except ListError as exc:
        raise ApiError(404, str(exc)) from exc
    try:
        e164, was = remove_optout(store, e164, list_name=list_name, who=f"api:{key.name}",
                                  why=reason)
    except ListError as exc:
        raise ApiError(422, str(exc), fields=[FieldError(field="query.list",
                                                         message=str(exc))]) from exc
    return OptOutResult(e164=e164, list=list_name, listed=False, was_listed=was)

