"""The console's pages: server-rendered HTML over the same library calls as the API.

Every page is a thin view: readiness is ``/readyz`` (:func:`..routes.ops.readyz`), lists are
:func:`..routes.lists.list_statuses`, a check is the request of ``POST /v1/check`` answered by
the service's :class:`..realtime.Realtime`, opt-outs go through
:mod:`dncguard.optouts`, a scrub is a ``/v1/jobs`` job run by ``svc.jobs`` and the job
runner, history is :func:`dncguard.audit.search.search_number` and verification
:meth:`AuditLog.verify`.

Phone numbers travel only in POST bodies (never in a URL, so never in an access log line).
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import PurePath
from typing import Any, TypeVar

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError
from starlette.datastructures import FormData, UploadFile
from starlette.routing import Route

from ... import audit
from ...engine.scrubber import Scrubber
from ...errors import DncGuardError, ListError
from ...lists.store import ListStore
from ...models import ReasonCode, Verdict
from ...optouts import add_optout, entry_status, expiry_after, not_read_by, remove_optout
from ...store import utcnow
from .._context import context_or_422
from .._deps import Service, not_utf8_field
from .._errors import ApiError
from .._jobs import JobInfo, JobIntegrityError
from ..routes.check import CheckRequest, check_context
from ..routes.dnc import OptOut
from ..routes.jobs import scope_column_problem
from ..routes.lists import list_statuses
from ..routes.ops import Health, readyz
from . import _csrf as csrf
from ._failures import METHODS, ConsoleRoute, unmatched
from ._inputs import count_rows, file_name_problem, looks_like_key, sent_as_files
from ._pages import HERE, refusal, wants_json
from ._pages import headers as _headers
from ._pages import page as _page
from .sessions import Session, SessionStore, may_sign_in

log = logging.getLogger("dncguard.server")

STATIC = HERE / "static"
COOKIE = "dncguard_console"
#: Content types of the files under static/ (nothing else is served from there).
STATIC_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                ".svg": "image/svg+xml"}
OPTOUT_KINDS = ("internal", "litigator")
MAX_SHOWN_ENTRIES = 500

#: Every failure of a console route, the framework's included, is a console answer
router = APIRouter(prefix="/console", include_in_schema=False, route_class=ConsoleRoute)

T = TypeVar("T")


def _svc(request: Request) -> Service:
    svc: Service = request.app.state.service
    return svc


async def _run(fn: Callable[..., T], *args: Any) -> T:
    return await anyio.to_thread.run_sync(fn, *args)


def _to_signin() -> Response:
    return _headers(RedirectResponse("/console/signin", status_code=303))


async def _session(request: Request) -> Session | None:
    if _svc(request).no_auth:
        return None  # see _gate: no sessions without keys
    return await _run(SessionStore(_svc(request).engine).get, request.cookies.get(COOKIE))


async def _gate(request: Request) -> Session | Response:
    """The live session, or the response to send instead: sign in (a request that wants
    JSON, the job page's progress poll, is answered 401 ``session_expired``: a redirect to
    the sign-in page would be read as a page it cannot parse, and polled for ever)."""
    svc = _svc(request)
    if svc.no_auth:
        return _headers(Response("The console needs API keys: it is off under --no-auth.",
                                 status_code=404, media_type="text/plain"))
    sess = await _session(request)
    if sess is not None:
        return sess
    if wants_json(request):
        return refusal(request, None, 401, "Not signed in", "the console session has "
                       "expired or ended; sign in again", code="session_expired")
    return _to_signin()


async def _post(request: Request, fields: tuple[str, ...] = (), files: tuple[str, ...] = (),
                *, limited: bool = True) -> tuple[Session, FormData] | Response:
    """A signed-in form post: the session, and its form once its CSRF token matched (403) and
    it holds only ``fields`` (and the token), each at most once, and none but ``files`` as a
    file part (422 naming the others: a field the page does not read, or cannot read as
    text, would judge as if it had said nothing).

    ``limited`` (every post but sign-out): the post takes a token from its key's rate limit,
    the bucket the key's API requests take from (``rate_per_second``, ``rate_burst``), before
    its form is read; none left is 429 with ``Retry-After``, and nothing is done."""
    gate = await _gate(request)
    if isinstance(gate, Response):
        return gate
    if limited:
        wait = _svc(request).buckets.take(gate.key.id)
        if wait:
            return _too_many(request, gate, wait)
    bad = await _not_utf8_form(request)
    if bad is not None:
        return _page(request, "error.html", gate, status=422, title="Form not understood",
                     message=bad)
    form = await request.form(max_files=1, max_fields=50)
    if not gate.csrf_ok(_text(form, csrf.FIELD)):
        return _forbidden(request, gate, "The form's security token is missing or does not "
                          "match this session. Reload the page and try again.")
    problems = form_problems(form, fields, files)
    if problems:
        return _page(request, "error.html", gate, status=422, title="Form not understood",
                     message="; ".join(problems))
    return gate, form


async def _not_utf8_form(request: Request) -> str | None:
    """Why a URL-encoded form is refused: a field whose name or value is not UTF-8 once
    decoded (the framework reads each bad byte as U+FFFD: an opt-out's reason went into the
    audit trail altered); None when every one is, or the form is not URL-encoded. (Its
    body is read once; the form is then parsed from it.)"""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/x-www-form-urlencoded":
        return None
    bad = not_utf8_field(await request.body())
    return None if bad is None else f"field {bad!r} is not valid UTF-8 once decoded"


def form_problems(form: FormData, fields: tuple[str, ...],
                  files: tuple[str, ...] = ()) -> list[str]:
    """What a posted form holds beyond ``fields`` and the CSRF token: an unknown field, one
    given twice, or one sent as a file part that is not one of ``files`` (its text would be
    read as absent)."""
    keys = [k for k, _ in form.multi_items()]
    allowed = {*fields, csrf.FIELD}
    unknown = sorted({k for k in keys if k not in allowed})
    twice = sorted({k for k in keys if k in allowed and keys.count(k) > 1})
    as_files = [k for k in sent_as_files(form, files) if k in allowed]
    return ([f"unknown field{'s' if len(unknown) > 1 else ''} "
             f"{', '.join(repr(k[:40]) for k in unknown[:10])}"] if unknown else []) + (
        [f"field{'s' if len(twice) > 1 else ''} {', '.join(map(repr, twice))} given twice"]
        if twice else []) + (
        [f"field{'s' if len(as_files) > 1 else ''} {', '.join(map(repr, as_files))} sent as "
         f"a file; {'they take' if len(as_files) > 1 else 'it takes'} text"]
        if as_files else [])


def _forbidden(request: Request, sess: Session | None, why: str) -> Response:
    return refusal(request, sess, 403, "Not allowed", why)


def _text(form: FormData, name: str) -> str | None:
    value = form.get(name)
    if not isinstance(value, str):
        return None
    value = value.strip()
    return value or None


def _too_many(request: Request, sess: Session, wait: float) -> Response:
    """429: the rate limit's tokens are spent; ``wait``: seconds until the next one."""
    seconds = max(1, round(wait + 0.5))
    return refusal(request, sess, 429, "Too many requests", "Too many requests from this key; "
                   f"wait {seconds} s and try again. Nothing was checked or changed.",
                   more={"Retry-After": str(seconds)})


# -- static assets --------------------------------------------------------------------------------


@router.get("/static/{name}")
async def static(request: Request, name: str) -> Response:
    path = STATIC / name
    kind = STATIC_TYPES.get(PurePath(name).suffix)
    if kind is None or "/" in name or "\\" in name or name.startswith(".") or not path.is_file():
        return refusal(request, None, 404, "Not found", "There is no such console file.")
    response = FileResponse(path, media_type=kind)
    response.headers["Cache-Control"] = "public, max-age=3600"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


# -- sign in and out ------------------------------------------------------------------------------


def _signin_page(request: Request, status: int = 200, error: str | None = None) -> Response:
    token = csrf.new_token()
    response = _page(request, "signin.html", None, status=status, pre_token=token, error=error)
    csrf.set_pre_cookie(request, response, token)
    return response


@router.get("/signin")
async def signin_form(request: Request) -> Response:
    if _svc(request).no_auth:
        return await _gate(request)  # type: ignore[return-value]
    if await _session(request) is not None:
        return _headers(RedirectResponse("/console", status_code=303))
    return _signin_page(request)


@router.post("/signin")
async def signin(request: Request) -> Response:
    svc = _svc(request)
    if svc.no_auth:
        return await _gate(request)  # type: ignore[return-value]
    bad = await _not_utf8_form(request)
    if bad is not None:
        return _signin_page(request, 422, f"The form was not understood: {bad}.")
    form = await request.form(max_files=0, max_fields=10)
    if not csrf.pre_ok(request, form.get(csrf.FIELD)):
        return _forbidden(request, None, "The sign-in form's security token is missing or has "
                          "expired. Reload the page and sign in again.")
    ip = request.client.host if request.client else "-"
    if svc.buckets.take(f"console-signin:{ip}"):
        return _signin_page(request, 429, "Too many attempts; wait a moment and try again.")
    problems = form_problems(form, ("key",))
    if problems:
        return _signin_page(request, 422, f"The form was not understood: {'; '.join(problems)}.")
    text = _text(form, "key") or ""
    try:  # what is not of a key's form is no key: the key store is not asked about it
        key = await _run(svc.keys.verify, text) if looks_like_key(text) else None
    except Exception:
        log.warning("console sign-in: the key store is unavailable")
        return _signin_page(request, 503, "The key store is unavailable; try again shortly.")
    if key is None:
        return _signin_page(request, 401, "That key is not valid or has been revoked.")
    if not may_sign_in(key):
        return _signin_page(request, 403, "This key cannot sign in to the console: it needs "
                            f"the console or admin scope (it has: {', '.join(key.scopes)}).")
    session_id = await _run(SessionStore(svc.engine).create, key)
    log.info("console sign-in key=%s", key.id)
    response = _headers(RedirectResponse("/console", status_code=303))
    response.set_cookie(COOKIE, session_id, path="/console", httponly=True, samesite="strict",
                        secure=csrf.secure(request))
    response.delete_cookie(csrf.PRE_COOKIE, path="/console")
    return response


@router.post("/signout")
async def signout(request: Request) -> Response:
    posted = await _post(request, (), limited=False)  # signing out is never refused
    if isinstance(posted, Response):
        return posted
    await _run(SessionStore(_svc(request).engine).delete, request.cookies.get(COOKIE) or "")
    response = _headers(RedirectResponse("/console/signin", status_code=303))
    response.delete_cookie(COOKIE, path="/console", httponly=True, samesite="strict",
                           secure=csrf.secure(request))
    return response


# -- overview -------------------------------------------------------------------------------------


@router.get("")
async def overview(request: Request) -> Response:
    gate = await _gate(request)
    if isinstance(gate, Response):
        return gate
    svc = _svc(request)
    ready = await _run(readyz, svc)
    health = ready if isinstance(ready, Health) else Health.model_validate_json(ready.body)
    try:
        day, lists = await _run(list_statuses, svc)
        lists_error, stale = None, [s.name for s in lists if not s.fresh]
    except Exception as exc:
        day, lists, lists_error, stale = date.today(), [], type(exc).__name__, None
    # "registries are fresh" only where readiness requires it; else the stale are named
    return _page(request, "overview.html", gate, health=health, lists=lists, as_of=day,
                 lists_error=lists_error, stale=stale,
                 requires_fresh=svc.server.ready_requires_fresh)


# -- check a number -------------------------------------------------------------------------------

CHECK_FIELDS = ("phone", "at", "state", "zip", "campaign")


@router.get("/check")
async def check_form(request: Request) -> Response:
    gate = await _gate(request)
    if isinstance(gate, Response):
        return gate
    return _page(request, "check.html", gate, values={"campaign": "default"})


def _history(svc: Service, sess: Session, e164: str) -> dict[str, Any]:
    """The audit trail's records about the number (admin, as ``GET /v1/audit/search``)."""
    if not sess.may("admin"):
        return {"note": "History from the audit trail needs a key with the admin scope (as "
                        "GET /v1/audit/search)."}
    try:
        from ...audit.search import search_number
    except ImportError:
        return {"note": "History is not available: this version has no audit search."}
    try:
        result = search_number(audit.audit_log(svc.settings), e164, limit=50)
    except DncGuardError as exc:
        return {"note": f"History could not be searched: {exc}"}
    except SQLAlchemyError as exc:
        return {"note": f"History could not be searched: the database could not be reached "
                        f"({type(exc).__name__})."}
    return {"result": result}


def _database_failed(verdict: Verdict) -> bool:
    """The verdict was given while the database could not be read or written: the lists were
    not read (SOURCE_ERROR from the database), or its audit record was not committed."""
    return any(r.code == ReasonCode.AUDIT_UNAVAILABLE
               or (r.code == ReasonCode.SOURCE_ERROR and r.source == "database")
               for r in verdict.reasons)


@router.post("/check")
async def check(request: Request) -> Response:
    posted = await _post(request, CHECK_FIELDS)
    if isinstance(posted, Response):
        return posted
    sess, form = posted
    svc = _svc(request)
    values = {k: _text(form, k) for k in CHECK_FIELDS}

    def again(status: int, errors: list[str]) -> Response:
        return _page(request, "check.html", sess, status=status, values=values, errors=errors)

    given = {k: v for k, v in values.items() if v is not None}
    if "campaign" in form and "campaign" not in given:
        given["campaign"] = ""  # blank: refused as the API refuses it (absent: default)
    try:
        body = CheckRequest.model_validate(given)
    except ValidationError as exc:
        return again(422, [f"{'.'.join(map(str, e['loc'])) or 'form'}: {e['msg']}"
                           for e in exc.errors()])
    try:
        ctx = await _run(check_context, svc, body)  # as POST /v1/check judges the campaign
    except ApiError as exc:
        return again(422, _form_errors(exc))
    verdict: Verdict = await svc.realtime.check(body.phone, ctx, body.defaults(),
                                                fixed_at=body.at is not None,
                                                who=f"console:{sess.key.name}")
    if _database_failed(verdict):  # error, never callable: a 503, said as such
        response = _page(request, "check.html", sess, status=503, values=values,
                         verdict=verdict, unavailable=True, history={
                             "note": "History was not searched: the database could not be "
                                     "reached."})
        response.headers["Retry-After"] = "5"
        return response
    # counted (metrics, hourly counts) by the real-time checker, as an API check is
    history = await _run(_history, svc, sess, verdict.e164) if verdict.e164 else {
        "note": "Not a valid number: it has no history."}
    return _page(request, "check.html", sess, values=values, verdict=verdict, history=history)


def _form_errors(exc: ApiError) -> list[str]:
    """An API refusal's fields as the form's (``body.campaign`` is ``form.campaign``)."""
    return [f"form.{f.field.removeprefix('body.')}: {f.message}" for f in exc.fields] \
        or [exc.message]


# -- opt-outs -------------------------------------------------------------------------------------


def _optout_state(svc: Service) -> dict[str, Any]:
    store = ListStore(svc.settings, svc.engine)
    lists = [i for i in store.all() if i.kind in OPTOUT_KINDS]
    names = [i.name for i in lists]
    if "internal" not in names:
        names.insert(0, "internal")  # made on first use
    entries: list[dict[str, Any]] = []
    now = utcnow()
    for info in lists:
        entries.extend({**e, "status": entry_status(e, now)} for e in store.entries(info.name))
    entries.sort(key=lambda e: e["added_at"] or datetime.min.replace(tzinfo=UTC), reverse=True)
    return {"list_names": names, "entries": entries[:MAX_SHOWN_ENTRIES],
            "more": max(0, len(entries) - MAX_SHOWN_ENTRIES)}


async def _optouts_page(request: Request, sess: Session, status: int = 200,
                        **context: Any) -> Response:
    state = await _run(_optout_state, _svc(request))
    return _page(request, "optouts.html", sess, status=status, **state, **context)


@router.get("/optouts")
async def optouts(request: Request) -> Response:
    gate = await _gate(request)
    if isinstance(gate, Response):
        return gate
    return await _optouts_page(request, gate)


def _expiry(value: str | None) -> datetime | None:
    """The form's last day of the opt-out, as ``dncguard dnc add --expires`` reads it."""
    return None if value is None else expiry_after(date.fromisoformat(value))


def _optout_problem(phone: str, reason: str | None, list_name: str) -> str | None:
    """What ``POST /v1/dnc``'s model (:class:`..routes.dnc.OptOut`) refuses in an opt-out
    form's number, reason and list, one line (``reason: contains the control character
    U+0000; remove it``), or None. Both forms are read by it: ``DELETE /v1/dnc/{phone}`` takes
    the same number and reason (a list name the store holds always matches its pattern), and
    what the API refuses must not be stored through the console."""
    try:
        OptOut.model_validate({"phone": phone, "reason": reason, "list": list_name})
    except ValidationError as exc:
        return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'form'}: "
                         f"{str(e['msg']).removeprefix('Value error, ')}"
                         for e in exc.errors())
    return None


@router.post("/optouts/add")
async def optout_add(request: Request) -> Response:
    posted = await _post(request, ("phone", "reason", "expires", "list"))
    if isinstance(posted, Response):
        return posted
    sess, form = posted
    if not sess.may("dnc:write"):
        return _forbidden(request, sess, "Changing opt-outs needs a key with the dnc:write "
                          "scope (as POST /v1/dnc).")
    phone, reason = _text(form, "phone"), _text(form, "reason")
    list_name = _text(form, "list") or "internal"
    values = {"phone": phone, "reason": reason, "expires": _text(form, "expires"),
              "list": list_name}
    if not phone:
        return await _optouts_page(request, sess, 422, add_values=values,
                                   add_error="Enter a phone number.")
    problem = _optout_problem(phone, reason, list_name)
    if problem:
        return await _optouts_page(request, sess, 422, add_values=values, add_error=problem)
    try:
        expires = _expiry(values["expires"])
    except ValueError:
        return await _optouts_page(request, sess, 422, add_values=values,
                                   add_error="The expiry is not a date (YYYY-MM-DD).")
    svc = _svc(request)
    store = ListStore(svc.settings, svc.engine)

    def add() -> str:
        return add_optout(store, phone, list_name=list_name, reason=reason, expires=expires,
                          who=f"console:{sess.key.name}")

    try:
        e164 = await _run(add)
    except ListError as exc:
        return await _optouts_page(request, sess, 422, add_values=values, add_error=str(exc))
    unread = not_read_by(svc.settings, list_name)
    message = f"{e164} is on the list {list_name} now."
    if unread:  # as POST /v1/dnc's notReadBy says it
        message += (f" Campaigns that do not read {list_name}, so do not see it: "
                    f"{', '.join(unread)}.")
    return await _optouts_page(request, sess, 201, message=message)


@router.post("/optouts/remove")
async def optout_remove(request: Request) -> Response:
    posted = await _post(request, ("phone", "reason", "list"))
    if isinstance(posted, Response):
        return posted
    sess, form = posted
    if not sess.may("dnc:write"):
        return _forbidden(request, sess, "Changing opt-outs needs a key with the dnc:write "
                          "scope (as DELETE /v1/dnc/{phone}).")
    phone, reason = _text(form, "phone"), _text(form, "reason")
    list_name = _text(form, "list") or "internal"
    values = {"phone": phone, "reason": reason, "list": list_name}
    if not phone or not reason:
        return await _optouts_page(request, sess, 422, remove_values=values,
                                   remove_error="Enter the number and why it is removed.")
    problem = _optout_problem(phone, reason, list_name)
    if problem:
        return await _optouts_page(request, sess, 422, remove_values=values,
                                   remove_error=problem)
    svc = _svc(request)
    store = ListStore(svc.settings, svc.engine)

    def remove() -> tuple[str, bool]:
        store.get(list_name)
        return remove_optout(store, phone, list_name=list_name, who=f"console:{sess.key.name}",
                             why=reason)

    try:
        e164, was = await _run(remove)
    except ListError as exc:
        return await _optouts_page(request, sess, 422, remove_values=values,
                                   remove_error=str(exc))
    message = (f"{e164} was removed from {list_name}." if was
               else f"{e164} was not on {list_name}; nothing changed.")
    return await _optouts_page(request, sess, message=message)


# -- scrub a file ---------------------------------------------------------------------------------

SIDE = "console.json"  # beside a job's files: the row count of its input, for progress


def _recent_jobs(svc: Service, sess: Session) -> list[JobInfo]:
    owner = None if "admin" in sess.key.scopes else sess.key.id
    return svc.jobs.find(owner=owner, limit=10)


async def _scrub_page(request: Request, sess: Session, status: int = 200,
                      **context: Any) -> Response:
    svc = _svc(request)
    jobs = await _run(_recent_jobs, svc, sess) if sess.may("jobs") else []
    context.setdefault("values", {"campaign": "default"})
    return _page(request, "scrub.html", sess, status=status, jobs=jobs, **context)


@router.get("/scrub")
async def scrub_form(request: Request) -> Response:
    gate = await _gate(request)
    if isinstance(gate, Response):
        return gate
    return await _scrub_page(request, gate)


@router.post("/scrub")
async def scrub(request: Request) -> Response:
    """A ``/v1/jobs`` job, made as ``create_job`` makes one (same params, same runner)."""
    posted = await _post(request, ("at", "campaign", "file"), files=("file",))
    if isinstance(posted, Response):
        return posted
    sess, form = posted
    if not sess.may("jobs"):
        return _forbidden(request, sess, "Scrubbing a file needs a key with the jobs scope "
                          "(as POST /v1/jobs).")
    svc = _svc(request)
    values = {"at": _text(form, "at"), "campaign": _text(form, "campaign")}
    if "campaign" in form and values["campaign"] is None:  # absent: default, as the API
        return await _scrub_page(request, sess, 422, values=values, errors=[
            "campaign: enter a campaign profile name (default, or a configured one)."])
    upload = form.get("file")
    if not isinstance(upload, UploadFile) or not upload.filename:
        return await _scrub_page(request, sess, 422, values=values,
                                 errors=["Choose a file to scrub."])
    bad_name = file_name_problem(upload.filename)
    if bad_name is not None:
        return await _scrub_page(request, sess, 422, values=values, errors=[bad_name])
    name = PurePath(upload.filename.replace("\\", "/")).name
    suffix = PurePath(name).suffix.lower()
    fmt = {".csv": "csv", ".txt": "csv", ".parquet": "parquet"}.get(suffix)
    if fmt is None:
        return await _scrub_page(request, sess, 415, values=values, errors=[
            f"{name}: only CSV (.csv, .txt) and Parquet (.parquet) files can be scrubbed here."])
    try:
        at = CheckRequest.model_validate({"phone": "-", "at": values["at"]}).at \
            if values["at"] else None
    except ValidationError as exc:
        return await _scrub_page(request, sess, 422, values=values, errors=[
            f"dial time: {e['msg']}" for e in exc.errors()])
    campaign = values["campaign"] or "default"
    try:
        context_or_422(Scrubber(svc.settings), at=at, campaign=campaign, purpose=None,
                       call_type=None, where="form")
    except ApiError as exc:
        return await _scrub_page(request, sess, 422, values=values, errors=[exc.message])
    job_id = svc.jobs.new_id()
    folder = svc.jobs.folder(job_id)
    target = folder / f"input.{fmt}"

    def store() -> JobInfo:
        folder.mkdir(parents=True, exist_ok=True)
        upload.file.seek(0)
        with target.open("wb") as fh:
            shutil.copyfileobj(upload.file, fh, 1 << 20)
        if target.stat().st_size == 0:
            raise ValueError("the file is empty")
        refused = scope_column_problem(target)  # as POST /v1/jobs refuses it
        if refused is not None:
            raise ValueError(refused)
        (folder / SIDE).write_text(json.dumps({"rows": count_rows(target)}), "utf-8")
        params: dict[str, Any] = {
            "at": (at or utcnow()).isoformat(), "campaign": campaign, "purpose": None,
            "call_type": None, "phone_column": None, "defaults": {}, "owner": sess.key.id}
        return svc.jobs.create(job_id, input_name=name, input_format=fmt, params=params,
                               who=f"console:{sess.key.name}")

    try:
        job = await _run(store)
    except ValueError as exc:
        shutil.rmtree(folder, ignore_errors=True)
        return await _scrub_page(request, sess, 422, values=values, errors=[f"{name}: {exc}"])
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    if svc.runner is not None:
        svc.runner.wake()
    return _headers(RedirectResponse(f"/console/scrub/{job.id}", status_code=303))


def _own_job(svc: Service, sess: Session, job_id: str) -> JobInfo | None:
    """The job when this key made it (admin: any job), as ``/v1/jobs/{id}`` decides."""
    try:
        job = svc.jobs.get(job_id)
    except LookupError:
        return None
    if "admin" not in sess.key.scopes and job.params.get("owner") != sess.key.id:
        return None
    return job


def _progress(svc: Service, job: JobInfo) -> dict[str, Any]:
    try:
        side = json.loads((svc.jobs.folder(job.id) / SIDE).read_text("utf-8"))
        rows = side.get("rows")
    except (OSError, ValueError):
        rows = None
    return {"id": job.id, "state": job.state, "rowsDone": job.rows_done, "rows": rows,
            "counts": job.counts, "error": job.error,
            "results": f"/console/scrub/{job.id}/results" if job.state == "done" else None}


async def _job_gate(request: Request, job_id: str) -> tuple[Session, JobInfo] | Response:
    gate = await _gate(request)
    if isinstance(gate, Response):
        return gate
    if not gate.may("jobs"):  # (JSON for the progress poll, as every answer to it)
        return _forbidden(request, gate, "Jobs need a key with the jobs scope.")
    job = await _run(_own_job, _svc(request), gate, job_id)
    if job is None:
        return refusal(request, gate, 404, "No such job",
                       "There is no job with that id that this key can see.")
    return gate, job


@router.get("/scrub/{job_id}")
async def scrub_job(request: Request, job_id: str) -> Response:
    got = await _job_gate(request, job_id)
    if isinstance(got, Response):
        return got
    sess, job = got
    return _page(request, "job.html", sess, job=job, progress=_progress(_svc(request), job))


@router.get("/scrub/{job_id}/status")
async def scrub_status(request: Request, job_id: str) -> Response:
    got = await _job_gate(request, job_id)
    if isinstance(got, Response):
        return got
    return _headers(JSONResponse(_progress(_svc(request), got[1])))


@router.get("/scrub/{job_id}/results")
async def scrub_results(request: Request, job_id: str) -> Response:
    got = await _job_gate(request, job_id)
    if isinstance(got, Response):
        return got
    sess, job = got
    if job.state != "done":
        return _page(request, "error.html", sess, status=409, title="Not ready",
                     message=f"Job {job.id} is {job.state}; results are ready when it is done.")
    try:  # as GET /v1/jobs/{id}/results answers it: only the file its audit record names
        path = await _run(_svc(request).jobs.results_file, job)
    except JobIntegrityError as exc:
        log.error("job %s is done but %s; an operator must restore it", job.id, exc)
        return _page(request, "error.html", sess, status=500, title="Results missing",
                     message=f"Job {job.id} is done but {exc} on the server; nothing was "
                     "changed (an operator must restore it).")
    return _headers(FileResponse(path, media_type="text/csv",
                                 filename=f"dncguard-{job.id}.csv"))


# -- audit ----------------------------------------------------------------------------------------


@router.get("/audit")
async def audit_page(request: Request) -> Response:
    gate = await _gate(request)
    if isinstance(gate, Response):
        return gate
    return _page(request, "audit.html", gate)


@router.post("/audit/verify")
async def audit_verify(request: Request) -> Response:
    posted = await _post(request, ())
    if isinstance(posted, Response):
        return posted
    sess, _ = posted
    settings = _svc(request).settings
    try:
        result = await _run(lambda: audit.audit_log(settings).verify())
        error = None
    except Exception as exc:  # shown, not hidden: a verification that could not run
        result, error = None, f"{type(exc).__name__}: {exc}"
    return _page(request, "audit.html", sess, result=result, error=error,
                 verified_at=utcnow())


# -- what no page takes ---------------------------------------------------------------------------


async def _unmatched(request: Request) -> Response:
    return unmatched(request, router.routes)


# plain routes (no operation: the service's query check does not apply), after every page
router.routes.extend([
    Route("/console/{rest:path}", _unmatched, methods=METHODS, include_in_schema=False),
    Route("/console", _unmatched, methods=[m for m in METHODS if m != "GET"],
          include_in_schema=False)])
