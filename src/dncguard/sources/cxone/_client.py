"""The CXone Admin API client: password-grant auth, tenant discovery, the DNC-group calls.

Auth (reference section 1.1): ``POST {issuer}/auth/token`` with the app's client id and secret
in HTTP Basic and ``grant_type=password`` with the access key ID and secret; the tenant id is
the ``tenantId`` claim of the ``id_token``; the API host is ``api_endpoint`` of
``{issuer}/.well-known/cxone-configuration?tenantId=``. API calls go to
``{api_endpoint}/inContactAPI/services/{version}/...`` with ``Authorization: Bearer`` and
``Accept: application/json``.

A sign-in or discovery answer is read streamed up to :data:`TOKEN_ANSWER_BYTES` (as http-batch
bounds its answers): a token answer is a few kilobytes, so a larger one is refused with a
:class:`~dncguard.errors.SourceError` naming the bound, never read whole into memory.

The :class:`TokenCache` refreshes before expiry (refresh-token grant first, then a new password
grant), makes concurrent callers share one token request, and is told about a 401 so the
request is repeated once with a new token.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..._lazy import lazy_import
from ...errors import ConfigError, SourceError
from ...phones import mask, mask_numbers
from ..remote.resilience import (
    AdaptiveLimiter,
    Clock,
    Resilient,
    Sleep,
    UnreadableResponse,
    error_message,
    strict_json,
)
from .settings import CxoneSettings

if TYPE_CHECKING:
    import httpx
else:
    httpx = lazy_import("httpx", globals(), "httpx")

log = logging.getLogger("dncguard.sources.cxone")

#: The most bytes of a sign-in (``/auth/token``) or discovery answer read, decoded. A token
#: answer (an access token, a refresh token and an ``id_token``, each a JWT of a kilobyte or
#: two) is a few kilobytes; beyond this bound a 200 answer is refused (the reading stops
#: there), and an error status's body is dropped (its status still counts).
TOKEN_ANSWER_BYTES = 65_536


def jwt_claims(token: str) -> dict[str, Any]:
    """The payload of a JWT, unverified (the token comes straight from the issuer over TLS)."""
    try:
        payload = token.split(".")[1]
        payload += "=" * (-len(payload) % 4)
        claims = json.loads(base64.urlsafe_b64decode(payload))
    except (IndexError, ValueError) as exc:
        raise SourceError("CXone id_token is not a readable JWT", source="cxone") from exc
    if not isinstance(claims, dict):
        raise SourceError("CXone id_token has no claims", source="cxone")
    return claims


class _RedactNumbers(logging.Filter):
    """httpx logs request URLs at INFO; the search URL carries a phone number: mask it."""

    _pattern = re.compile(r"(phoneNumber=%?2?B?)(\d+)(\d{4})")

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "phoneNumber=" in message:
            record.msg = self._pattern.sub(lambda m: m.group(1) + m.group(2) + "****", message)
            record.args = ()
        return True


logging.getLogger("httpx").addFilter(_RedactNumbers())


@dataclass
class Token:
    access_token: str = field(repr=False)
    expires_at: float  # on the cache's clock
    refresh_token: str | None = field(repr=False)
    tenant_id: str | None
    lifetime: float = 3600.0


class TokenCache:
    """One access token shared by every caller; refreshed ``margin`` seconds before expiry."""

    def __init__(self, cx: CxoneSettings, resilient: Resilient, *, clock: Clock | None = None
                 ) -> None:
        self.cx = cx
        self.resilient = resilient
        self.clock: Clock = clock or time.monotonic
        self.token: Token | None = None
        self.tenant_id: str | None = cx.tenant_id
        self._lock = asyncio.Lock()
        self.grants: list[str] = []  # grant types used, in order (tests, diagnostics)

    def _basic(self) -> str:
        assert self.cx.client_id and self.cx.client_secret
        raw = f"{self.cx.client_id}:{self.cx.client_secret.get_secret_value()}"
        return "Basic " + base64.b64encode(raw.encode()).decode()

    def _fresh(self, token: Token | None) -> bool:
        return token is not None and self.clock() < token.expires_at - min(
            self.cx.token_margin_seconds, token.lifetime / 2)

    async def get(self) -> str:
        token = self.token
        if token is not None and self._fresh(token):
            return token.access_token
        async with self._lock:
            if self.token is not None and self._fresh(self.token):
                return self.token.access_token
            old = self.token
            new: Token | None = None
            if old is not None and old.refresh_token:
                try:
                    new = await self._grant({"grant_type": "refresh_token",
                                             "refresh_token": old.refresh_token})
                except SourceError as exc:
                    log.info("CXone refresh failed (%s); signing in again", exc)
            if new is None:
                self.cx.require()
                assert self.cx.access_key_id and self.cx.access_key_secret
                new = await self._grant({
                    "grant_type": "password", "username": self.cx.access_key_id,
                    "password": self.cx.access_key_secret.get_secret_value()})
            self.token = new
            return new.access_token

    async def invalidate(self, used: str | None = None) -> None:
        """Forget the access token (after a 401); keeps the refresh token."""
        async with self._lock:
            if self.token is not None and (used is None or self.token.access_token == used):
                self.token.expires_at = float("-inf")

    async def _grant(self, form: dict[str, str]) -> Token:
        grant = form["grant_type"]
        url = f"{self.cx.issuer}/auth/token"

        async def make() -> httpx.Request:
            return self.resilient.http.build_request(
                "POST", url, data=form,
                headers={"Authorization": self._basic(), "Accept": "application/json"})

        def parse(resp: httpx.Response) -> Token:
            if resp.status_code != 200:
                body: Any = None
                try:
                    body = resp.json()
                except ValueError:
                    pass
                code = body.get("error") if isinstance(body, dict) else None
                raise SourceError(f"CXone sign-in ({grant} grant) refused: "
                                  f"{error_message(resp)}" + (f" ({code})" if code else ""),
                                  source="cxone")
            data = strict_json(resp)
            access = data["access_token"]
            expires_in = float(data.get("expires_in") or 3600)
            tenant = None
            if data.get("id_token"):
                tenant = jwt_claims(str(data["id_token"])).get("tenantId")
            return Token(str(access), self.clock() + expires_in, data.get("refresh_token"),
                         str(tenant) if tenant else None, expires_in)

        self.grants.append(grant)
        token = await self.resilient.send(make, parse, what=f"sign-in ({grant} grant)",
                                          max_body=TOKEN_ANSWER_BYTES)
        if token.tenant_id and not self.cx.tenant_id:
            self.tenant_id = token.tenant_id
        return token


class CxoneClient:
    """Async client of the CXone Admin API's DNC calls. Use as ``async with``."""

    def __init__(
        self,
        cx: CxoneSettings,
        *,
        http: httpx.AsyncClient | None = None,
        sleep: Sleep | None = None,
        clock: Clock | None = None,
        rng: random.Random | None = None,
    ) -> None:
        cx.require()
        self.cx = cx
        self._own_http = http is None
        self.http = http or httpx.AsyncClient(timeout=cx.timeout_seconds)
        self.resilient = Resilient(
            self.http, cx.policy(), sleep=sleep, rng=rng, clock=clock, source="cxone",
            limiter=AdaptiveLimiter(cx.concurrency, 1, cx.max_concurrency, sleep=sleep,
                                    clock=clock))
        # Sign-in has its own resilience (and limiter): it runs inside API request slots.
        self.auth = Resilient(self.http, cx.policy(), sleep=sleep, rng=rng, clock=clock,
                              source="cxone", limiter=AdaptiveLimiter(2, 1, 4))
        self.tokens = TokenCache(cx, self.auth, clock=clock)
        self._api: str | None = cx.api_endpoint
        self._discover_lock = asyncio.Lock()

    async def __aenter__(self) -> CxoneClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._own_http:
            await self.http.aclose()

    # -- discovery --------------------------------------------------------------------------
    async def discover(self) -> str:
        """The API host of the tenant (from cxone-configuration), cached."""
        if self._api:
            return self._api
        async with self._discover_lock:
            if self._api:
                return self._api
            await self.tokens.get()
            tenant = self.tokens.tenant_id
            if not tenant:
                raise SourceError("CXone id_token has no tenantId; set DNCGUARD_CXONE_TENANT_ID "
                                  "or DNCGUARD_CXONE_API_ENDPOINT", source="cxone")
            url = f"{self.cx.issuer}/.well-known/cxone-configuration"

            async def make() -> httpx.Request:
                return self.http.build_request("GET", url, params={"tenantId": tenant},
                                               headers={"Accept": "application/json"})

            def parse(resp: httpx.Response) -> str:
                if resp.status_code != 200:
                    raise SourceError(f"CXone discovery failed: {error_message(resp)}",
                                      source="cxone")
                endpoint = strict_json(resp)["api_endpoint"]
                if not isinstance(endpoint, str) or not endpoint.startswith("http"):
                    raise ValueError("api_endpoint")
                return endpoint.rstrip("/")

            self._api = await self.resilient.send(make, parse, what="discovery",
                                                  max_body=TOKEN_ANSWER_BYTES)
            return self._api

    async def openid_configuration(self) -> dict[str, Any]:
        url = f"{self.cx.issuer}/.well-known/openid-configuration"

        async def make() -> httpx.Request:
            return self.http.build_request("GET", url, headers={"Accept": "application/json"})

        def parse(resp: httpx.Response) -> dict[str, Any]:
            if resp.status_code != 200:
                raise SourceError(f"CXone OIDC discovery failed: {error_message(resp)}",
                                  source="cxone")
            data = strict_json(resp)
            if not isinstance(data, dict):
                raise ValueError("not an object")
            return data

        return await self.resilient.send(make, parse, what="OIDC discovery",
                                         max_body=TOKEN_ANSWER_BYTES)

    # -- requests ---------------------------------------------------------------------------
    async def api(self, method: str, path: str, *, params: dict[str, Any] | None = None,
                  body: Any = None, what: str | None = None,
                  ok: Callable[[int], bool] | None = None) -> Any:
        """One Admin API call; returns the JSON body, or None for ``204 No Content`` (and for
        a status ``ok`` accepts). The body is read strictly (an object that repeats a key is a
        :class:`SourceError`); another 2xx answer with an empty body is unreadable: retried,
        then a :class:`SourceError` (read as "nothing", it would look like an empty group or
        search)."""
        base = await self.discover()
        url = f"{base}/inContactAPI/services/{self.cx.api_version}/{path.lstrip('/')}"
        used: dict[str, str] = {}

        async def make() -> httpx.Request:
            token = await self.tokens.get()
            used["token"] = token
            return self.http.build_request(
                method, url, params=params, json=body,
                headers={"Authorization": f"Bearer {token}", "Accept": "application/json"})

        async def unauthorized(_req: httpx.Request) -> None:
            await self.tokens.invalidate(used.get("token"))

        def parse(resp: httpx.Response) -> Any:
            if resp.status_code == 204:
                return None
            if 200 <= resp.status_code < 300:
                if not resp.content.strip():
                    raise UnreadableResponse(f"HTTP {resp.status_code} with an empty body")
                return strict_json(resp)
            if ok is not None and ok(resp.status_code):
                return None
            raise SourceError(f"CXone {what or method + ' ' + path} failed: "
                              f"{error_message(resp)}", source="cxone")

        return await self.resilient.send(make, parse, on_unauthorized=unauthorized,
                                         what=what or f"{method} {path}")

    # -- DNC groups -------------------------------------------------------------------------
    async def groups(self) -> list[dict[str, Any]]:
        """Every DNC group (``{resultSet: {totalGroups, dncGroups: [...]}}``; no content:
        none). A body of another shape (e.g. a 200 carrying an error) is refused: read as "no
        groups", it would turn every synced group off. So is a list that holds fewer (or
        more) groups than its ``totalGroups`` says: a truncated list would turn the groups
        left out off. (An empty list, or no content, is read as no groups; whoever acts on a
        group missing from it confirms with :meth:`group` first.)"""
        data = await self.api("GET", "dnc-groups", what="list DNC groups")
        if data is None:
            return []
        rs = _field(data, "resultSet", dict, "group list")
        listed = _field(rs, "dncGroups", list, "group list")
        groups = [g for g in listed if isinstance(g, dict)]
        for g in groups:
            group_on(g)  # flags that are not JSON booleans refuse the whole list
        total = rs.get("totalGroups")
        if total is not None:
            if isinstance(total, bool) or not isinstance(total, int) or total < 0:
                raise SourceError(f"CXone returned a malformed group count ({total!r})",
                                  source="cxone")
            if total != len(groups) or len(groups) != len(listed):
                raise SourceError(
                    f"CXone group list is incomplete: it says {total} groups but lists "
                    f"{len(groups)}; refused (no group is turned on or off by it)",
                    source="cxone")
        return groups

    async def group(self, group_id: str) -> dict[str, Any] | None:
        """One DNC group (``GET /dnc-groups/{id}``), or None when CXone answers 404 (the
        group does not exist). Any other answer without the group (no content, an empty or
        malformed body, another group) is a :class:`SourceError`: it does not show the group
        is gone."""
        gone: list[int] = []

        def missing(status: int) -> bool:
            if status == 404:
                gone.append(status)
                return True
            return False

        data = await self.api("GET", f"dnc-groups/{group_id}", what=f"DNC group {group_id}",
                              ok=missing)
        if gone:
            return None
        if data is None:
            raise SourceError(f"CXone sent no content for DNC group {group_id}", source="cxone")
        found = _field(_field(data, "resultSet", dict, "group"), "dncGroups", list, "group")
        for g in found:
            if isinstance(g, dict) and str(g.get("dncGroupId")) == str(group_id):
                group_on(g)
                return g
        raise SourceError(f"CXone answered for DNC group {group_id} without that group",
                          source="cxone")

    async def skills(self, group_id: str, kind: str = "scrubbed") -> list[dict[str, Any]]:
        """A group's scrubbed (or contributing) skills, every page."""
        key = f"{kind}Skills"
        out: list[dict[str, Any]] = []
        skip, top = 0, 100
        while True:
            data = await self.api("GET", f"dnc-groups/{group_id}/{kind}-skills",
                                  params={"skip": skip, "top": top}, what=f"{kind} skills")
            if data is None:  # no content: no skills
                return out
            page = _field(data, key, list, f"{kind} skills")
            out.extend(page)
            total = _field(data, "totalRecords", int, f"{kind} skills")
            skip += len(page)
            if not page or skip >= total:
                return out

    async def records_page(self, group_id: str, skip: int, top: int,
                           order_by: str | None = None
                           ) -> tuple[int, list[dict[str, Any]]] | None:
        """(totalRecords, the page's records), or None for ``204 No Content``, which says
        nothing the caller may take for an empty group unless the group itself says it holds
        no valid record (see ``CxoneSync``)."""
        params: dict[str, Any] = {"skip": skip, "top": top}
        if order_by:
            params["orderBy"] = order_by
        data = await self.api("GET", f"dnc-groups/{group_id}/records", params=params,
                              what="DNC records")
        if data is None:
            return None
        rs = _field(data, "resultSet", dict, "records")
        records = _objects(_field(rs, "dncRecords", list, "records"), "records")
        total = _field(rs, "totalRecords", int, "records")
        if isinstance(total, bool) or total < 0:
            raise SourceError(f"CXone returned a malformed record count ({total!r})",
                              source="cxone")
        return total, records

    async def search(self, digits: str) -> list[dict[str, Any]]:
        """Every group record of one number (``POST /dnc-groups/search?phoneNumber=``)."""
        data = await self.api("POST", "dnc-groups/search", params={"phoneNumber": digits},
                              what=f"search {mask('+' + digits)}")
        if data is None:  # no content: the number is in no group
            return []
        return _objects(_field(data, "searchResults", list, "search results"),
                        "search results")

    async def write_records(self, group_id: str, records: list[dict[str, Any]], *,
                            expire: bool = False) -> dict[str, Any]:
        """Add (POST) or expire (DELETE) records; returns ``{errorCount, recordResults}``."""
        data = await self.api("DELETE" if expire else "POST", f"dnc-groups/{group_id}/records",
                              body={"dncGroupRecords": records},
                              what="expire records" if expire else "add records")
        if isinstance(data, dict) and isinstance(data.get("resultSet"), dict):
            data = data["resultSet"]
        if not isinstance(data, dict) or not isinstance(data.get("recordResults"), list):
            raise SourceError("CXone write returned no per-record results", source="cxone")
        return data


def group_on(group: dict[str, Any]) -> tuple[bool, bool]:
    """(active, removed) of a DNC group: ``isActive`` (absent: true) and not ``isRemoved``
    (absent: false). Each must be a JSON boolean: anything else (the string ``"false"``, a
    number, null) is a :class:`SourceError`, since read by truthiness ``"false"`` would
    turn a group off (or on)."""
    flags = []
    for key, default in (("isActive", True), ("isRemoved", False)):
        value = group.get(key, default)
        if not isinstance(value, bool):
            raise SourceError(f"CXone returned a malformed group list: DNC group "
                              f"{group.get('dncGroupId')} has {key} {str(value)[:20]!r}, not "
                              "true or false; refused (no group is turned on or off by it)",
                              source="cxone")
        flags.append(value)
    active, removed = flags
    return active and not removed, removed


def _field(data: Any, key: str, kind: type, what: str) -> Any:
    """``data[key]``, which the API documents as a ``kind``; anything else (a body that is not
    that answer, such as a 200 carrying an error) is a :class:`SourceError`, never read as
    empty."""
    value = data.get(key) if isinstance(data, dict) else None
    if not isinstance(value, kind):
        error = data.get("error") if isinstance(data, dict) else None
        said = f": {mask_numbers(str(error)[:200])}" if error else ""
        raise SourceError(f"CXone returned malformed {what} (no {key}){said}", source="cxone")
    return value


def _objects(items: list[Any], what: str) -> list[dict[str, Any]]:
    """``items``, every one an object as the API documents; an entry of another kind (a
    string, a number, null) is a :class:`SourceError`: left out, the answer would be read as
    complete without it."""
    odd = sum(1 for item in items if not isinstance(item, dict))
    if odd:
        raise SourceError(f"CXone returned malformed {what}: {odd} of {len(items)} entries "
                          "are not objects", source="cxone")
    return items


def not_configured_message(cx: CxoneSettings) -> str:
    try:
        cx.require()
    except ConfigError as exc:
        return str(exc)
    return ""
