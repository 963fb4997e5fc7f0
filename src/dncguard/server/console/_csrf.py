"""CSRF protection for the console's forms.

Signed-in forms carry the session's token (``console_sessions.csrf``) in a hidden ``csrf``
field, compared in constant time on every POST. The sign-in form, which has no session yet,
uses a double-submit token: a random value in a short-lived HttpOnly cookie and the same value
in the form. The cookies are also SameSite=Strict, so a cross-site form post carries neither.
"""

from __future__ import annotations

import hmac
import secrets

from fastapi import Request
from fastapi.responses import Response

FIELD = "csrf"
PRE_COOKIE = "dncguard_console_pre"
PRE_MAX_AGE = 3600


def new_token() -> str:
    return secrets.token_urlsafe(32)


def secure(request: Request) -> bool:
    """Cookies are Secure when the request came over HTTPS (uvicorn's proxy headers count)."""
    return request.url.scheme == "https"


def set_pre_cookie(request: Request, response: Response, token: str) -> None:
    response.set_cookie(PRE_COOKIE, token, max_age=PRE_MAX_AGE, path="/console",
                        httponly=True, samesite="strict", secure=secure(request))


def pre_ok(request: Request, submitted: object) -> bool:
    """The sign-in form's token matches its cookie."""
    cookie = request.cookies.get(PRE_COOKIE)
    if not cookie or not isinstance(submitted, str) or not submitted:
        return False
    return hmac.compare_digest(cookie.encode(), submitted.encode())
