"""JSON errors for every failure: ``{"error": {"status", "code", "message", "fields"}}``."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import AfterValidator, AwareDatetime, BaseModel, BeforeValidator, Field
from sqlalchemy.exc import DataError, SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from ..errors import DncGuardError
from ._metrics import log


class FieldError(BaseModel):
    field: str = Field(description="Where: body.phone, query.at, path.phone, ...")
    message: str


class ErrorDetail(BaseModel):
    status: int
    code: str = Field(description="unauthorized, forbidden, not_found, too_large, "
                      "validation_error, rate_limited, unavailable, conflict, ...")
    message: str
    fields: list[FieldError] = Field(default_factory=list)


class ErrorBody(BaseModel):
    error: ErrorDetail


_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
          405: "method_not_allowed", 409: "conflict", 413: "too_large", 415: "unsupported_media",
          422: "validation_error", 429: "rate_limited", 500: "internal_error",
          503: "unavailable"}


class ApiError(Exception):
    def __init__(self, status: int, message: str, *, code: str | None = None,
                 fields: list[FieldError] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code or _CODES.get(status, "error")
        self.fields = fields or []
        self.headers = headers


def error_response(status: int, message: str, *, code: str | None = None,
                   fields: list[FieldError] | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    body = ErrorBody(error=ErrorDetail(status=status, code=code or _CODES.get(status, "error"),
                                       message=message, fields=fields or []))
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for these error statuses. A route that answers 401 reads a key, so it
    also answers 400 (the ``Authorization`` header given more than once)."""
    wanted = {*statuses, *((400,) if 401 in statuses else ())}
    return {s: {"model": ErrorBody, "description": _CODES.get(s, "error")}
            for s in sorted(wanted)}


def _allowed(request: Request) -> list[str]:
    """Every method some route accepts at this path (Starlette names only the first route's)."""
    methods: set[str] = set()
    for route in request.app.routes:
        match, _ = route.matches({**request.scope, "method": "GET"})
        if match is not Match.NONE:
            methods.update(getattr(route, "methods", None) or ())
    return sorted(methods)


def _field_errors(exc: RequestValidationError) -> list[FieldError]:
    out = []
    for err in exc.errors():
        loc = [str(x) for x in err.get("loc", ())]
        out.append(FieldError(field=".".join(loc) or "body", message=str(err.get("msg", ""))))
    return out


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api(_: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.message, code=exc.code, fields=exc.fields,
                              headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        fields = _field_errors(exc)
        first = f"{fields[0].field}: {fields[0].message}" if fields else "invalid request"
        return error_response(422, f"invalid request ({first})", fields=fields)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = dict(exc.headers or {})
        if exc.status_code == 400:  # a body that is not JSON (or not UTF-8) at all
            return error_response(422, f"invalid request body: {exc.detail}",
                                  fields=[FieldError(field="body", message=str(exc.detail))])
        if exc.status_code == 405:
            headers["Allow"] = ", ".join(_allowed(request))
        return error_response(exc.status_code, str(exc.detail), headers=headers)

    @app.exception_handler(DncGuardError)
    async def _ours(_: Request, exc: DncGuardError) -> JSONResponse:
        status = status_of(exc)
        if status >= 500:
            log.warning("%s answered %d: %s", type(exc).__name__, status, str(exc)[:200])
        field = getattr(exc, "field", None)
        fields = [FieldError(field=str(field), message=str(exc))] if field else []
        return error_response(status, str(exc), fields=fields)

    @app.exception_handler(RecursionError)
    async def _deep(_: Request, exc: RecursionError) -> JSONResponse:
        return error_response(422, "invalid request body: nested too deeply",
                              fields=[FieldError(field="body", message="nested too deeply")])

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled %s", type(exc).__name__, exc_info=exc)
        return error_response(500, "internal error; nothing was checked or changed")

    @app.exception_handler(DataError)
    async def _refused(_: Request, exc: DataError) -> JSONResponse:
        # the database refused a value of the request (it is up): the client's to fix
        log.warning("database refused a value: %s", type(exc.orig).__name__)
        return error_response(422, "a value of the request was refused by the database "
                              f"({type(exc.orig).__name__}); nothing was changed")

    @app.exception_handler(SQLAlchemyError)
    async def _db(_: Request, exc: SQLAlchemyError) -> JSONResponse:
        log.warning("database unavailable: %s", type(exc).__name__)
        return error_response(503, f"the database is unavailable ({type(exc).__name__}); "
                              "nothing was checked or changed", headers={"Retry-After": "5"})


#: The status of each error class of :mod:`dncguard.errors` that reaches the service
#: unhandled by its route (the most specific class wins).
STATUS: dict[str, int] = {
    "ContextError": 422, "InputError": 422, "ListError": 422, "ApiKeyError": 422,
    "SnapshotIntegrityError": 503, "SourceError": 503, "SyncFailed": 503, "AuditError": 503,
    "VerdictFileError": 503, "ChainBroken": 409,
    "MigrationError": 503, "RulesDataError": 500, "ConfigError": 500, "DncGuardError": 500,
}


def status_of(exc: DncGuardError) -> int:
    """The status for an error of ours: its class's, else its nearest base class's."""
    for cls in type(exc).__mro__:
        if cls.__name__ in STATUS:
            return STATUS[cls.__name__]
    return 500


def _iso_text(value: object) -> object:
    """Dial times and ranges are ISO 8601 text (no Unix numbers coerced silently)."""
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _ISO.match(value):
        raise ValueError("expected an ISO 8601 instant with an offset, e.g. 2026-11-26T15:00:00Z")
    return value


_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")

def _in_range(value: datetime) -> datetime:
    """Refuse instants whose UTC form overflows (year 1 with a positive offset, 9999-12-31)."""
    try:
        value.astimezone(UTC)
    except OverflowError:
        raise ValueError("instant out of range") from None
    return value


#: An ISO 8601 instant with a UTC offset, given as text.
Instant = Annotated[AwareDatetime, BeforeValidator(_iso_text), AfterValidator(_in_range)]
