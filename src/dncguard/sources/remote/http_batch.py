"""The generic http-batch source (contract at the top of the CXone reference).

``POST {base_url}/api/v2/dnc/contacts/batch`` with a client-credentials bearer token from a
configurable token URL; at most 1000 contacts per request, chunks checked in parallel under
adaptive concurrency. dncguard's ``GB`` is sent as the contract's ``UK``. With ``matchType``
``hash`` the service receives ``sha256(salt + E.164)`` (hex), never the number.

Numbers whose chunk fails, or that come back with ``status: error`` or no result at all, get
``error`` / ``SOURCE_ERROR``; ``suppressed`` gives ``DNC_REMOTE``. An answer this check does
not wholly understand fails its chunk: an object repeating a key, a field beside ``results``,
an entry of ``results`` that is not an object, a key in a result beyond the contract's
``phoneNumber``, ``status``, ``reason``, ``listMatches``, more results than the request
can call for (one per contact and list id: a service answering per list), or a body larger
than ``max_answer_bytes`` (by default 2 KiB per such result, plus 64 KiB; the body is
streamed and its reading stopped there, so it never fills memory). An ``allowed`` that
gives a ``reason`` or names ``listMatches`` contradicts itself and is an error for its
number. Several results for one number are merged to the most severe: any ``suppressed``
blocks (with every list matched), else any status but ``allowed`` is an error; a number is
allowed only when every result for it says ``allowed``. A ``suppressed`` that names a list
not asked about still blocks, on the lists asked (its reason names them and the list not
understood), but is no answer about them: the pre-filter neither records it nor counts it.

A campaign profile selects the source by its name (``http-batch``: every configured list id)
or some of its lists by theirs (``http-batch:<id>``): only the selected ids are sent, and the
pre-filter answers only for them.

With the settings' home given (``HttpBatchCheck(hb, settings=settings)``) and the pre-filter
enabled, numbers the service recently reported as suppressed are answered locally
(:mod:`dncguard.sources.remote.prefilter`): only misses and a sample of hits are sent.

One check may serve several event loops (the service's threads) and concurrent calls: what a
call creates (its HTTP client, its resilience) stays local to it, and the asyncio primitives
(the adaptive limiter, the token lock) are kept per event loop.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import math
import random
import threading
import time
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from ..._lazy import lazy_import
from ...config import SectionSettings, Settings, endpoint_url, start_within_bound
from ...errors import ConfigError, SourceError
from ...models import DataVersions, Decision, Reason, ReasonCode
from ...phones import mask_numbers
from ..protocol import Batch, CheckBase, CheckContext
from .prefilter import Hit, Prefilter
from .resilience import (
    AdaptiveLimiter,
    Clock,
    Resilient,
    RetryPolicy,
    Sleep,
    UnreadableResponse,
    error_message,
    strict_json,
)

if TYPE_CHECKING:
    import httpx
else:
    httpx = lazy_import("httpx", globals(), "httpx")

log = logging.getLogger("dncguard.sources.remote")

REGION_CODES = {"US": "US", "CA": "CA", "GB": "UK", "AU": "AU"}
#: The keys of one result in the contract's answer; any other is not understood.
RESULT_KEYS = frozenset({"phoneNumber", "status", "reason", "listMatches"})
#: The default bound of a batch answer (``max_answer_bytes``): this many bytes per result the
#: request can call for (one per contact and list id), plus :data:`ANSWER_BYTES_BASE`. A
#: result is about 100 bytes (a hash, a status, a list or two); a reason of several hundred
#: characters still fits.
ANSWER_BYTES_PER_RESULT = 2048
ANSWER_BYTES_BASE = 65_536


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
    timeout_seconds: float = Field(default=30.0, gt=0, le=3600,
                                   description="Seconds per request (at most an hour)")
    max_answer_bytes: int | None = Field(
        default=None, ge=1, description="Most bytes of one batch answer read (decoded): a "
        "larger answer fails its chunk as not understood. Default: "
        f"{ANSWER_BYTES_PER_RESULT} bytes per result the request can call for (contacts x "
        f"list ids) plus {ANSWER_BYTES_BASE}")
    max_attempts: int = Field(default=6, ge=1)
    token_margin_seconds: float = Field(default=60.0, ge=0, le=3600,
                                        description="Refresh the token this long before "
                                        "expiry (at most an hour)")

    @field_validator("base_url", "token_url")
    @classmethod
    def _endpoint(cls, value: str | None, info: ValidationInfo) -> str | None:
        """An http(s) URL with a host (:func:`~dncguard.config.url_problem`): refused when
        the settings load, naming the setting, not by every check failing."""
        name = str(info.field_name)
        example = ("https://dnc.example" if name == "base_url" else
                   "https://auth.example/oauth2/token")
        return endpoint_url(value, f"http-batch {name.replace('_', ' ')}",
                            f"DNCGUARD_HTTP_BATCH_{name.upper()} or [http_batch] {name}",
                            example)

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

    @model_validator(mode="after")
    def _nothing_ignored(self) -> HttpBatchSettings:
        """A setting that would have no effect is refused, not dropped: a salt without
        ``match_type`` hash (the numbers would go out in plain text) and an initial
        concurrency above its maximum."""
        if self.hash_salt and self.match_type != "hash":
            raise ValueError(
                "hash_salt (DNCGUARD_HTTP_BATCH_HASH_SALT) is set but match_type "
                f"(DNCGUARD_HTTP_BATCH_MATCH_TYPE) is {self.match_type!r}: the salt is used "
                "only with match_type 'hash' and the numbers would be sent in plain text; set "
                "match_type to 'hash' or remove hash_salt")
        start_within_bound(self, "concurrency", "max_concurrency", "DNCGUARD_HTTP_BATCH_")
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


def _names(keys: list[Any]) -> str:
    """Up to five of ``keys`` for a message (masked: a key may be a phone number)."""
    names = sorted({mask_numbers(str(k)[:40]) for k in keys})
    return ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")


def _not_understood(what: str) -> SourceError:
    return SourceError(f"http-batch answered {what}; not understood, so the numbers are not "
                       "verified", source="http-batch")


def _parse_results(resp: httpx.Response, most: int | None = None) -> list[dict[str, Any]]:
    """The results of a batch answer: every one an object with only the contract's keys.

    A refusal (a status but 200/201), an object repeating a key, a field beside ``results``,
    more results than ``most`` (one per contact and list id asked: a service answering per
    list gives no more), an entry that is not an object or a key beyond :data:`RESULT_KEYS`
    is a :class:`SourceError` for the whole chunk (left out, each could hide what the
    service meant: an ``error`` beside an ``allowed``, a dropped nested answer). A body that
    is not ``{"results": [...]}`` at all is unreadable (retried)."""
    if resp.status_code not in (200, 201):
        raise SourceError(f"http-batch refused the request: {error_message(resp)}",
                          source="http-batch")
    body = strict_json(resp)
    results = body["results"]
    if not isinstance(results, list):
        raise ValueError("results")
    # the contract's answer is {"results": [...]}; anything beside it (an error, a next page,
    # a truncation flag) is something this check would not act on
    extra = [k for k in body if k != "results"]
    if extra:
        raise _not_understood(f"with fields the contract does not have ({_names(extra)})")
    odd = sum(1 for r in results if not isinstance(r, dict))
    if odd:
        raise _not_understood(f"{odd} of {len(results)} results that are not objects")
    unknown = [k for r in results if not r.keys() <= RESULT_KEYS for k in r.keys() - RESULT_KEYS]
    if unknown:
        raise _not_understood(f"results with fields the contract does not have "
                              f"({_names(unknown)})")
    if most is not None and len(results) > most:
        raise _not_understood(f"{len(results):,} results where at most {most:,} (one per "
                              "number and list asked) can be")
    return results


def _parse_token(resp: httpx.Response) -> tuple[str, float]:
    """The access token and its lifetime in seconds (3600 when not given). An answer that is
    not an object with a non-empty string ``access_token`` and, if given, a positive
    ``expires_in`` is unreadable: retried, then a :class:`SourceError` saying why."""
    if resp.status_code != 200:
        raise SourceError(f"http-batch token refused: {error_message(resp)}",
                          source="http-batch")
    data = strict_json(resp)
    if not isinstance(data, dict):
        raise UnreadableResponse("the token answer is not a JSON object")
    token = data.get("access_token")
    if not isinstance(token, str) or not token:
        raise UnreadableResponse("the token answer has no access_token string")
    life = data.get("expires_in")
    try:
        seconds = 3600.0 if life is None else float(life)
    except (TypeError, ValueError):
        seconds = math.nan
    if isinstance(life, bool) or not 0 < seconds < math.inf:
        raise UnreadableResponse("the token answer's expires_in is not a positive number")
    return token, seconds


@dataclass
class _LoopState:
    """What a check keeps per event loop: asyncio primitives must not be shared by loops."""

    limiter: AdaptiveLimiter
    token_lock: asyncio.Lock


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
        self._token: tuple[str, float] | None = None
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopState] = \
            weakref.WeakKeyDictionary()
        self._loops_guard = threading.Lock()
        self._last_limiter: AdaptiveLimiter | None = None
        self.token_requests = 0
        self.last_resilient: Resilient | None = None

    def _new_limiter(self) -> AdaptiveLimiter:
        return AdaptiveLimiter(self.hb.concurrency, 1, self.hb.max_concurrency,
                               sleep=self.sleep, clock=self.clock)

    def _here(self) -> _LoopState:
        """This event loop's limiter and token lock (made on first use in the loop)."""
        loop = asyncio.get_running_loop()
        with self._loops_guard:
            state = self._loops.get(loop)
            if state is None:
                state = self._loops[loop] = _LoopState(self._new_limiter(), asyncio.Lock())
            self._last_limiter = state.limiter
        return state

    @property
    def limiter(self) -> AdaptiveLimiter:
        """The adaptive limiter of the running event loop (each loop has its own); outside
        any loop, the one used last."""
        try:
            return self._here().limiter
        except RuntimeError:  # no running event loop
            if self._last_limiter is None:
                self._last_limiter = self._new_limiter()
            return self._last_limiter

    def versions(self) -> DataVersions:
        return DataVersions(lists={f"http-batch:{i}": None for i in self.hb.list_ids})

    def selected(self, ctx: CheckContext) -> list[str]:
        """The list ids asked about in ``ctx``: all of them when the campaign selects this
        source (or selects nothing), else those it selects by list name
        (``http-batch:<id>``): a campaign is checked against its lists, no others."""
        if ctx.selects(self.name):
            return list(self.hb.list_ids)
        return [i for i in self.hb.list_ids if ctx.selects(f"http-batch:{i}")]

    async def _get_token(self, auth: Resilient) -> str:
        """The cached token, or a new one fetched through ``auth`` (the calling check's own
        resilience: its client is open while that check runs)."""
        tok = self._token
        if tok is not None and self.clock() < tok[1]:
            return tok[0]
        async with self._here().token_lock:
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
                return auth.http.build_request("POST", url, data=form, headers={
                    "Authorization": "Basic " + base64.b64encode(raw.encode()).decode(),
                    "Accept": "application/json"})

            self.token_requests += 1
            token, life = await auth.send(make, _parse_token, what="token")
            margin = min(self.hb.token_margin_seconds, life / 2)
            self._token = (token, self.clock() + life - margin)
            return token

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
            if any(r.decision is Decision.BLOCK for r in out[i]):
                continue  # the service blocked it, in an answer not understood: its reason
            log.info("http-batch re-verification of a pre-filter hit failed; the hit stands")
            out[i] = [self._prefilter_reason(hit)]
        return out

    async def _remote(self, batch: Batch, todo: list[int], out: list[list[Reason]],
                      answers: dict[int, list[str] | None] | None, ids: list[str]) -> None:
        """Ask the service about the numbers ``todo`` (indices into ``batch``) on the lists
        ``ids``. The client and both resiliences are this call's own (a concurrent call
        must not find them closed)."""
        http = self._http or httpx.AsyncClient(timeout=self.hb.timeout_seconds)
        res = Resilient(http, self.hb.policy(), limiter=self._here().limiter, sleep=self.sleep,
                        rng=self.rng, source=self.name)
        auth = Resilient(http, self.hb.policy(), sleep=self.sleep, rng=self.rng,
                         source=self.name, limiter=AdaptiveLimiter(2, 1, 4, sleep=self.sleep,
                                                                   clock=self.clock))
        self.last_resilient = res
        try:
            size = self.hb.chunk_size
            chunks = [todo[i:i + size] for i in range(0, len(todo), size)]
            await asyncio.gather(*(self._chunk(res, auth, batch, idx, out, answers, ids)
                                   for idx in chunks))
        finally:
            if self._http is None:
                await http.aclose()

    async def _chunk(self, res: Resilient, auth: Resilient, batch: Batch, idx: list[int],
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
            token = await self._get_token(auth)
            used["t"] = token
            return res.http.build_request("POST", url, json={"contacts": contacts}, headers={
                "Authorization": f"Bearer {token}", "Accept": "application/json"})

        async def unauthorized(_req: httpx.Request) -> None:
            await self._invalidate(used.get("t", ""))

        most = len(contacts) * len(ids)
        limit = hb.max_answer_bytes or most * ANSWER_BYTES_PER_RESULT + ANSWER_BYTES_BASE

        def parse(resp: httpx.Response) -> list[dict[str, Any]]:
            return _parse_results(resp, most)

        try:
            results = await res.send(make, parse, on_unauthorized=unauthorized,
                                     what=f"batch of {len(idx)}", max_body=limit)
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
            # so does "allowed" with a reason (why would it need one?): not verified
            if any(str(r.get("status")) == "allowed" and r.get("reason") not in (None, "")
                   for r in found):
                odd.append("allowed with a reason")
            if not all(_matches_understood(r) for r in found):
                odd.append("listMatches that is not a list of names")
            if hits:
                named = list(dict.fromkeys(x for r in hits for x in _matches(r)))
                # a list not asked about is not understood: the block stands, on the lists
                # asked, but it is no answer about them (the pre-filter neither records it
                # nor counts a sampled hit a false positive)
                strange = [x for x in named if x not in ids]
                lists = [x for x in named if x in ids] or list(ids)
                why = next((str(r["reason"]) for r in hits if r.get("reason")), None)
                if answers is not None and not strange:
                    answers[i] = lists
                detail = (f"suppressed by http-batch list {', '.join(lists)}" if not strange
                          else f"suppressed by http-batch, which named list(s) not asked "
                          f"({_names(strange)}; not understood) when asked about "
                          f"{', '.join(ids)}: blocked on those")
                out[i].append(Reason(
                    code=ReasonCode.DNC_REMOTE, decision=Decision.BLOCK, source=self.name,
                    list=f"http-batch:{lists[0]}",
                    detail=detail + (f" ({why[:80]})" if why else "")))
            elif not found or odd:
                why = "no result for the number" if not found else f"status {', '.join(odd)}"
                out[i].append(_error(f"http-batch could not check the number ({why})"))
            elif answers is not None:
                answers[i] = []
