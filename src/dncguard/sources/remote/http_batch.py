"""The generic http-batch source (contract at the top of the CXone reference).

``POST {base_url}/api/v2/dnc/contacts/batch`` with a client-credentials bearer token from a
configurable token URL; at most 1000 contacts per request, chunks checked in parallel under
adaptive concurrency. dncguard's ``GB`` is sent as the contract's ``UK``. With ``matchType``
``hash`` the service receives ``sha256(salt + E.164)`` (hex), never the number.

Numbers whose chunk fails, or that come back with ``status: error`` or no result at all, get
``error`` / ``SOURCE_ERROR``; ``suppressed`` gives ``DNC_REMOTE``. Several results for one
number are merged to the most severe: any ``suppressed`` blocks (with every list matched),
else any status but ``allowed`` is an error; a number is allowed only when every result
for it says ``allowed``.

A campaign profile selects the source by its name (``http-batch``: every configured list id)
or some of its lists by theirs (``http-batch:<id>``): only the selected ids are sent, and the
pre-filter answers only for them.

With the settings' home given (``HttpBatchCheck(hb, settings=settings)``) and the pre-filter
enabled, numbers the service recently reported as suppressed are answered locally
(:mod:`dncguard.sources.remote.prefilter`): only misses and a sample of hits are sent.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import random
import time
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from ..._lazy import lazy_import
from ...config import SectionSettings, Settings
from ...errors import ConfigError, SourceError
from ...models import DataVersions, Decision, Reason, ReasonCode
from ..protocol import Batch, CheckBase, CheckContext
from .prefilter import Hit, Prefilter
from .resilience import AdaptiveLimiter, Clock, Resilient, RetryPolicy, Sleep, error_message

if TYPE_CHECKING:
    import httpx
else:
    httpx = lazy_import("httpx", globals(), "httpx")

log = logging.getLogger("dncguard.sources.remote")

REGION_CODES = {"US": "US", "CA": "CA", "GB": "UK", "AU": "AU"}


class HttpBatchSettings(SectionSettings):
    """The generic http-batch contract (``DNCGUARD_HTTP_BATCH_*``, ``[http_batch]``)."""

    model_config = SettingsConfigDict(env_prefix="DNCGUARD_HTTP_BATCH_", extra="ignore")
    toml_table: ClassVar[str | None] = "http_batch"

    base_url: str | None = Field(default=None, description="Service base URL")
    token_url: str | None = Field(default=None, description="client_credentials token URL")
    client_id: str | None = None
    client_secret: SecretStr | None = None
    scope: str | None = Field(default=None, description="Scopes to request, space separated")
    list_ids: list[str] = Field(default_factory=list, description="listIds sent with each contact")
    match_type: Literal["exact", "prefix", "hash"] = "exact"
    hash_salt: SecretStr | None = Field(default=None,
                                        description="Shared salt for matchType hash")
    chunk_size: int = Field(default=1000, ge=1, le=1000)
    concurrency: int = Field(default=8, ge=1, le=256, description="Initial requests in flight")
    max_concurrency: int = Field(default=64, ge=1, le=1024)
    timeout_seconds: float = Field(default=30.0, gt=0)
    max_attempts: int = Field(default=6, ge=1)
    token_margin_seconds: float = Field(default=60.0, ge=0)

    @model_validator(mode="after")
    def _whole_or_none(self) -> HttpBatchSettings:
        """Either every setting the source needs is given or none is: a source given in
        part would otherwise be left out of every check without a word, and the numbers it
        lists allowed. A blank list id is refused too (the service may read it as none)."""
        if any(not i.strip() for i in self.list_ids):
            raise ValueError("list_ids: a list id is blank")
        missing = [name for name, value in self._needed().items() if not value]
        if missing and len(missing) < len(self._needed()):
            raise ValueError(
                f"http-batch is configured only in part: {', '.join(missing)} "
                f"({', '.join('DNCGUARD_HTTP_BATCH_' + m.upper() for m in missing)}) "
                "missing; give all of base_url, token_url, client_id, client_secret and "
                "list_ids, or none")
        return self

    def _needed(self) -> dict[str, object]:
        return {"base_url": self.base_url, "token_url": self.token_url,
                "client_id": self.client_id, "client_secret": self.client_secret,
                "list_ids": self.list_ids}

    @property
    def configured(self) -> bool:
        return all(self._needed().values())

    def require(self) -> None:
        if not self.configured:
            raise ConfigError("http-batch is not configured: set DNCGUARD_HTTP_BATCH_BASE_URL, "
                              "_TOKEN_URL, _CLIENT_ID, _CLIENT_SECRET and _LIST_IDS")
        if self.match_type == "hash" and not self.hash_salt:
            raise ConfigError("http-batch matchType hash needs DNCGUARD_HTTP_BATCH_HASH_SALT")

    def policy(self) -> RetryPolicy:
        return RetryPolicy(max_attempts=self.max_attempts, timeout=self.timeout_seconds)


def load_http_batch(settings: Settings) -> HttpBatchSettings:
    return settings.section(HttpBatchSettings)


def hash_number(e164: str, salt: str) -> str:
    return hashlib.sha256((salt + e164).encode()).hexdigest()


def _error(detail: str) -> Reason:
    return Reason(code=ReasonCode.SOURCE_ERROR, decision=Decision.ERROR, source="http-batch",
                  detail=detail)


def _matches(result: dict[str, Any]) -> list[str]:
    """A result's ``listMatches`` (a list; one name alone is taken as a list of one)."""
    found = result.get("listMatches")
    if isinstance(found, str):
        return [found] if found else []
    return [str(x) for x in found] if isinstance(found, list) else []


def _matches_understood(result: dict[str, Any]) -> bool:
    """Whether a result's ``listMatches`` is absent, null, a name or a list of names: any
    other value (an object, a number) is not understood, so the result is not either."""
    found = result.get("listMatches")
    return found is None or isinstance(found, str) or (
        isinstance(found, list) and all(isinstance(x, str) for x in found))


class HttpBatchCheck(CheckBase):
    """Check numbers against an http-batch service (name ``http-batch``)."""

    name = "http-batch"

    def __init__(self, hb: HttpBatchSettings, *, http: httpx.AsyncClient | None = None,
                 sleep: Sleep | None = None, clock: Clock | None = None,
                 rng: random.Random | None = None, settings: Settings | None = None,
                 prefilter: Prefilter | None = None) -> None:
        hb.require()
        self.hb = hb
        self.settings = settings
        self._prefilter: Prefilter | None = prefilter
        self._prefilter_opened = prefilter is not None
        self._http = http
        self.sleep = sleep
        self.clock: Clock = clock or time.monotonic
        self.rng = rng
        self.limiter = AdaptiveLimiter(hb.concurrency, 1, hb.max_concurrency, sleep=sleep,
                                       clock=clock)
        self._token: tuple[str, float] | None = None
        self._lock: asyncio.Lock | None = None
        self.token_requests = 0
        self.last_resilient: Resilient | None = None
        self._auth: Resilient | None = None

    def versions(self) -> DataVersions:
        return DataVersions(lists={f"http-batch:{i}": None for i in self.hb.list_ids})

    def selected(self, ctx: CheckContext) -> list[str]:
        """The list ids asked about in ``ctx``: all of them when the campaign selects this
        source (or selects nothing), else those it selects by list name
        (``http-batch:<id>``): a campaign is checked against its lists, no others."""
        if ctx.selects(self.name):
            return list(self.hb.list_ids)
        return [i for i in self.hb.list_ids if ctx.selects(f"http-batch:{i}")]

    async def _get_token(self, res: Resilient) -> str:
        if self._lock is None:
            self._lock = asyncio.Lock()
        tok = self._token
        if tok is not None and self.clock() < tok[1]:
            return tok[0]
        async with self._lock:
            tok = self._token
            if tok is not None and self.clock() < tok[1]:
                return tok[0]
            assert self.hb.token_url and self.hb.client_id and self.hb.client_secret
            raw = f"{self.hb.client_id}:{self.hb.client_secret.get_secret_value()}"
            form = {"grant_type": "client_credentials"}
            if self.hb.scope:
                form["scope"] = self.hb.scope
            url = self.hb.token_url

            async def make() -> httpx.Request:
                return res.http.build_request("POST", url, data=form, headers={
                    "Authorization": "Basic " + base64.b64encode(raw.encode()).decode(),
                    "Accept": "application/json"})

            def parse(resp: httpx.Response) -> tuple[str, float]:
                if resp.status_code != 200:
                    raise SourceError(f"http-batch token refused: {error_message(resp)}",
                                      source=self.name)
                data = resp.json()
                life = float(data.get("expires_in") or 3600)
                margin = min(self.hb.token_margin_seconds, life / 2)
                return str(data["access_token"]), self.clock() + life - margin

            self.token_requests += 1
            self._token = await res.send(make, parse, what="token")
            return self._token[0]

    async def _invalidate(self, used: str) -> None:
        if self._token is not None and self._token[0] == used:
            self._token = None

    @property
    def prefilter(self) -> Prefilter | None:
        """The pre-filter (opened on first use from ``settings``), or None."""
        if not self._prefilter_opened:
            self._prefilter_opened = True
            if self.settings is not None:
                self._prefilter = Prefilter.open(
                    self.settings, self.name, namespace=self.hb.base_url or "",
                    per_call=self.hb.chunk_size)
        return self._prefilter

    def prefilter_stats(self) -> dict[str, Any] | None:
        """The pre-filter's counts since this check was built (None without a pre-filter)."""
        pf = self._prefilter
        return pf.stats() if pf is not None else None

    def _prefilter_reason(self, hit: Hit) -> Reason:
        return Reason(code=ReasonCode.DNC_REMOTE, decision=Decision.BLOCK, source=self.name,
                      list=f"http-batch:{hit.lists[0]}",
                      detail=f"suppressed by http-batch list {', '.join(hit.lists)} "
                      f"({hit.describe()})")

    async def check(self, batch: Batch, ctx: CheckContext) -> list[list[Reason]]:
        out: list[list[Reason]] = [[] for _ in range(len(batch))]
        ids = self.selected(ctx)
        if not len(batch) or not ids:  # (the engine runs it only when it selects a list)
            return out
        pf = self.prefilter
        if pf is None:
            await self._remote(batch, list(range(len(batch))), out, None, ids)
            return out
        plan = await asyncio.to_thread(pf.plan, batch.e164, ids)
        answers: dict[int, list[str] | None] = {}
        if plan.remote:
            await self._remote(batch, plan.remote, out, answers, ids)
        failed = await asyncio.to_thread(pf.settle, plan, answers)
        for i, hit in plan.local.items():
            out[i].append(self._prefilter_reason(hit))
        for i, hit in failed.items():  # re-verification failed: the recent positive stands
            log.info("http-batch re-verification of a pre-filter hit failed; the hit stands")
            out[i] = [self._prefilter_reason(hit)]
        return out

    async def _remote(self, batch: Batch, todo: list[int], out: list[list[Reason]],
                      answers: dict[int, list[str] | None] | None, ids: list[str]) -> None:
        """Ask the service about the numbers ``todo`` (indices into ``batch``) on the lists
        ``ids``."""
        http = self._http or httpx.AsyncClient(timeout=self.hb.timeout_seconds)
        res = Resilient(http, self.hb.policy(), limiter=self.limiter, sleep=self.sleep,
                        rng=self.rng, source=self.name)
        self._auth = Resilient(http, self.hb.policy(), limiter=AdaptiveLimiter(2, 1, 4),
                               sleep=self.sleep, rng=self.rng, source=self.name)
        self.last_resilient = res
        try:
            size = self.hb.chunk_size
            chunks = [todo[i:i + size] for i in range(0, len(todo), size)]
            await asyncio.gather(*(self._chunk(res, batch, idx, out, answers, ids)
                                   for idx in chunks))
        finally:
            if self._http is None:
                await http.aclose()

    async def _chunk(self, res: Resilient, batch: Batch, idx: list[int],
                     out: list[list[Reason]], answers: dict[int, list[str] | None] | None,
                     ids: list[str]) -> None:
        hb = self.hb
        salt = hb.hash_salt.get_secret_value() if hb.hash_salt else ""
        sent: list[str] = []
        contacts: list[dict[str, Any]] = []
        for i in idx:
            e164 = batch.e164[i]
            value = hash_number(e164, salt) if hb.match_type == "hash" else e164
            sent.append(value)
            contacts.append({"phoneNumber": value,
                             "regionCode": REGION_CODES.get(batch.region[i], "US"),
                             "listIds": list(ids), "matchType": hb.match_type})
        assert hb.base_url
        url = hb.base_url.rstrip("/") + "/api/v2/dnc/contacts/batch"
        used: dict[str, str] = {}

        async def make() -> httpx.Request:
            assert self._auth is not None
            token = await self._get_token(self._auth)
            used["t"] = token
            return res.http.build_request("POST", url, json={"contacts": contacts}, headers={
                "Authorization": f"Bearer {token}", "Accept": "application/json"})

        async def unauthorized(_req: httpx.Request) -> None:
            await self._invalidate(used.get("t", ""))

        def parse(resp: httpx.Response) -> list[dict[str, Any]]:
            if resp.status_code not in (200, 201):
                raise SourceError(f"http-batch refused the request: {error_message(resp)}",
                                  source=self.name)
            body = resp.json()
            results = body["results"]
            if not isinstance(results, list):
                raise ValueError("results")
            # the contract's answer is {"results": [...]}; anything beside it (an error, a
            # next page, a truncation flag) is something this check would not act on
            extra = sorted(str(k)[:40] for k in body if k != "results")
            if extra:
                raise SourceError("http-batch answered with fields the contract does not "
                                  f"have ({', '.join(extra[:5])}); not understood, so the "
                                  "numbers are not verified", source=self.name)
            return [r for r in results if isinstance(r, dict)]

        try:
            results = await res.send(make, parse, on_unauthorized=unauthorized,
                                     what=f"batch of {len(idx)}")
        except SourceError as exc:
            log.warning("http-batch chunk of %d numbers failed: %s", len(idx), exc)
            for i in idx:
                out[i].append(_error(f"http-batch could not check the number ({exc})"))
            return
        by_value: dict[str, list[dict[str, Any]]] = {}
        for item in results:
            by_value.setdefault(str(item.get("phoneNumber")), []).append(item)
        unasked = len(set(by_value) - set(sent))
        if unasked:  # an answer about numbers not asked: mixed up, nothing in it is trusted
            log.warning("http-batch answered a chunk of %d numbers about %d it was not asked",
                        len(idx), unasked)
            for i in idx:
                out[i].append(_error(f"http-batch answered about {unasked} number(s) it was "
                                     "not asked in the same request; not verified"))
            return
        for i, value in zip(idx, sent, strict=True):
            found = by_value.get(value, [])
            # Several results for one number (the number sent twice, or a service answering
            # per list) are merged to the most severe: a ``suppressed`` anywhere is a list
            # match and blocks; else anything but ``allowed`` is an error; never the first.
            hits = [r for r in found if str(r.get("status")) == "suppressed"]
            odd = sorted({str(r.get("status")) for r in found} - {"suppressed", "allowed"})
            # "allowed" that names a list it matched contradicts itself: not verified
            if any(str(r.get("status")) == "allowed" and _matches(r) for r in found):
                odd.append("allowed with list matches")
            if not all(_matches_understood(r) for r in found):
                odd.append("listMatches that is not a list of names")
            if hits:
                lists = list(dict.fromkeys(x for r in hits for x in _matches(r))) \
                    or list(ids)
                why = next((str(r["reason"]) for r in hits if r.get("reason")), None)
                if answers is not None:
                    answers[i] = lists
                out[i].append(Reason(
                    code=ReasonCode.DNC_REMOTE, decision=Decision.BLOCK, source=self.name,
                    list=f"http-batch:{lists[0]}",
                    detail=f"suppressed by http-batch list {', '.join(lists)}"
                    + (f" ({why[:80]})" if why else "")))
            elif not found or odd:
                why = "no result for the number" if not found else f"status {', '.join(odd)}"
                out[i].append(_error(f"http-batch could not check the number ({why})"))
            elif answers is not None:
                answers[i] = []
