"""CXone settings: ``DNCGUARD_CXONE_*`` environment variables over the ``[cxone]`` table."""

from __future__ import annotations

import re
from typing import ClassVar, Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from ...config import SectionSettings, Settings, endpoint_url, start_within_bound
from ...errors import ConfigError
from ..remote.resilience import RetryPolicy

PUBLIC_ISSUER = "https://cxone.niceincontact.com"
_CREDENTIALS = ("client_id", "client_secret", "access_key_id", "access_key_secret")
#: An API version as the settings take it: ``v33.0``, or ``33``, ``v33``, ``33.0``.
_VERSION = re.compile(r"^v?(?P<major>[0-9]{1,4})(?:\.(?P<minor>[0-9]{1,4}))?$")


class CxoneSettings(SectionSettings):
    """How to reach a NICE CXone tenant and how to use its DNC groups."""

    model_config = SettingsConfigDict(env_prefix="DNCGUARD_CXONE_", extra="ignore")
    toml_table: ClassVar[str | None] = "cxone"

    issuer: str = Field(default=PUBLIC_ISSUER, description="CXone authentication issuer")
    client_id: str | None = Field(default=None, description="Registered app's client id")
    client_secret: SecretStr | None = Field(default=None, description="Registered app's secret")
    access_key_id: str | None = Field(default=None, description="API user's access key ID")
    access_key_secret: SecretStr | None = Field(default=None,
                                                description="API user's access key secret")
    api_version: str = Field(default="v33.0", description="Admin API version, e.g. v33.0")
    api_endpoint: str | None = Field(default=None,
                                     description="Skip discovery and use this API host")
    tenant_id: str | None = Field(default=None, description="Override the id_token's tenantId")
    groups: list[str] | None = Field(default=None,
                                     description="Only these DNC group ids are synced/checked")
    skill: str | None = Field(default=None, description="Sync the groups scrubbing this skill")
    max_sync_age_hours: float = Field(default=24.0, gt=0, le=8784,
                                      description="A group synced longer ago than this is "
                                      "stale (at most a year: 8784)")
    stale_policy: Literal["error", "live_search"] = Field(
        default="error", description="Stale or unsynced groups: fail closed or search live")
    live_search_max: int = Field(default=500, ge=0,
                                 description="Most numbers per batch checked by live search")
    push_group: str | None = Field(default=None, description="Group that receives opt-outs")
    page_size: int = Field(default=1000, ge=1, le=10_000, description="Records per page")
    write_batch_size: int = Field(default=100, ge=1, le=1000, description="Records per write")
    full_sync_hours: float = Field(default=24.0, gt=0, le=8784,
                                   description="A full re-download at least this often (at "
                                   "most a year: 8784)")
    timeout_seconds: float = Field(default=30.0, gt=0, le=3600)
    max_attempts: int = Field(default=6, ge=1)
    concurrency: int = Field(default=4, ge=1, le=64, description="Initial requests in flight")
    max_concurrency: int = Field(default=16, ge=1, le=256)
    token_margin_seconds: float = Field(default=300.0, ge=0, le=3600,
                                        description="Refresh the token this long before "
                                        "expiry (at most an hour)")

    @field_validator("api_version")
    @classmethod
    def _version(cls, value: str) -> str:
        """The documented form ``vMAJOR.MINOR`` (``v33.0``); ``33``, ``v33`` and ``33.0``
        are read as it. Anything else is refused: ``latest`` became ``vlatest.0``, a path no
        CXone API serves, and every request failed."""
        m = _VERSION.match(value.strip())
        if m is None:
            raise ValueError("is not an API version such as v33.0 (DNCGUARD_CXONE_API_VERSION "
                             "or [cxone] api_version): give v, the major and the minor "
                             "version, e.g. v33.0")
        return f"v{m['major']}.{m['minor'] or 0}"

    @field_validator("groups")
    @classmethod
    def _groups(cls, value: list[str] | None) -> list[str] | None:
        """An empty list would stand for every group (as no list does) without a word, and a
        blank group id names no group."""
        if value is not None and not value:
            raise ValueError("is an empty list, which would mean every group: leave it out "
                             "for every group, or name the groups")
        if value is not None and any(not g.strip() for g in value):
            raise ValueError("holds an empty group id: remove it")
        return value

    @field_validator("issuer", "api_endpoint")
    @classmethod
    def _url(cls, value: str | None, info: ValidationInfo) -> str | None:
        """An http(s) URL with a host (:func:`~dncguard.config.url_problem`), its trailing
        ``/`` removed; refused when the settings load, naming the setting."""
        name = str(info.field_name)
        example = PUBLIC_ISSUER if name == "issuer" else "https://api-na1.niceincontact.com"
        return endpoint_url(value.strip().rstrip("/") if value else value,
                            f"CXone {name.replace('_', ' ')}",
                            f"DNCGUARD_CXONE_{name.upper()} or [cxone] {name}", example)

    @model_validator(mode="after")
    def _concurrency_in_order(self) -> CxoneSettings:
        """An initial concurrency given above its maximum is refused, as http-batch refuses
        it: it was silently cut to the maximum, so one of the two settings meant nothing. A
        maximum given below the default start lowers the start to it (the start was not
        given: nothing said is dropped)."""
        start_within_bound(self, "concurrency", "max_concurrency", "DNCGUARD_CXONE_")
        return self

    @model_validator(mode="after")
    def _credentials_whole_or_none(self) -> CxoneSettings:
        """The four credentials are given together or not at all: with some of them the
        source would be left out of every check without a word (and the numbers of its
        groups allowed)."""
        missing = self._missing()
        if missing and len(missing) < len(_CREDENTIALS):
            raise ValueError("CXone is configured only in part: set " + ", ".join(missing)
                             + " too, or none of the four credentials")
        return self

    def _missing(self) -> list[str]:
        return [f"DNCGUARD_CXONE_{n.upper()}" for n in _CREDENTIALS if not getattr(self, n)]

    @property
    def configured(self) -> bool:
        return not self._missing()

    @property
    def asked_for(self) -> bool:
        """Whether anything says CXone's groups are to be checked: the credentials, or the
        groups, skill or write-back group to use (the check then runs, and fails closed
        while it cannot reach them)."""
        return self.configured or bool(self.groups or self.skill or self.push_group)

    def require(self) -> None:
        missing = self._missing()
        if missing:
            raise ConfigError("CXone is not configured: set " + ", ".join(missing))

    def policy(self) -> RetryPolicy:
        return RetryPolicy(max_attempts=self.max_attempts, timeout=self.timeout_seconds)


def load_cxone(settings: Settings) -> CxoneSettings:
    return settings.section(CxoneSettings)
