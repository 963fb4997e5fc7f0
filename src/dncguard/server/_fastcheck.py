"""``POST /v1/check`` without the framework's per-request machinery, when nothing is unusual.

A dialer's pre-dial check is the one request that arrives thousands of times a second, and
routing, middleware, dependency injection and response models cost more than the check
itself (see ``bench/serve_bench.py``). :class:`FastCheck` sits in front of the whole
application (:class:`ServiceApp`) and answers that request itself when everything about it
is ordinary: a JSON body within the size limit that the request model accepts, a bearer key
verified within ``key_cache_seconds`` that has the ``check`` scope, a known campaign, a
token in the rate limit, no query string. It answers with :func:`answer_check`, the function
the FastAPI route calls, and records the request's metrics and access-log line as the
middleware does (:func:`~.metrics.record_request`).

Anything else (a body the model refuses, an unknown or uncached key, a missing scope, an
unknown campaign, a rate limit hit, a query string, another content type, a body over the
limit however it is framed, an ``Authorization``, ``Content-Type`` or ``Content-Length``
header given twice, a body in which a key could be given twice, ``--no-auth``, any exception
before the answer is decided, such as the database away while no checks are prepared yet) is
handed to the application with the body replayed, so every refusal and failure is answered
by the route and the application's handlers, word for word. Nothing the fast path does before
handing over has a side effect (the rate-limit token is taken last, and a refused take takes
nothing).
"""

from __future__ import annotations

import asyncio
import logging
import time
from functools import partial
from typing import TYPE_CHECKING

import anyio
from fastapi import FastAPI
from fastapi.security.utils import get_authorization_scheme_param
from sqlalchemy.exc import SQLAlchemyError

from ._errors import error_response
from ._metrics import ASGIApp, Message, Receive, Scope, Send, record_request
from .keys import ApiKey, hash_key
from .routes.check import CheckRequest, answer_check, check_context, router

if TYPE_CHECKING:
    from ._deps import Service

log = logging.getLogger("dncguard.server")

PATH = "/v1/check"
_JSON = (b"application/json", b"application/json; charset=utf-8",
         b"application/json;charset=utf-8")


class FastCheck:
    """The fast path of ``POST /v1/check`` (see the module docstring)."""

    def __init__(self, app: ASGIApp, service: Service) -> None:
        self.app = app
        self.svc = service
        #: the route the framework would have matched (the metrics label it)
        self.route = next(r for r in router.routes if getattr(r, "path", None) == PATH
                          and "POST" in getattr(r, "methods", ()))
        self.limit = service.server.max_body_bytes
        self._verifying: dict[str, asyncio.Future[ApiKey | None]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] != "http" or scope.get("path") != PATH
                or scope.get("method") != "POST" or scope.get("query_string")
                or self.svc.no_auth):
            await self.app(scope, receive, send)
            return
        token = ctype = None
        length = -1  # none given
        # a header given twice is handed over (so the application picks, and the answer is
        # the route's): the framework reads the first, the last one must not decide here
        for name, value in scope.get("headers", ()):
            if name == b"authorization":
                if token is not None:
                    token = None
                    break
                token = value
            elif name == b"content-type":
                if ctype is not None:
                    ctype = None
                    break
                ctype = value.lower()
            elif name == b"content-length":
                if length >= 0 or not value.isdigit():
                    length = self.limit + 1
                    break
                length = int(value)
        if ctype not in _JSON or token is None or length > self.limit:
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            part = message.get("body", b"")
            chunks.append(part)
            size += len(part)
            more = bool(message.get("more_body"))
            if size > self.limit:  # the body limit answers (it counts what it replays)
                break
        body = b"".join(chunks)
        # over the limit, however it came (a chunked body may end in the same receive)
        if size > self.limit or not await self._answer(scope, send, body, token):
            await self.app(scope, _replay(body, more, receive), send)

    async def _answer(self, scope: Scope, send: Send, body: bytes, token: bytes) -> bool:
        """Answer an ordinary request (True); False: nothing was done or sent.

        Any exception before the rate-limit token is taken hands the request over too, not
        only the model's refusals: the fast path sits outside the framework's error handling,
        so an unexpected one (the database away while no checks are prepared yet) would
        otherwise reach the server, which answers a plain-text 500 and logs a traceback; the
        route meets the same failure and answers it as its handlers do (a JSON 503)."""
        start = time.perf_counter()
        svc = self.svc
        # read as FastAPI's HTTPBearer reads it for the route (the key stripped of spaces)
        scheme, text = get_authorization_scheme_param(token.decode("latin-1"))
        if scheme.lower() != "bearer" or not text:
            return False
        try:
            key = await self._key(text)
            if key is None or not key.allows("check"):
                return False
            request = CheckRequest.model_validate_json(body)
            if not _keys_once(body, request.model_fields_set):
                return False
            ctx = check_context(svc, request)
        except Exception:  # refused (the model, the campaign) or unexpected: the route's
            return False
        if svc.buckets.take(key.id):
            return False
        scope.setdefault("state", {})["key_id"] = key.id
        scope["route"] = self.route  # the metrics label the route has
        status = 200
        try:
            data = await answer_check(svc, request, ctx, key)
        except Exception as exc:  # as the application's own handler answers it
            log.error("unhandled %s", type(exc).__name__, exc_info=exc)
            status = 500
            data = bytes(error_response(
                500, "internal error; nothing was checked or changed").body)
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-length", str(len(data)).encode()),
                                (b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": data})
        record_request(svc.metrics, scope, status, time.perf_counter() - start)
        return True

    async def _key(self, text: str) -> ApiKey | None:
        """The verified key of a bearer token, from the cache when it is fresh. A token whose
        verification is more than half of ``key_cache_seconds`` old is verified again in the
        background while the cached answer is still used, so a busy dialer's key never
        expires under it; one verification per token at a time, however many requests carry
        it. A token not cached at all waits for its verification (None: refused or the
        database could not answer: the route answers that)."""
        keys = self.svc.keys
        hit = keys.cached(text)
        if hit is not None and not keys.due(text):
            return hit[0]
        digest = hash_key(text)
        task = self._verifying.get(digest)
        if task is None:
            task = asyncio.ensure_future(anyio.to_thread.run_sync(
                partial(keys.verify, text, refresh=True)))
            self._verifying[digest] = task
            task.add_done_callback(partial(self._verified, digest))
        if hit is not None:
            return hit[0]
        try:
            return await asyncio.shield(task)
        except SQLAlchemyError:
            return None

    def _verified(self, digest: str, task: asyncio.Future[ApiKey | None]) -> None:
        self._verifying.pop(digest, None)
        if not task.cancelled() and task.exception() is not None:
            log.warning("API key verification failed: %s", type(task.exception()).__name__)


class ServiceApp(FastAPI):
    """The service's FastAPI application, with :class:`FastCheck` in front of its stack."""

    def build_middleware_stack(self) -> ASGIApp:
        return FastCheck(super().build_middleware_stack(), self.state.service)


#: Each field of the request model as it is written as a key (without escapes).
_QUOTED = {name: f'"{name}"'.encode() for name in CheckRequest.model_fields}
# what _keys_once stands on: a body's keys are the model's field names, nothing else
assert CheckRequest.model_config.get("extra") == "forbid"
assert all(f.alias is None and f.validation_alias is None
           for f in CheckRequest.model_fields.values())


def _keys_once(body: bytes, fields: set[str]) -> bool:
    """True when no key can be in ``body`` twice (the model's parser keeps the last one):
    ``body`` was accepted by the request model, so its keys are exactly ``fields`` (unknown
    ones are refused); with no backslash in it, a key can only be written as its quoted name,
    which appears once for each. False (hand over: the route finds a key given twice, or that
    there is none) for a body with an escape, or a value that quotes a field's name. A few
    byte scans, no second parse."""
    if 0x5C in body:  # a backslash (an int: one memchr, a tenth of a bytes needle's cost)
        return False
    for name in fields:
        if body.count(_QUOTED[name]) != 1:
            return False
    return True


def _replay(body: bytes, more: bool, receive: Receive) -> Receive:
    """A receive that hands back ``body`` first, then (when the read stopped early) the rest
    of the request."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": more}
        return await receive()

    return replay


__all__ = ["PATH", "FastCheck", "ServiceApp"]
