"""How the console answers: its pages and error pages, always with its security headers.

A request that asks for JSON only (the job page's progress poll sends ``Accept:
application/json``) is answered a refusal as the API words it (``{"error": {...}}``), with
the same headers; every other one gets the console's error page.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from fastapi.templating import Jinja2Templates

from .._errors import error_response
from .sessions import Session

HERE = Path(__file__).resolve().parent
#: No third-party origin, no inline script or style, no framing.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
       "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")

templates = Jinja2Templates(directory=str(HERE / "templates"))


def headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers.setdefault("Cache-Control", "no-store")
    return response


def page(request: Request, name: str, sess: Session | None, status: int = 200,
         **context: Any) -> Response:
    response = templates.TemplateResponse(request, name, {
        "sess": sess, "csrf": sess.csrf if sess else context.pop("pre_token", ""),
        "nav": name.removesuffix(".html"), **context}, status_code=status)
    return headers(response)


def wants_json(request: Request) -> bool:
    """The request asks for JSON and not for a page (the progress poll, a script)."""
    accept = request.headers.get("accept", "").lower()
    return "application/json" in accept and "text/html" not in accept


def refusal(request: Request, sess: Session | None, status: int, title: str, message: str,
            *, code: str | None = None, more: dict[str, str] | None = None) -> Response:
    """A refusal or failure: the error page (``title``, ``message``), or the API's JSON
    error when the request wants JSON; ``more``: extra headers (``Retry-After``, ``Allow``)."""
    if wants_json(request):
        response: Response = error_response(status, message, code=code)
    else:
        response = page(request, "error.html", sess, status=status, title=title,
                        message=message)
    for name, value in (more or {}).items():
        response.headers[name] = value
    return headers(response)


__all__ = ["CSP", "HERE", "headers", "page", "refusal", "templates", "wants_json"]
