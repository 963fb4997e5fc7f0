"""``GET /v1/audit/search``: what the audit trail holds about one number (admin scope).

The same search as ``dncguard audit search --json`` (:func:`dncguard.audit.search.search_number`):
checks, list changes, consents, attempts and the scrub jobs whose results hold the number,
newest first, the number masked.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from ...audit import audit_log
from ...audit.search import DEFAULT_LIMIT, MAX_LIMIT, parse_bound, search_number
from ...errors import DncGuardError, InputError
from ...phones import normalise
from .._deps import AdminKey, ServiceDep
from .._errors import ApiError, FieldError, responses

router = APIRouter(tags=["audit"])


class JobRowOut(BaseModel):
    row: int = Field(description="1-based data row of the job's results (`audit prove` takes it)")
    decision: str
    reasons: list[str]
    next_allowed_at: str | None = Field(alias="nextAllowedAt")


class SearchRecord(BaseModel):
    seq: int = Field(description="The audit record's sequence number")
    at: str = Field(description="When the record was written (UTC)")
    kind: str = Field(description="check, list or job")
    action: str = Field(description="check; add, remove, consent, attempt, ...; scrub")
    who: str | None
    subject: str | None = Field(description="The list, the job id, or (checks) the masked "
                                            "number")
    number: str | None = Field(description="The number, masked (+1202555****)")
    decision: str | None = Field(description="A check's decision; a job's: its first row's")
    reasons: list[str] = Field(description="Reason codes (a job: its first row's)")
    versions: dict[str, Any] = Field(description="Data versions: lists' snapshot dates, "
                                                 "ruleset")
    data: dict[str, Any] = Field(description="The record's data (a check: dial_time, lists, "
                                             "...; a list change: why, ...; a job: job_id, "
                                             "file, rows)")
    rows: list[JobRowOut] | None = Field(description="Jobs: the rows holding the number")


class UnsearchedJobOut(BaseModel):
    job_id: str = Field(alias="jobId")
    seq: int
    at: str
    why: str


class SearchOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    number: str = Field(description="The number searched, masked")
    from_: str | None = Field(alias="from")
    to: str | None
    records: list[SearchRecord] = Field(description="Newest first")
    truncated: bool = Field(description="More records than `limit`: narrow the range")
    jobs_searched: int = Field(alias="jobsSearched")
    jobs_not_searched: list[UnsearchedJobOut] = Field(
        alias="jobsNotSearched", description="Jobs of the range whose results could not be "
        "read (not retained, gone, altered), with why")
    jobs_left: int = Field(alias="jobsLeft", description="Older jobs of the range not read")


@router.get("/v1/audit/search", response_model=SearchOut,
            responses=responses(401, 403, 409, 422, 429, 503),
            summary="What the audit trail holds about one number")
def search(
    svc: ServiceDep, _key: AdminKey,
    phone: Annotated[str, Query(min_length=1, max_length=64,
                                description="E.164 or national format")],
    start: Annotated[str | None, Query(alias="from", max_length=40,
                                       description="A date (a whole UTC day) or an ISO 8601 "
                                                   "instant with an offset")] = None,
    end: Annotated[str | None, Query(alias="to", max_length=40,
                                     description="A date (through that UTC day) or an "
                                                 "instant (excluded)")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Most records")] = DEFAULT_LIMIT,
    jobs: Annotated[bool, Query(description="Read the scrub jobs' results files")] = True,
) -> Response:
    """The records about ``phone``: checks, list changes, consents, attempts, and the scrub
    jobs of the range whose retained results hold the number (with its rows), newest first.
    The same as ``dncguard audit search --json``."""
    n = normalise(phone, svc.settings.default_region)
    if not n.ok or n.e164 is None:
        raise ApiError(422, f"not a valid number: {n.message}",
                       fields=[FieldError(field="query.phone", message=n.message or
                                          "invalid number")])
    since = _bound(start, "query.from", end=False)
    until = _bound(end, "query.to", end=True)
    try:
        result = search_number(audit_log(svc.settings), n.e164, since=since, until=until,
                               limit=limit, jobs=jobs)
    except InputError as exc:  # an empty range
        raise ApiError(422, str(exc), fields=[FieldError(field="query", message=str(exc))]) \
            from exc
    except DncGuardError as exc:  # no audit key exists: nothing can be matched
        raise ApiError(409, str(exc)) from exc
    out = SearchOut.model_validate(result.to_json())
    return Response(out.model_dump_json(by_alias=True), media_type="application/json")


def _bound(value: str | None, where: str, *, end: bool) -> Any:
    try:
        return parse_bound(value, where, end=end)
    except InputError as exc:
        raise ApiError(422, str(exc), fields=[FieldError(field=where, message=str(exc))]) \
            from exc
