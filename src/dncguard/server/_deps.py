"""What every route shares: the service state, authentication, scopes and rate limits."""

from __future__ import annotations

import threading
import time
import types
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, Union, get_args, get_origin
from urllib.parse import unquote_to_bytes

import anyio
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from ..config import Settings
from ..store import utcnow
from ._checker import CheckerProvider
from ._errors import ApiError, FieldError
from ._jobs import JobRunner, JobStore
from ._metrics import DecisionCounter, Metrics
from ._realtime import Realtime
from .keys import ApiKey, KeyStore
from .settings import ServerSettings


class TokenBuckets:
    """One token bucket per API key: ``rate`` tokens a second, at most ``burst``."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = float(burst)
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, who: str) -> float:
        """0 when allowed, else the seconds until a token is available."""
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(who, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if tokens >= 1:
                self._buckets[who] = (tokens - 1, now)
                return 0.0
            self._buckets[who] = (tokens, now)
            return (1 - tokens) / self.rate


@dataclass
class Service:
    settings: Settings
    server: ServerSettings
    engine: Engine
    keys: KeyStore
    provider: CheckerProvider
    counter: DecisionCounter
    metrics: Metrics
    jobs: JobStore
    runner: JobRunner | None
    buckets: TokenBuckets
    no_auth: bool
    realtime: Realtime
    started_at: Any = field(default_factory=utcnow)


async def service(request: Request) -> Service:
    svc: Service = request.app.state.service
    return svc


ServiceDep = Annotated[Service, Depends(service)]

_bearer = HTTPBearer(auto_error=False, description="An API key: `dncguard keys create`")
#: The bearer credentials of a request, read by FastAPI's ``HTTPBearer`` (the scheme, and the
#: key with the spaces around it stripped): every route that reads a key reads it this way.
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
ANONYMOUS = ApiKey(id="anonymous", name="no-auth", scopes=("admin",), created_at=utcnow(),
                   created_by=None, revoked_at=None)


def _admit(request: Request, svc: Service, key: ApiKey | None, scope: str) -> ApiKey:
    """Scope and rate limit for a verified key (``None``: refused)."""
    if svc.no_auth:
        key = ANONYMOUS
        who = f"ip:{request.client.host if request.client else '-'}"
    else:
        if key is None:
            raise ApiError(401, "invalid or revoked API key",
                           headers={"WWW-Authenticate": "Bearer"})
        who = key.id
    request.state.key_id = key.id
    if not key.allows(scope):
        raise ApiError(403, f"this key lacks the {scope!r} scope "
                       f"(it has: {', '.join(key.scopes)})")
    wait = svc.buckets.take(who)
    if wait:
        raise ApiError(429, "rate limit exceeded; slow down",
                       headers={"Retry-After": str(max(1, round(wait + 0.5)))})
    return key


def _given_once(request: Request) -> None:
    """400 when the request gives the ``Authorization`` header more than once: the framework
    reads the first copy, and which key is meant must not depend on the order they came in."""
    count = sum(1 for name, _ in request.scope.get("headers", ())
                if name.lower() == b"authorization")
    if count > 1:
        raise ApiError(400, f"the Authorization header is given {count} times; send it once")


def _presented(credentials: HTTPAuthorizationCredentials | None) -> str:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise ApiError(401, "an API key is required: Authorization: Bearer <key>",
                       headers={"WWW-Authenticate": "Bearer"})
    return credentials.credentials


def _unavailable(exc: SQLAlchemyError) -> ApiError:
    return ApiError(503, "the key store is unavailable; try again", headers={"Retry-After": "5"})


def require(scope: str) -> Callable[..., Any]:
    """A (synchronous) dependency that authenticates the caller, checks ``scope`` and the
    rate limit; also callable directly from a worker thread."""

    def dependency(request: Request, svc: ServiceDep, credentials: Credentials) -> ApiKey:
        if svc.no_auth:
            return _admit(request, svc, None, scope)
        _given_once(request)
        text = _presented(credentials)
        try:
            found = svc.keys.verify(text)
        except SQLAlchemyError as exc:
            raise _unavailable(exc) from exc
        return _admit(request, svc, found, scope)

    dependency.__name__ = f"require_{scope.replace(':', '_')}"
    return dependency


def require_async(scope: str) -> Callable[..., Any]:
    """:func:`require` on the event loop: a key verified within ``key_cache_seconds`` costs
    no thread hand-off; only a lookup in the database runs in a worker thread."""

    async def dependency(request: Request, svc: ServiceDep, credentials: Credentials
                         ) -> ApiKey:
        if svc.no_auth:
            return _admit(request, svc, None, scope)
        _given_once(request)
        text = _presented(credentials)
        hit = svc.keys.cached(text)
        if hit is not None:
            return _admit(request, svc, hit[0], scope)
        try:
            found = await anyio.to_thread.run_sync(svc.keys.verify, text)
        except SQLAlchemyError as exc:
            raise _unavailable(exc) from exc
        return _admit(request, svc, found, scope)

    dependency.__name__ = f"require_{scope.replace(':', '_')}"
    return dependency


CheckKey = Annotated[ApiKey, Depends(require_async("check"))]
JobsKey = Annotated[ApiKey, Depends(require_async("jobs"))]
DncKey = Annotated[ApiKey, Depends(require_async("dnc:write"))]
AdminKey = Annotated[ApiKey, Depends(require_async("admin"))]


def _takes_many(annotation: Any) -> bool:
    """Whether a parameter's annotation is a list (or tuple, set), alone or in a union: the
    framework then reads every value given for it."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _takes_many(get_args(annotation)[0])
    if origin is Union or origin is types.UnionType:
        return any(_takes_many(a) for a in get_args(annotation))
    return origin in (list, tuple, set, frozenset) or annotation in (list, tuple, set, frozenset)


def not_utf8_field(raw: bytes) -> str | None:
    """The first field of a query string or URL-encoded form body whose name or value is not
    UTF-8 once its %-escapes (and ``+`` for a space) are decoded, or holds a byte outside
    ASCII that is not %-escaped (which the framework reads as Latin-1), as the framework
    names it (bad bytes shown as U+FFFD; ``?`` when the name itself cannot be shown); None
    when every one is."""
    if not raw or (b"%" not in raw and raw.isascii()):
        return None
    for piece in raw.split(b"&"):
        name, _, value = (unquote_to_bytes(part.replace(b"+", b" "))
                          for part in piece.partition(b"="))
        try:
            name.decode("utf-8")
            value.decode("utf-8")
        except UnicodeDecodeError:
            return name.decode("utf-8", "replace")[:40] or "?"
        if not piece.isascii():
            return name.decode("utf-8", "replace")[:40] or "?"
    return None


def _query_names(route: Any) -> tuple[set[str], set[str]] | None:
    """The query parameters an operation takes, and those of them declared as a list (the
    framework reads every value of those, and only the last one of the others); cached on
    the route. None for a route without a dependant (not an operation)."""
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return None
    names: tuple[set[str], set[str]] | None = getattr(route, "_dncguard_query", None)
    if names is None:
        known: set[str] = set()
        lists: set[str] = set()
        todo = [dependant]
        while todo:
            dep = todo.pop()
            for param in dep.query_params:
                known.add(param.alias)
                if _takes_many(param.field_info.annotation):
                    lists.add(param.alias)
            todo.extend(dep.dependencies)
        names = (known, lists)
        route._dncguard_query = names
    return names


async def strict_query(request: Request) -> None:
    """422 for query parameters the operation does not take (typos are not silently ignored),
    for one given more than once that it does not take as a list (the framework would
    read the last copy, so ``?list=nope&list=internal`` acted on ``internal``), and for a
    name or value that is not UTF-8 once its %-escapes are decoded (the framework would
    read each bad byte as U+FFFD: an opt-out's ``reason`` went into the audit trail
    altered)."""
    bad = not_utf8_field(request.scope.get("query_string", b""))
    if bad is not None:
        raise ApiError(422, f"invalid request (query.{bad}: not valid UTF-8)",
                       fields=[FieldError(field=f"query.{bad}",
                                          message="not valid UTF-8 once decoded")])
    names = _query_names(request.scope.get("route"))
    if names is None:
        return
    known, lists = names
    unknown = sorted({k for k in request.query_params if k not in known})
    if unknown:
        raise ApiError(422, f"unknown query parameter(s): {', '.join(unknown)}",
                       fields=[FieldError(field=f"query.{k}", message="not a parameter of this "
                                          "operation") for k in unknown[:20]])
    counts = Counter(k for k, _ in request.query_params.multi_items())
    repeated = [k for k, n in counts.items() if n > 1 and k not in lists]  # in request order
    if repeated:
        raise ApiError(422, f"invalid request (query.{repeated[0]}: given more than once)",
                       fields=[FieldError(field=f"query.{k}", message="given more than once")
                               for k in repeated])
