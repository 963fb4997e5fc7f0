"""What the console answers when the framework, or anything under a page, fails or refuses.

Without this, a request to a console path that failed before the console's code ran (an
unknown query parameter refused by the service's ``strict_query``, a multipart body that
cannot be read, a validation error) or inside it (the database away) was answered the API's
JSON, without the console's Content-Security-Policy and other headers. :class:`ConsoleRoute`
is the console router's route class: it answers every failure of a console route itself, as
the console's error page (or the API's JSON error, for a request that wants JSON), with its
headers. :func:`unmatched` answers the console paths no route takes (404, or 405 naming the
methods the path takes). Nothing here reads the session: the database may be what failed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.routing import APIRoute
from sqlalchemy.exc import DataError, SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.routing import BaseRoute, Match

from ...errors import DncGuardError
from .._errors import ApiError, status_of
from ._pages import headers, refusal

log = logging.getLogger("dncguard.server")

Handler = Callable[[Request], Coroutine[Any, Any, Response]]

#: Every method a console path may be asked with (the unmatched ones are answered here).
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
TITLES = {400: "Request not understood", 401: "Not signed in", 403: "Not allowed",
          404: "Not found", 405: "Method not allowed", 409: "Conflict",
          413: "Too large", 415: "Unsupported file", 422: "Request not understood",
          429: "Too many requests", 503: "Service unavailable"}
#: Said on a failed check: no verdict was given, so none may be read as callable.
CHECK_NOTE = (" No verdict was given: the number was not verified, so it must not be "
              "called.")


class ConsoleRoute(APIRoute):
    """A console route whose failures, the framework's included, are console answers."""

    def get_route_handler(self) -> Handler:
        handler = super().get_route_handler()

        async def console_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except ClientDisconnect:
                raise  # nobody to answer
            except Exception as exc:
                return failure(request, exc)

        return console_handler


def failure(request: Request, exc: Exception) -> Response:
    """The console's answer to ``exc``, raised by the framework or under a console page."""
    status, message, more = _described(exc)
    if request.url.path == "/console/check" and request.method == "POST":
        message += CHECK_NOTE
    title = TITLES.get(status, "Something went wrong")
    code = exc.code if isinstance(exc, ApiError) else None
    return refusal(request, None, status, title, message, code=code, more=more)


def _described(exc: Exception) -> tuple[int, str, dict[str, str]]:
    """(status, message, headers) for ``exc``: the statuses the API answers for it."""
    if isinstance(exc, RequestValidationError):
        fields = [f"{'.'.join(str(x) for x in e.get('loc', ())) or 'request'}: "
                  f"{e.get('msg', '')}" for e in exc.errors()]
        return 422, f"The request was not understood ({'; '.join(fields[:5])}).", {}
    if isinstance(exc, ApiError):
        return exc.status, _sentence(exc.message), dict(exc.headers or {})
    if isinstance(exc, StarletteHTTPException):
        if exc.status_code == 400:  # a form body that cannot be read (as the API: 422)
            return 422, f"The form could not be read: {_sentence(str(exc.detail))}", {}
        return exc.status_code, _sentence(str(exc.detail)), dict(exc.headers or {})
    if isinstance(exc, DataError):  # the database is up and refused a value: the form's
        log.warning("console: the database refused a value: %s", type(exc.orig).__name__)
        return 422, ("The database refused a value of the form "
                     f"({type(exc.orig).__name__}); nothing was changed."), {}
    if isinstance(exc, SQLAlchemyError):
        log.warning("console: database unavailable: %s", type(exc).__name__)
        return 503, (f"The database could not be reached ({type(exc).__name__}). Try again "
                     "shortly; reload the page then to see what was saved."), {
            "Retry-After": "5"}
    if isinstance(exc, DncGuardError):
        status = status_of(exc)
        if status >= 500:
            log.warning("console: %s answered %d: %s", type(exc).__name__, status,
                        str(exc)[:200])
        return status, _sentence(str(exc)), {}
    log.error("console: unhandled %s", type(exc).__name__, exc_info=exc)
    return 500, ("An internal error stopped this request; it was logged for an operator. "
                 "Reload the page to see what was saved."), {}


def _sentence(text: str) -> str:
    text = text.strip() or "refused"
    return text[0].upper() + text[1:] + ("" if text.endswith(".") else ".")


def _methods(routes: list[BaseRoute], scope: dict[str, Any]) -> list[str]:
    """The methods the console's routes take at this path."""
    found: set[str] = set()
    for route in routes:
        if isinstance(route, APIRoute):  # not the routes that answer unmatched paths
            match, _ = route.matches({**scope, "method": "GET"})
            if match is not Match.NONE:
                found.update(route.methods or ())
    return sorted(found)


def unmatched(request: Request, routes: list[BaseRoute]) -> Response:
    """A console path and method none of ``routes`` takes: 404, or 405 with the methods it
    takes (a path with a trailing slash is sent to the one without, as the framework
    would)."""
    path = request.url.path
    if path.endswith("/") and _methods(routes, {**request.scope, "path": path.rstrip("/")}):
        return headers(RedirectResponse(path.rstrip("/"), status_code=307))
    allowed = _methods(routes, dict(request.scope))
    if allowed:
        return refusal(request, None, 405, TITLES[405],
                       f"{request.method} is not taken here (only {', '.join(allowed)}).",
                       more={"Allow": ", ".join(allowed)})
    return refusal(request, None, 404, TITLES[404], "There is no console page here.")


__all__ = ["ConsoleRoute", "failure", "unmatched"]
