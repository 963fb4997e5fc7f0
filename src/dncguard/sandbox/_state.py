"""The sandbox's data and knobs: tenants, tokens, DNC groups and records, faults."""

from __future__ import annotations

import base64
import hashlib
import json
import random
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field


class SandboxConfig(BaseModel):
    """Everything configurable. Faults apply to the Admin API and the http-batch endpoint."""

    tenant_id: str = "11eb0000-0000-0000-0000-000000000001"
    bu_id: int = 4600001
    client_id: str = "sandbox-app"
    client_secret: str = "sandbox-app-secret"
    access_keys: dict[str, str] = Field(default_factory=lambda: {"SANDBOXKEY": "sandbox-secret"})
    read_only_keys: list[str] = Field(default_factory=list, description="no dnc_edit permission")
    token_lifetime: int = 3600
    refresh_lifetime: int = 7200
    default_top: int = 100
    max_top: int = 1000
    max_write: int = 1000
    min_version: int = 12
    # rate limiting (token bucket per access key / per batch client), off by default
    rate_limit: float | None = None
    burst: int = 20
    batch_rate_limit: float | None = None
    batch_burst: int = 100
    retry_after: bool = False
    # fault injection
    seed: int = 0
    fail_rate: float = 0.0
    throttle_rate: float = 0.0
    timeout_rate: float = 0.0
    timeout_delay: float = 5.0
    trickle_delay: float = Field(default=0.05, ge=0, description="seconds between the bytes of "
                                 "an answer a trickle fault sends one at a time")
    malformed_rate: float = 0.0
    latency: float = 0.0
    expire_tokens_every: int | None = Field(
        default=None, description="revoke every access token after this many API requests")
    # http-batch
    batch_client_id: str = "batch-client"
    batch_client_secret: str = "batch-secret"
    batch_max_contacts: int = 1000
    hash_salt: str = ""


@dataclass
class Fault:
    """A scripted response for the next API request (tests). ``trickle``: the request is
    served as usual, and its answer sent one byte at a time, ``trickle_delay`` apart."""

    status: int = 503
    retry_after: str | None = None
    kind: str = "status"  # status | malformed | timeout | trickle


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def digits_of(value: Any) -> str:
    return "".join(ch for ch in str(value) if ch.isdigit())


class SandboxState:
    """The mutable server state; thread-safe enough for one uvicorn loop plus test code."""

    def __init__(self, config: SandboxConfig | None = None) -> None:
        self.config = config or SandboxConfig()
        self.rng = random.Random(self.config.seed)
        self.lock = threading.RLock()
        self.now: Callable[[], datetime] = lambda: datetime.now(UTC)
        self.tokens: dict[str, tuple[float, str]] = {}
        self.refresh_tokens: dict[str, tuple[float, str]] = {}
        self.batch_tokens: dict[str, float] = {}
        self.groups: dict[int, dict[str, Any]] = {}
        self.scrubbed: dict[int, list[int]] = {}
        self.contributing: dict[int, list[int]] = {}
        self.skills: dict[int, str] = {}
        self.records: dict[int, dict[str, dict[str, Any]]] = {}  # group -> digits -> record
        self._ordered: dict[tuple[int, str], list[dict[str, Any]]] = {}
        self.batch_lists: dict[str, set[str]] = {}
        self.next_record_id = 9000
        self.next_group_id = 100
        self.script: list[Fault] = []
        self.requests: Counter[str] = Counter()
        self.api_requests = 0
        self.grants: Counter[str] = Counter()
        self.buckets: dict[str, tuple[float, float]] = {}
        self.throttled = 0
        self.batch_ok = 0
        self.batch_seen: list[str] = []  # phoneNumber values of the last batch request

    # -- seeding ----------------------------------------------------------------------------
    @classmethod
    def from_file(cls, path: Path, config: SandboxConfig | None = None) -> SandboxState:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        cfg = config or SandboxConfig()
        if isinstance(data.get("config"), dict):
            cfg = cfg.model_copy(update=data["config"])
        state = cls(cfg)
        state.seed(data)
        return state

    def seed(self, data: dict[str, Any]) -> None:
        for s in data.get("skills", []):
            self.skills[int(s["skillId"])] = str(s.get("skillName", f"Skill {s['skillId']}"))
        for g in data.get("groups", []):
            gid = self.add_group(g.get("dncGroupName", "Group"), g.get("dncGroupDescription", ""),
                                 group_id=g.get("dncGroupId"), active=g.get("isActive", True))
            for sk in g.get("scrubbedSkills", []):
                self.scrubbed[gid].append(int(sk))
            for sk in g.get("contributingSkills", []):
                self.contributing[gid].append(int(sk))
            for r in g.get("records", []):
                if isinstance(r, str):
                    r = {"phoneNumber": r}
                self.add_record(gid, r["phoneNumber"], r.get("expiredDate"))
        batch = data.get("http_batch") or {}
        for list_id, numbers in (batch.get("lists") or {}).items():
            self.batch_lists[str(list_id)] = {str(n) for n in numbers}

    def add_group(self, name: str, description: str = "", *, group_id: int | None = None,
                  active: bool = True) -> int:
        with self.lock:
            gid = int(group_id) if group_id is not None else self.next_group_id
            self.next_group_id = max(self.next_group_id, gid) + 1
            now = _iso(self.now())
            self.groups[gid] = {"dncGroupId": gid, "dncGroupName": name,
                                "dncGroupDescription": description, "validRecords": 0,
                                "isActive": active, "isRemoved": False, "createDate": now,
                                "lastUpdateTime": now}
            self.scrubbed[gid] = []
            self.contributing[gid] = []
            self.records[gid] = {}
            return gid

    def _touch(self, gid: int) -> None:
        self._ordered = {k: v for k, v in self._ordered.items() if k[0] != gid}
        g = self.groups[gid]
        now = self.now()
        g["lastUpdateTime"] = _iso(now)
        g["validRecords"] = sum(1 for r in self.records[gid].values()
                                if r["expiredDate"] is None or r["_exp"] > now)

    def add_record(self, gid: int, phone: Any, expired: str | None = None, *,
                   touch: bool = True) -> dict[str, Any]:
        """Add or re-add a number (a re-add replaces the record, with a new id)."""
        with self.lock:
            digits = digits_of(phone)
            now = self.now()
            self.next_record_id += 1
            exp = datetime.fromisoformat(expired.replace("Z", "+00:00")) if expired else None
            rec = {"recordId": self.next_record_id, "createdBy": 27498, "phoneNumber": digits,
                   "formattedPhone": digits, "expiredDate": _iso(exp) if exp else None,
                   "dateCollected": _iso(now), "lastUpdateTime": _iso(now), "_exp": exp}
            self.records[gid][digits] = rec
            if touch:
                self._touch(gid)
            return rec

    def bulk_records(self, gid: int, phones: list[str], expired: str | None = None) -> None:
        """Fast seeding of many records (benchmarks, large-group tests)."""
        with self.lock:
            now = _iso(self.now())
            exp = datetime.fromisoformat(expired.replace("Z", "+00:00")) if expired else None
            store = self.records[gid]
            for p in phones:
                self.next_record_id += 1
                d = digits_of(p)
                store[d] = {"recordId": self.next_record_id, "createdBy": 27498,
                            "phoneNumber": d, "formattedPhone": d,
                            "expiredDate": _iso(exp) if exp else None, "dateCollected": now,
                            "lastUpdateTime": now, "_exp": exp}
            self._touch(gid)

    def expire_record(self, gid: int, phone: Any, expired: str | None = None, *,
                      touch: bool = True) -> bool:
        with self.lock:
            rec = self.records[gid].get(digits_of(phone))
            if rec is None:
                return False
            now = self.now()
            exp = datetime.fromisoformat(expired.replace("Z", "+00:00")) if expired else now
            rec["_exp"] = exp
            rec["expiredDate"] = _iso(exp)
            rec["lastUpdateTime"] = _iso(now)
            if touch:
                self._touch(gid)
            return True

    def remove_record(self, gid: int, phone: Any) -> bool:
        """Hard removal (CXone's clean-up of long-expired records); no API does this."""
        with self.lock:
            gone = self.records[gid].pop(digits_of(phone), None) is not None
            if gone:
                self._touch(gid)
            return gone

    def ordered(self, gid: int, order_by: str | None) -> list[dict[str, Any]]:
        key = (gid, (order_by or "").strip().lower())
        with self.lock:
            cached = self._ordered.get(key)
            if cached is None:
                recs = list(self.records[gid].values())
                if key[1]:
                    fld, _, direction = key[1].partition(" ")
                    names = {"lastupdatetime": "lastUpdateTime", "recordid": "recordId",
                             "phonenumber": "phoneNumber", "expireddate": "expiredDate",
                             "datecollected": "dateCollected"}
                    if fld not in names:
                        raise ValueError(f"cannot order by {fld}")
                    recs.sort(key=lambda r: (r[names[fld]] or "", r["recordId"]),
                              reverse=direction.strip() == "desc")
                cached = self._ordered[key] = recs
            return cached

    # -- auth -------------------------------------------------------------------------------
    def issue_token(self, key_id: str) -> dict[str, Any]:
        with self.lock:
            access = "sbx." + secrets.token_urlsafe(24)
            refresh = "sbr." + secrets.token_urlsafe(24)
            lifetime = self.config.token_lifetime
            self.tokens[access] = (time.monotonic() + lifetime, key_id)
            self.refresh_tokens[refresh] = (time.monotonic() + self.config.refresh_lifetime,
                                            key_id)
        now = int(time.time())
        claims = {"iss": "sandbox", "sub": f"user:{key_id}", "aud": self.config.client_id,
                  "iat": now, "exp": now + lifetime, "tenantId": self.config.tenant_id,
                  "icBUId": self.config.bu_id, "icClusterId": "SIM1"}
        id_token = f"{_b64({'alg': 'RS256', 'typ': 'JWT'})}.{_b64(claims)}.c2lnbmF0dXJl"
        return {"access_token": access, "token_type": "Bearer", "expires_in": lifetime,
                "refresh_token": refresh, "id_token": id_token,
                "issued_token_type": "urn:ietf:params:oauth:token-type:access_token"}

    def token_user(self, token: str) -> str | None:
        with self.lock:
            entry = self.tokens.get(token)
        if entry is None or entry[0] <= time.monotonic():
            return None
        return entry[1]

    def revoke_tokens(self) -> None:
        """Expire every access token now (tests: token expiry mid-run)."""
        with self.lock:
            self.tokens.clear()
            self.batch_tokens.clear()

    def allow(self, bucket: str, rate: float | None, burst: int) -> bool:
        if not rate:
            return True
        with self.lock:
            now = time.monotonic()
            tokens, last = self.buckets.get(bucket, (float(burst), now))
            tokens = min(float(burst), tokens + (now - last) * rate)
            if tokens < 1.0:
                self.buckets[bucket] = (tokens, now)
                return False
            self.buckets[bucket] = (tokens - 1.0, now)
            return True

    # -- http-batch -------------------------------------------------------------------------
    def hashed(self, list_id: str) -> set[str]:
        salt = self.config.hash_salt
        return {hashlib.sha256((salt + n).encode()).hexdigest()
                for n in self.batch_lists.get(list_id, set())}


def future(days: int = 365) -> str:
    return _iso(datetime.now(UTC) + timedelta(days=days))


def default_seed() -> dict[str, Any]:
    """A small demo tenant with fictional numbers (555-01xx)."""
    return {
        "skills": [{"skillId": 218853, "skillName": "Outbound Sales"},
                   {"skillId": 218854, "skillName": "Collections"}],
        "groups": [
            {"dncGroupId": 364, "dncGroupName": "Internal DNC", "scrubbedSkills": [218853],
             "records": ["2025550101", "2125550102", {"phoneNumber": "3055550103",
                                                       "expiredDate": "2020-01-01T00:00:00Z"},
                         {"phoneNumber": "4155550104", "expiredDate": future()}]},
            {"dncGroupId": 365, "dncGroupName": "Collections DNC", "scrubbedSkills": [218854],
             "records": ["6175550105"]},
            {"dncGroupId": 366, "dncGroupName": "Retired list", "isActive": False,
             "records": ["7025550106"]},
        ],
        "http_batch": {"lists": {"remote-dnc": ["+12025550110", "+442079460123"]}},
    }
