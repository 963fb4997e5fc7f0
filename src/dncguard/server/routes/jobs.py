"""``/v1/jobs``: scrub a file in the background; status, results, summary, cancel."""

from __future__ import annotations

import codecs
import csv
import json
import logging
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import anyio
from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from ...engine.context import CONTEXT_FIELDS, scope_column_refusal, scope_columns
from ...engine.scrubber import Scrubber
from ...errors import InputError
from ...io.tables import read_header
from ...store import utcnow
from .._context import clean_or_422, context_or_422
from .._deps import JobsKey, Service, ServiceDep
from .._errors import ApiError, FieldError, Instant, responses
from .._jobs import JobInfo, JobIntegrityError, api_words
from .._text import Text, key_name, not_text
from ..keys import ApiKey
from .check import raise_key_refusals

router = APIRouter(tags=["jobs"])
log = logging.getLogger("dncguard.jobs")

CSV_TYPES = ("text/csv", "application/csv", "text/plain")
PARQUET_TYPES = ("application/vnd.apache.parquet", "application/x-parquet", "application/parquet")
#: The per-row context keys of a JSON job's objects: those of ``POST /v1/check``.
CONTEXT_KEYS = CONTEXT_FIELDS
#: The keys a JSON job's object may hold (each a column of the CSV the job reads).
ROW_KEYS = ("phone", *CONTEXT_KEYS)
#: Fields of ``POST /v1/check`` that a job takes once, as query parameters, not per row.
JOB_PARAMS = ("campaign", "purpose", "call_type", "at")
#: The most wrong keys and values one refusal names.
MAX_FIELD_ERRORS = 20
#: The dial times a job takes (from, until; UTC). The rules look back and ahead of a dial
#: time (caps, holidays, calling windows): near the calendar's ends they cannot judge it, and
#: ``POST /v1/check`` answers ``error`` (SOURCE_ERROR); a job, whose every row would be that,
#: is refused instead (422 naming ``query.at``), before its upload.
DIAL_TIMES = (datetime(1900, 1, 1, tzinfo=UTC), datetime(9000, 1, 1, tzinfo=UTC))


class JobStatus(BaseModel):
    id: str
    state: Literal["queued", "running", "done", "failed", "cancelled"]
    created_at: datetime = Field(alias="createdAt")
    updated_at: datetime = Field(alias="updatedAt")
    finished_at: datetime | None = Field(alias="finishedAt")
    input: str | None
    format: str
    rows_done: int = Field(alias="rowsDone")
    chunks_done: int = Field(alias="chunksDone")
    chunk_size: int = Field(alias="chunkSize")
    counts: dict[str, int] = Field(description="Rows committed so far, by decision")
    error: str | None
    params: dict[str, Any]
    links: dict[str, str] = Field(default_factory=dict)

    model_config = {"populate_by_name": True}


def _status(job: JobInfo) -> JobStatus:
    base = f"/v1/jobs/{job.id}"
    return JobStatus.model_validate({**job.public(), "links": {
        "self": base, "results": f"{base}/results", "summary": f"{base}/summary"}})


_BODY = {
    "requestBody": {
        "required": True,
        "description": "The contacts: a CSV file (header row, a phone column), a Parquet file, "
                       "or a JSON array of numbers or of objects with a `phone` field and "
                       "optionally the per-row fields of `POST /v1/check` (`region`, `state`, "
                       "`zip`, `timezone`, `line_type`, `subject`); any other key answers 422.",
        "content": {
            "text/csv": {"schema": {"type": "string", "format": "binary"}},
            "application/vnd.apache.parquet": {"schema": {"type": "string",
                                                          "format": "binary"}},
            "application/json": {"schema": {"type": "array", "items": {
                "anyOf": [{"type": "string"},
                          {"type": "object", "required": ["phone"],
                           "additionalProperties": False, "properties": {
                              "phone": {"type": "string"},
                              **{k: {"type": ["string", "null"]} for k in CONTEXT_KEYS}}}]}}},
        },
    }
}


#: The character sets an upload may declare (``charset=``, in any case, quoted or not): the
#: job reads its file as UTF-8, which US-ASCII is part of.
CHARSETS = ("utf-8", "us-ascii")


def _charset(params: list[str]) -> None:
    """Refuse (415) a ``charset`` parameter that is not one the job reads its file in
    (:data:`CHARSETS`): a Latin-1 file read as UTF-8 has its rows flagged and their cells
    rewritten, and a name with an accent in its header is refused."""
    for param in params:
        key, _, value = param.partition("=")
        if key.strip().lower() != "charset":
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1].strip()
        if value.lower() not in CHARSETS:
            raise ApiError(415, f"unsupported charset {value!r}: the upload must be UTF-8 "
                           "(charset=utf-8 or us-ascii, or none); save the file as UTF-8")


def _format(content_type: str) -> str:
    media, *params = content_type.split(";")
    media = media.strip().lower()
    _charset(params)
    if media in CSV_TYPES:
        return "csv"
    if media in PARQUET_TYPES:
        return "parquet"
    if media in ("application/json", ""):
        return "json"
    raise ApiError(415, f"unsupported Content-Type {media!r}: send text/csv, "
                   "application/vnd.apache.parquet or application/json")


def _dial_time(at: datetime | None) -> datetime:
    """The job's dial time (default: now), within :data:`DIAL_TIMES`, else 422."""
    if at is None:
        return utcnow()
    first, until = DIAL_TIMES
    if not first <= at < until:
        why = (f"a dial time the rules cannot judge: a job's is from {first:%Y-%m-%d} until "
               f"{until:%Y-%m-%d} (UTC)")
        raise ApiError(422, f"query.at: {why}", fields=[FieldError(field="query.at",
                                                                   message=why)])
    return at


def _refuse_phone_column(fmt: str, phone_column: str | None) -> None:
    """A JSON upload's number is each row's ``phone``: ``phone_column`` is refused (422), not
    read as another key (``zip``) holding the number."""
    if fmt == "json" and phone_column is not None:
        why = ("not for a JSON upload: its rows' number is their phone field (phone_column "
               "names the column of a CSV or Parquet upload)")
        raise ApiError(422, f"query.phone_column: {why}",
                       fields=[FieldError(field="query.phone_column", message=why)])


def scope_column_problem(target: Path) -> str | None:
    """Why an upload with a column named like the job's purpose or call type (``call_type``,
    ``Call Type``, ``calltype``, ``purpose``, ``call_purpose``: the scrub's own rule,
    :func:`~dncguard.engine.context.scope_columns`) is refused, or None: its values would
    judge no row, and the job would fail when it ran. A header that cannot be read is left
    to the job, which fails with the reason. (The API and the console's upload.)"""
    try:
        header = read_header(target)
    except InputError:
        return None
    scoped = scope_columns(header)
    if not scoped:
        return None
    return api_words(scope_column_refusal(scoped[0]))  # the scrub's words, the API's names


def _refuse_scope_columns(target: Path) -> None:
    """:func:`scope_column_problem` as a 422. Runs in a worker thread."""
    why = scope_column_problem(target)
    if why is not None:
        raise ApiError(422, f"body: {why}", fields=[FieldError(field="body", message=why)])


def _json_rows(raw_path: Path, target: Path) -> None:
    """A JSON upload (at ``raw_path``) read and written to ``target`` as the CSV the job
    reads (:func:`_json_to_csv`), or 422. The body must be UTF-8 without a byte order mark
    (JSON's own encoding; a UTF-16 or UTF-32 body, or one with a BOM, is refused). Runs in a
    worker thread: a large upload would hold the event loop for seconds."""
    raw = raw_path.read_bytes()
    try:
        if raw.startswith(codecs.BOM_UTF8):
            raise ValueError("it starts with a byte order mark; send UTF-8 without one")
        text = raw.decode("utf-8", "surrogatepass")  # a surrogate: named below (body.0)
        data = json.loads(text)
    except RecursionError:
        raise ApiError(422, "the body is not valid JSON: nested too deeply",
                       fields=[FieldError(field="body", message="nested too deeply")]) from None
    except UnicodeDecodeError as exc:
        raise ApiError(422, f"the body is not UTF-8 JSON: {exc}; send it as UTF-8",
                       fields=[FieldError(field="body", message="not UTF-8")]) from exc
    except ValueError as exc:
        raise ApiError(422, f"the body is not valid JSON: {exc}",
                       fields=[FieldError(field="body", message="invalid JSON")]) from exc
    # a key given twice (the first value of each would be lost), or not text
    raise_key_refusals(raw)
    with target.open("w", encoding="utf-8", newline="") as out:
        _json_to_csv(data, out)
    raw_path.unlink()


def _json_to_csv(raw: Any, out: Any) -> int:
    """Write a JSON job's rows as the CSV the job runner reads: a column per row key. Every
    key of an object is a row key (:data:`ROW_KEYS`, the per-number fields ``POST /v1/check``
    takes) and every value a string or null, else 422 naming ``body.INDEX.KEY`` (up to
    :data:`MAX_FIELD_ERRORS` of them) and nothing is written: a key that is not read would
    judge the row as if it had said nothing. A string that is not text (a lone surrogate:
    :func:`~.._text.not_text`) is refused too, naming it (``body.INDEX``, ``body.INDEX.KEY``):
    the CSV file could not hold it. Values are cleaned by the engine as a CSV
    file's cells are (one it does not understand makes that row ``error`` /
    CONTEXT_INVALID, naming the row and the key)."""
    if not isinstance(raw, list):
        raise ApiError(422, "the JSON body must be an array of numbers or of objects",
                       fields=[FieldError(field="body", message="expected an array")])
    writer = csv.writer(out)
    writer.writerow(ROW_KEYS)
    errors: list[FieldError] = []
    for i, item in enumerate(raw):
        if isinstance(item, str):
            why = not_text(item)
            if why is not None:
                errors.append(FieldError(field=f"body.{i}", message=why))
            else:
                writer.writerow([item] + [""] * len(CONTEXT_KEYS))
        elif isinstance(item, dict):
            found = _row_errors(i, item)
            errors.extend(found)
            if not found:
                writer.writerow([item.get(k) or "" for k in ROW_KEYS])
        else:
            errors.append(FieldError(field=f"body.{i}", message="expected a string or an "
                                     "object with a string phone field"))
        if len(errors) >= MAX_FIELD_ERRORS:
            break
    if errors:
        first = errors[0]
        more = " (and more: see fields)" if len(errors) > 1 else ""
        raise ApiError(422, f"invalid request ({first.field}: {first.message}){more}",
                       fields=errors[:MAX_FIELD_ERRORS])
    return len(raw)


def _row_errors(i: int, item: dict[str, Any]) -> list[FieldError]:
    """What is wrong with the object at index ``i`` of a JSON job (nothing: a row)."""
    out = []
    if "phone" not in item:
        out.append(FieldError(field=f"body.{i}.phone", message="Field required"))
    elif not isinstance(item["phone"], str):
        out.append(FieldError(field=f"body.{i}.phone", message="Input should be a valid string"))
    for key, value in item.items():
        where = f"body.{i}.{key_name(key)}"
        if (why := not_text(key)) is not None:
            out.append(FieldError(field=where, message=why))
        elif key in JOB_PARAMS:
            out.append(FieldError(field=where, message=(
                f"Extra inputs are not permitted: {key} is a query parameter of the job "
                f"(POST /v1/jobs?{key}=...), the same for every row")))
        elif key not in ROW_KEYS:
            out.append(FieldError(field=where, message=(
                "Extra inputs are not permitted: a row's keys are " + ", ".join(ROW_KEYS))))
        elif key != "phone" and not (value is None or isinstance(value, str)):
            out.append(FieldError(field=where, message="Input should be a valid string"))
        elif isinstance(value, str) and (why := not_text(value)) is not None:
            out.append(FieldError(field=where, message=why))
    return out


@router.post("/v1/jobs", status_code=202, response_model=JobStatus, response_model_by_alias=True,
             openapi_extra=_BODY, responses=responses(401, 403, 413, 415, 422, 429, 503),
             summary="Start a scrub job from an uploaded file")
async def create_job(
    request: Request, svc: ServiceDep, key: JobsKey,
    at: Annotated[Instant | None, Query(description="Dial time (default: now)")] = None,
    campaign: Annotated[Text, Query(min_length=1, max_length=100)] = "default",
    purpose: Literal["telemarketing", "informational", "collections"] | None = None,
    call_type: Literal["manual", "autodialed", "prerecorded"] | None = None,
    phone_column: Annotated[Text | None, Query(max_length=200)] = None,
    state: Annotated[str | None, Query(max_length=40)] = None,
    zip: Annotated[str | None, Query(max_length=12)] = None,
    line_type: Annotated[str | None, Query(max_length=20)] = None,
    timezone: Annotated[str | None, Query(max_length=64)] = None,
    region: Annotated[str | None, Query(max_length=4)] = None,
    subject: Annotated[Text | None, Query(max_length=200)] = None,
) -> JobStatus:
    """Returns at once with the job id; poll ``GET /v1/jobs/{id}``. Context values are
    cleaned as for ``/v1/check``; an unknown campaign or value answers 422 before upload, so
    do a control character in a text parameter, a dial time outside :data:`DIAL_TIMES` and
    ``phone_column`` with a JSON upload; a column named like the purpose or call type answers
    422 once the upload is read (:func:`_refuse_scope_columns`). No job is made and nothing of
    the upload is kept when the request fails, at any step."""
    defaults = clean_or_422({"state": state, "zip": zip, "line_type": line_type,
                             "timezone": timezone, "region": region, "subject": subject})
    context_or_422(Scrubber(svc.settings), at=at, campaign=campaign, purpose=purpose,
                   call_type=call_type)
    dial_time = _dial_time(at)
    fmt = _format(request.headers.get("content-type", ""))
    _refuse_phone_column(fmt, phone_column)
    limit = svc.server.max_upload_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"the upload is larger than {limit:,} bytes")
    job_id = svc.jobs.new_id()
    folder = svc.jobs.folder(job_id)
    folder.mkdir(parents=True, exist_ok=True)
    stored = "csv" if fmt == "json" else fmt
    target = folder / f"input.{stored}"
    params = {"at": dial_time.isoformat(), "campaign": campaign, "purpose": purpose,
              "call_type": call_type, "phone_column": phone_column, "defaults": defaults,
              "owner": key.id}
    made: list[JobInfo] = []

    def create() -> None:
        made.append(svc.jobs.create(job_id, input_name=request.headers.get("x-filename"),
                                    input_format=stored, params=params, who=f"api:{key.name}"))

    try:
        size = 0
        raw_path = folder / "upload.tmp"
        with raw_path.open("wb") as fh:
            async for part in request.stream():
                size += len(part)
                if size > limit:
                    raise ApiError(413, f"the upload is larger than {limit:,} bytes")
                fh.write(part)
        if size == 0:
            raise ApiError(422, "the upload is empty",
                           fields=[FieldError(field="body", message="empty")])
        # off the event loop (the threads run to their end even when the request is
        # cancelled, so the folder is never removed under them): a large upload's parsing,
        # and its storing in the database (PostgreSQL), would stall every other request
        if fmt == "json":
            await anyio.to_thread.run_sync(_json_rows, raw_path, target)
        else:
            raw_path.replace(target)
            await anyio.to_thread.run_sync(_refuse_scope_columns, target)
        await anyio.to_thread.run_sync(create)
    except BaseException:
        if not made:  # a job made is the folder's owner now
            shutil.rmtree(folder, ignore_errors=True)
        raise
    job = made[0]
    if svc.runner is not None:
        svc.runner.wake()
    return _status(job)


def _sees_all(key: ApiKey) -> bool:
    return "admin" in key.scopes


def _job(svc: Service, job_id: str, key: ApiKey) -> JobInfo:
    """The job, when this key made it (an admin key sees every job); 404 otherwise, so a key
    cannot learn which other jobs exist."""
    try:
        job = svc.jobs.get(job_id)
    except LookupError:
        raise ApiError(404, f"no job {job_id!r}") from None
    if not _sees_all(key) and job.params.get("owner") != key.id:
        raise ApiError(404, f"no job {job_id!r}")
    return job


class JobList(BaseModel):
    jobs: list[JobStatus] = Field(description="Newest first")
    next: str | None = Field(description="Pass as ?before= for the next page (null: no more)")


@router.get("/v1/jobs", response_model=JobList, response_model_by_alias=True,
            responses=responses(401, 403, 404, 422, 429, 503),
            summary="The jobs this key made (an admin key: every job), newest first")
def list_jobs(
    svc: ServiceDep, key: JobsKey,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    before: Annotated[str | None, Query(max_length=100,
                                        description="A job id: list the jobs made before it")]
    = None,
    state: Literal["queued", "running", "done", "failed", "cancelled"] | None = None,
) -> JobList:
    if before is not None:
        _job(svc, before, key)  # 404 for a cursor this key cannot see
    owner = None if _sees_all(key) else key.id
    found = svc.jobs.find(owner=owner, before=before, state=state, limit=limit + 1)
    page = found[:limit]
    return JobList(jobs=[_status(j) for j in page],
                   next=page[-1].id if len(found) > limit else None)


_R = responses(401, 403, 404, 429, 503)


@router.get("/v1/jobs/{job_id}", response_model=JobStatus, response_model_by_alias=True,
            responses=_R, summary="A job's state, rows done and counts so far")
def get_job(job_id: str, svc: ServiceDep, _key: JobsKey) -> JobStatus:
    return _status(_job(svc, job_id, _key))


@router.get("/v1/jobs/{job_id}/results", response_class=FileResponse,
            responses={**responses(401, 403, 404, 409, 429, 500, 503),
                       200: {"content": {"text/csv": {"schema": {"type": "string"}}},
                             "description": "Every input row, in order, with its verdict"}},
            summary="The verdict file (CSV), once the job is done")
def job_results(job_id: str, svc: ServiceDep, _key: JobsKey) -> FileResponse:
    """409 until the job is done; 500 when it is done but its results file is gone or is not
    the one its audit record describes (SHA-256)."""
    job = _job(svc, job_id, _key)
    if job.state != "done":
        raise ApiError(409, f"job {job.id} is {job.state}; results are ready when it is done")
    try:
        path = svc.jobs.results_file(job)
    except JobIntegrityError as exc:
        log.error("job %s is done but %s", job.id, exc)
        raise ApiError(500, f"job {job.id} is done but {exc} on the server; nothing was "
                       "changed (an operator must restore it)") from None
    return FileResponse(path, media_type="text/csv", filename=f"dncguard-{job.id}.csv")


@router.get("/v1/jobs/{job_id}/summary", responses=responses(401, 403, 404, 429, 500, 503),
            summary="Counts by decision, reason, list and state (partial while running)")
def job_summary(job_id: str, svc: ServiceDep, _key: JobsKey) -> dict[str, Any]:
    """500 when a committed chunk's summary is missing: a partial summary would undercount
    (the job fails at its end and a resume scrubs that chunk again)."""
    job = _job(svc, job_id, _key)
    try:
        return svc.jobs.summary(job)
    except JobIntegrityError as exc:
        log.error("job %s: no summary: %s", job.id, exc)
        raise ApiError(500, f"job {job.id}: {exc}; the summary cannot be given") from None


@router.delete("/v1/jobs/{job_id}", response_model=JobStatus, response_model_by_alias=True,
               responses=_R, summary="Cancel a job (takes effect at the next chunk)")
def cancel_job(job_id: str, svc: ServiceDep, _key: JobsKey) -> JobStatus:
    """A queued, running or failed job is cancelled: its upload and verdict rows are removed
    (its partial summary stays) and it cannot be resumed. A done or cancelled job is left as
    it is."""
    _job(svc, job_id, _key)
    return _status(svc.jobs.cancel(job_id))


@router.post("/v1/jobs/{job_id}/cancel", response_model=JobStatus, response_model_by_alias=True,
             responses=_R, summary="Cancel a job (same as DELETE)")
def cancel_job_post(job_id: str, svc: ServiceDep, _key: JobsKey) -> JobStatus:
    return cancel_job(job_id, svc, _key)


@router.post("/v1/jobs/{job_id}/resume", response_model=JobStatus, response_model_by_alias=True,
             responses=_R, summary="Queue a failed job again (it resumes where it stopped)")
def resume_job(job_id: str, svc: ServiceDep, _key: JobsKey) -> JobStatus:
    """A job that failed (e.g. its audit record could not be written) goes back to the queue
    and resumes at its first uncommitted chunk; 409 unless it failed."""
    job = _job(svc, job_id, _key)
    if job.state != "failed":
        raise ApiError(409, f"job {job.id} is {job.state}; only a failed job resumes")
    return _status(svc.jobs.resume(job_id))
