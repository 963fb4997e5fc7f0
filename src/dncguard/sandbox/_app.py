"""The sandbox's HTTP surface (reference section 3), built on FastAPI."""

from __future__ import annotations

import asyncio
import base64
import re
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from ._state import Fault, SandboxState, digits_of

API = "/inContactAPI/services/{version}"
_VERSION = re.compile(r"^v(\d+)\.0$")


def _err(status: int, error: str, description: str = "") -> JSONResponse:
    body: dict[str, Any] = {"error": error}
    if description:
        body["error_description"] = description
        body["errorDescription"] = description
    return JSONResponse(body, status_code=status)


def _basic(request: Request) -> tuple[str, str] | None:
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("basic "):
        return None
    try:
        raw = base64.b64decode(header[6:]).decode()
    except ValueError:
        return None
    user, _, pw = raw.partition(":")
    return user, pw


async def _form(request: Request) -> dict[str, str]:
    """A urlencoded body (without python-multipart)."""
    parsed = parse_qs((await request.body()).decode("utf-8", "replace"), keep_blank_values=True)
    return {k: v[0] for k, v in parsed.items()}


def _eq(a: str, b: str) -> bool:
    return secrets.compare_digest(a.encode(), b.encode())


async def _trickle(response: Response, delay: float) -> StreamingResponse:
    """``response`` sent one byte at a time, ``delay`` seconds apart (no Content-Length): a
    server that keeps every read of the client within its per-read timeout."""
    chunks = getattr(response, "body_iterator", None)
    body = bytes(response.body) if chunks is None else b"".join(
        [bytes(chunk) async for chunk in chunks])

    async def drip() -> AsyncIterator[bytes]:
        for i in range(len(body)):
            yield body[i:i + 1]
            await asyncio.sleep(delay)

    headers = {k: v for k, v in response.headers.items()
               if k.lower() not in ("content-length", "transfer-encoding")}
    return StreamingResponse(drip(), status_code=response.status_code, headers=headers)


def create_app(state: SandboxState) -> FastAPI:
    app = FastAPI(title="dncguard CXone sandbox", docs_url=None, redoc_url=None,
                  openapi_url=None)
    app.state.sandbox = state
    cfg = state.config

    @app.middleware("http")
    async def faults(request: Request, call_next: Callable[[Request], Awaitable[Response]]
                     ) -> Response:
        path = request.url.path
        state.requests[f"{request.method} {path}"] += 1
        is_api = path.startswith("/inContactAPI/")
        is_batch = path == "/api/v2/dnc/contacts/batch"
        if not (is_api or is_batch):
            return await call_next(request)
        with state.lock:
            state.api_requests += 1
            n = state.api_requests
            fault = state.script.pop(0) if state.script else None
            roll = state.rng.random()
        every = cfg.expire_tokens_every
        if every and n % every == 0:
            state.revoke_tokens()
        if cfg.latency:
            await asyncio.sleep(cfg.latency)
        if fault is None:
            if roll < cfg.throttle_rate:
                fault = Fault(429, "1" if cfg.retry_after else None)
            elif roll < cfg.throttle_rate + cfg.fail_rate:
                fault = Fault(503 if n % 2 else 500)
            elif roll < cfg.throttle_rate + cfg.fail_rate + cfg.timeout_rate:
                fault = Fault(kind="timeout")
            elif roll < cfg.throttle_rate + cfg.fail_rate + cfg.timeout_rate + cfg.malformed_rate:
                fault = Fault(kind="malformed")
        if fault is not None and fault.kind == "trickle":
            return await _trickle(await call_next(request), cfg.trickle_delay)
        if fault is None:
            bucket, rate, burst = ((f"batch:{request.headers.get('authorization', '')[-12:]}",
                                    cfg.batch_rate_limit, cfg.batch_burst) if is_batch else
                                   ("api", cfg.rate_limit, cfg.burst))
            if not state.allow(bucket, rate, burst):
                state.throttled += 1
                headers = {"Retry-After": "1"} if cfg.retry_after else {}
                return JSONResponse({"error": "Too Many Requests"}, status_code=429,
                                    headers=headers)
            response = await call_next(request)
            if cid := request.headers.get("correlationid"):
                response.headers["CorrelationId"] = cid
            return response
        if fault.kind == "timeout":
            await asyncio.sleep(cfg.timeout_delay)
            return _err(504, "Gateway Timeout")
        if fault.kind == "malformed":
            return Response(b'{"resultSet": {"dncRecords": [', status_code=200,
                            media_type="application/json")
        headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
        if fault.status == 429:
            state.throttled += 1
            return JSONResponse({"error": "Too Many Requests"}, status_code=429, headers=headers)
        return JSONResponse({"error": "Service Unavailable"}, status_code=fault.status,
                            headers=headers)

    # -- discovery --------------------------------------------------------------------------
    @app.get("/.well-known/openid-configuration")
    async def openid(request: Request) -> dict[str, Any]:
        base = str(request.base_url).rstrip("/")
        return {"issuer": base, "authorization_endpoint": f"{base}/auth/authorize",
                "token_endpoint": f"{base}/auth/token",
                "end_session_endpoint": f"{base}/auth/authorize/logout",
                "jwks_uri": f"{base}/auth/jwks",
                "token_endpoint_auth_methods_supported": ["client_secret_basic"],
                "scopes_supported": ["openid"], "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "grant_types_supported": ["authorization_code", "password", "refresh_token"],
                "id_token_signing_alg_values_supported": ["RS256"]}

    @app.get("/.well-known/cxone-configuration", response_model=None)
    async def cxone_configuration(request: Request, tenantId: str = "") -> Any:
        if tenantId != cfg.tenant_id:
            return _err(404, "not_found", "unknown tenant")
        base = str(request.base_url).rstrip("/")
        return {"private": False, "ui_endpoint": base, "auth_endpoint": base,
                "api_endpoint": base, "area": "na1", "cluster": "sim1", "domain": "sim.local",
                "acdDomain": "sim.local", "uhDomain": "sim.local", "tenantId": cfg.tenant_id,
                "globaldomain": "sim.local"}

    # -- token ------------------------------------------------------------------------------
    @app.post("/auth/token", response_model=None)
    async def token(request: Request) -> Any:
        form = await _form(request)
        grant = str(form.get("grant_type", ""))
        state.grants[grant] += 1
        if grant not in ("password", "refresh_token"):
            return _err(400, "unsupported_grant_type",
                        f"grant_type {grant or '(none)'} is not supported")
        creds = _basic(request)
        if creds is None or not (_eq(creds[0], cfg.client_id)
                                 and _eq(creds[1], cfg.client_secret)):
            return _err(401, "invalid_client", "client authentication failed")
        if grant == "password":
            key, secret = str(form.get("username", "")), str(form.get("password", ""))
            expected = cfg.access_keys.get(key)
            if expected is None or not _eq(secret, expected):
                return _err(400, "invalid_grant", "invalid access key")
            return state.issue_token(key)
        refresh = str(form.get("refresh_token", ""))
        with state.lock:
            entry = state.refresh_tokens.pop(refresh, None)
        if entry is None or entry[0] <= time.monotonic():
            return _err(400, "invalid_grant", "refresh token expired or unknown")
        return state.issue_token(entry[1])

    # -- admin API --------------------------------------------------------------------------
    def guard(request: Request, version: str, *, edit: bool = False) -> JSONResponse | None:
        m = _VERSION.match(version)
        if not m or int(m.group(1)) < cfg.min_version:
            return _err(404, "not_found", f"API version {version} not found")
        auth = request.headers.get("authorization", "")
        user = state.token_user(auth[7:]) if auth.lower().startswith("bearer ") else None
        if user is None:
            return _err(401, "invalid_token", "missing, invalid or expired token")
        if "application/json" not in request.headers.get("accept", ""):
            return _err(406, "not_acceptable", "No known way to render data")
        if edit and user in cfg.read_only_keys:
            return _err(403, "forbidden", "Do Not Call List Edit permission required")
        return None

    def group_or_404(group_id: int) -> dict[str, Any] | JSONResponse:
        g = state.groups.get(group_id)
        return g if g is not None else _err(404, "not_found", f"DNC group {group_id} not found")

    @app.get(API + "/dnc-groups", response_model=None)
    async def list_groups(request: Request, version: str, updatedSince: str = "") -> Any:
        if bad := guard(request, version):
            return bad
        groups = list(state.groups.values())
        if updatedSince:
            groups = [g for g in groups if g["lastUpdateTime"] >= updatedSince]
        return {"resultSet": {"totalGroups": len(groups), "dncGroups": groups}}

    @app.post(API + "/dnc-groups", response_model=None)
    async def create_group(request: Request, version: str) -> Any:
        if bad := guard(request, version, edit=True):
            return bad
        try:
            body = await request.json()
        except ValueError:
            return _err(400, "bad_request", "invalid JSON")
        name = body.get("dncGroupName") if isinstance(body, dict) else None
        if not name or any(g["dncGroupName"] == name for g in state.groups.values()):
            return _err(400, "bad_request", "dncGroupName missing or duplicate")
        gid = state.add_group(str(name), str(body.get("dncGroupDescription") or ""))
        return {"dncGroups": [state.groups[gid]]}

    @app.get(API + "/dnc-groups/{group_id}", response_model=None)
    async def get_group(request: Request, version: str, group_id: int) -> Any:
        if bad := guard(request, version):
            return bad
        g = group_or_404(group_id)
        return g if isinstance(g, JSONResponse) else {"resultSet": {"dncGroups": [g]}}

    @app.put(API + "/dnc-groups/{group_id}", response_model=None)
    async def put_group(request: Request, version: str, group_id: int,
                        dncGroupName: str | None = None,
                        dncGroupDescription: str | None = None,
                        isActive: bool | None = None) -> Any:
        if bad := guard(request, version, edit=True):
            return bad
        g = group_or_404(group_id)
        if isinstance(g, JSONResponse):
            return g
        with state.lock:
            if dncGroupName is not None:
                g["dncGroupName"] = dncGroupName
            if dncGroupDescription is not None:
                g["dncGroupDescription"] = dncGroupDescription
            if isActive is not None:
                g["isActive"] = isActive
            state._touch(group_id)
        return {"dncGroups": [g]}

    def skills_page(request: Request, group_id: int, kind: str, skip: int, top: int) -> Any:
        g = group_or_404(group_id)
        if isinstance(g, JSONResponse):
            return g
        ids = (state.scrubbed if kind == "scrubbed" else state.contributing)[group_id]
        top = max(1, min(top, cfg.max_top))
        page = ids[skip:skip + top]
        base = str(request.url).split("?")[0]
        nxt = f"{base}?skip={skip + top}&top={top}" if skip + top < len(ids) else None
        prev = f"{base}?skip={max(0, skip - top)}&top={top}" if skip > 0 else None
        return {"totalRecords": len(ids),
                "_links": {"self": str(request.url), "next": nxt, "previous": prev},
                f"{kind}Skills": [{"skillId": s, "skillName": state.skills.get(s, f"Skill {s}")}
                                  for s in page]}

    @app.get(API + "/dnc-groups/{group_id}/scrubbed-skills", response_model=None)
    async def scrubbed(request: Request, version: str, group_id: int, skip: int = 0,
                       top: int = 100) -> Any:
        if bad := guard(request, version):
            return bad
        return skills_page(request, group_id, "scrubbed", skip, top)

    @app.get(API + "/dnc-groups/{group_id}/contributing-skills", response_model=None)
    async def contributing(request: Request, version: str, group_id: int, skip: int = 0,
                           top: int = 100) -> Any:
        if bad := guard(request, version):
            return bad
        return skills_page(request, group_id, "contributing", skip, top)

    async def assign(request: Request, version: str, group_id: int, skill_id: int, kind: str,
                     add: bool) -> Any:
        if bad := guard(request, version, edit=True):
            return bad
        g = group_or_404(group_id)
        if isinstance(g, JSONResponse):
            return g
        ids = (state.scrubbed if kind == "scrubbed" else state.contributing)[group_id]
        with state.lock:
            if add and skill_id not in ids:
                ids.append(skill_id)
            elif not add and skill_id in ids:
                ids.remove(skill_id)
        return Response(status_code=204)

    for kind in ("scrubbed", "contributing"):
        def make(kind: str, add: bool) -> Callable[..., Awaitable[Any]]:
            async def endpoint(request: Request, version: str, group_id: int,
                               skill_id: int) -> Any:
                return await assign(request, version, group_id, skill_id, kind, add)
            return endpoint
        app.post(API + f"/dnc-groups/{{group_id}}/{kind}-skills/{{skill_id}}",
                 response_model=None)(make(kind, True))
        app.delete(API + f"/dnc-groups/{{group_id}}/{kind}-skills/{{skill_id}}",
                   response_model=None)(make(kind, False))

    @app.get(API + "/dnc-groups/{group_id}/records", response_model=None)
    async def records(request: Request, version: str, group_id: int, skip: int = 0,
                      top: int | None = None, orderBy: str | None = None,
                      fields: str | None = None) -> Any:
        if bad := guard(request, version):
            return bad
        g = group_or_404(group_id)
        if isinstance(g, JSONResponse):
            return g
        top = max(1, min(top or cfg.default_top, cfg.max_top))
        try:
            ordered = state.ordered(group_id, orderBy)
        except ValueError as exc:
            return _err(400, "bad_request", str(exc))
        page = [{k: v for k, v in r.items() if not k.startswith("_")}
                for r in ordered[max(0, skip):max(0, skip) + top]]
        if fields:
            keep = {f.strip() for f in fields.split(",")}
            page = [{k: v for k, v in r.items() if k in keep} for r in page]
        return {"resultSet": {"totalRecords": len(ordered), "dncRecords": page}}

    async def write(request: Request, version: str, group_id: int, expire: bool) -> Any:
        if bad := guard(request, version, edit=True):
            return bad
        g = group_or_404(group_id)
        if isinstance(g, JSONResponse):
            return g
        try:
            body = await request.json()
        except ValueError:
            return _err(400, "bad_request", "invalid JSON")
        items = body.get("dncGroupRecords") if isinstance(body, dict) else None
        if not isinstance(items, list):
            return _err(400, "bad_request", "dncGroupRecords array required")
        if len(items) > cfg.max_write:
            return _err(400, "bad_request", f"at most {cfg.max_write} records per call")
        results: list[dict[str, Any]] = []
        errors = 0
        for item in items:
            raw = item.get("phoneNumber") if isinstance(item, dict) else None
            digits = digits_of(raw) if raw is not None else ""
            expired = item.get("expiredDate") if isinstance(item, dict) else None
            ok_date = True
            if expired:
                try:
                    datetime.fromisoformat(str(expired).replace("Z", "+00:00"))
                except ValueError:
                    ok_date = False
            error = ""
            if not 7 <= len(digits) <= 15:
                error = "Invalid phone number"
            elif not ok_date:
                error = "Invalid expiredDate"
            elif expire and not state.expire_record(group_id, digits, expired, touch=False):
                error = "Phone number not found in DNC group"
            elif not expire:
                state.add_record(group_id, digits, expired, touch=False)
            if error:
                errors += 1
            results.append({"success": not error, "error": error,
                            "formattedPhone": digits if not error else "",
                            "phoneNumber": str(raw)})
        with state.lock:
            state._touch(group_id)
        payload = {"errorCount": errors, "recordResults": results}
        return payload if expire else {"resultSet": payload}

    @app.post(API + "/dnc-groups/{group_id}/records", response_model=None)
    async def add_records(request: Request, version: str, group_id: int) -> Any:
        return await write(request, version, group_id, False)

    @app.delete(API + "/dnc-groups/{group_id}/records", response_model=None)
    async def expire_records(request: Request, version: str, group_id: int) -> Any:
        return await write(request, version, group_id, True)

    @app.post(API + "/dnc-groups/search", response_model=None)
    async def search(request: Request, version: str, phoneNumber: str | None = None
                     ) -> Any:
        if bad := guard(request, version):
            return bad
        if phoneNumber is None:
            try:
                body = await request.json()
                phoneNumber = str(body.get("phoneNumber") or "")
            except (ValueError, AttributeError):
                phoneNumber = ""
        digits = digits_of(phoneNumber)
        if not digits:
            return _err(400, "bad_request", "phoneNumber is required")
        out = []
        for gid, recs in state.records.items():
            r = recs.get(digits)
            if r is not None:
                g = state.groups[gid]
                out.append({"dncGroupId": gid, "dncGroupName": g["dncGroupName"],
                            "dncGroupDescription": g["dncGroupDescription"],
                            "formattedPhone": r["formattedPhone"],
                            "expiredDate": r["expiredDate"], "dateCollected": r["dateCollected"],
                            "lastUpdateTime": r["lastUpdateTime"]})
        return {"searchResults": out}

    # -- http-batch -------------------------------------------------------------------------
    @app.post("/oauth/token", response_model=None)
    async def batch_token(request: Request) -> Any:
        form = await _form(request)
        grant = str(form.get("grant_type", ""))
        state.grants[f"batch:{grant}"] += 1
        if grant != "client_credentials":
            return _err(400, "unsupported_grant_type", "use client_credentials")
        creds = _basic(request) or (str(form.get("client_id", "")),
                                    str(form.get("client_secret", "")))
        if not (_eq(creds[0], cfg.batch_client_id) and _eq(creds[1], cfg.batch_client_secret)):
            return _err(401, "invalid_client", "client authentication failed")
        token = "sbb." + secrets.token_urlsafe(24)
        with state.lock:
            state.batch_tokens[token] = time.monotonic() + cfg.token_lifetime
        return {"access_token": token, "token_type": "Bearer", "expires_in": cfg.token_lifetime,
                "scope": "dnc:read dnc:write outbound:read"}

    @app.post("/api/v2/dnc/contacts/batch", response_model=None)
    async def batch(request: Request) -> Any:
        auth = request.headers.get("authorization", "")
        with state.lock:
            expiry = state.batch_tokens.get(auth[7:]) if auth.lower().startswith("bearer ") \
                else None
        if expiry is None or expiry <= time.monotonic():
            return _err(401, "invalid_token", "expired or unknown token")
        try:
            body = await request.json()
        except ValueError:
            return _err(400, "bad_request", "invalid JSON")
        contacts = body.get("contacts") if isinstance(body, dict) else None
        if not isinstance(contacts, list) or not contacts:
            return _err(400, "bad_request", "contacts array required")
        if len(contacts) > cfg.batch_max_contacts:
            return _err(400, "bad_request", f"at most {cfg.batch_max_contacts} contacts")
        results = []
        hashed_cache: dict[str, set[str]] = {}
        state.batch_seen = [str(c.get("phoneNumber")) for c in contacts if isinstance(c, dict)]
        for c in contacts:
            if not isinstance(c, dict):
                return _err(400, "bad_request", "contact must be an object")
            phone = str(c.get("phoneNumber", ""))
            region = str(c.get("regionCode") or "US")
            list_ids = c.get("listIds")
            match = str(c.get("matchType") or "exact")
            if region not in ("US", "CA", "UK", "AU"):
                return _err(400, "bad_request", f"unsupported regionCode {region}")
            if not isinstance(list_ids, list) or not list_ids:
                return _err(400, "bad_request", "listIds required")
            if match == "hash":
                if not re.fullmatch(r"[0-9a-f]{64}", phone):
                    return _err(400, "bad_request", "hash must be 64 hex digits")
            elif not re.fullmatch(r"\+[1-9]\d{6,14}", phone):
                return _err(400, "bad_request", "phoneNumber must be E.164")
            matches = []
            for lid in list_ids:
                lid = str(lid)
                if match == "hash":
                    if lid not in hashed_cache:
                        hashed_cache[lid] = state.hashed(lid)
                    hit = phone in hashed_cache[lid]
                elif match == "prefix":
                    hit = any(n.startswith(phone) or phone.startswith(n)
                              for n in state.batch_lists.get(lid, set()))
                else:
                    hit = phone in state.batch_lists.get(lid, set())
                if hit:
                    matches.append(lid)
            results.append({"phoneNumber": phone,
                            "status": "suppressed" if matches else "allowed",
                            "reason": "on list" if matches else "", "listMatches": matches})
        state.batch_ok += 1
        return {"results": results}

    return app
