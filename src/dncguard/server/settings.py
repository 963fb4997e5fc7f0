"""Settings of the HTTP service: ``DNCGUARD_SERVER_*`` variables and the ``[server]`` TOML table."""

from __future__ import annotations

import ipaddress
from typing import ClassVar

from pydantic import Field, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from ..config import SectionSettings, Settings, load_section


class ServerSettings(SectionSettings):
    """How ``dncguard serve`` listens, limits and runs jobs.

    No float setting takes ``inf`` or ``nan`` (``allow_inf_nan``): an infinite
    ``key_cache_seconds`` trusted a revoked key for ever, an infinite ``rate_per_second`` was
    no limit at all, and ``nan`` compares false with everything. No setting takes a blank
    value (:class:`~dncguard.config.SectionSettings`): an empty ``host`` made uvicorn listen
    on every interface."""

    model_config = SettingsConfigDict(env_prefix="DNCGUARD_SERVER_", extra="ignore",
                                      allow_inf_nan=False)
    toml_table: ClassVar[str | None] = "server"

    host: str = Field(default="127.0.0.1", description="Interface to listen on")
    port: int = Field(default=8000, ge=0, le=65535, description="TCP port")
    workers: int = Field(default=1, ge=1, description="uvicorn worker processes")
    proxy_headers: bool = Field(
        default=False, description="Behind a reverse proxy: take the client's address and "
        "scheme from X-Forwarded-For and X-Forwarded-Proto, sent by the addresses in "
        "forwarded_allow_ips (uvicorn's proxy headers), so the console's cookies are Secure "
        "behind a proxy that terminates TLS")
    forwarded_allow_ips: str = Field(
        default="127.0.0.1", description="With proxy_headers: the proxies trusted to send "
        "them, comma-separated IP addresses and networks (10.0.0.0/8), or * for any (only "
        "when nothing else can reach the port)")
    no_auth: bool = Field(default=False, description="Serve without API keys (development only)")
    batch_limit: int = Field(default=10_000, ge=1, description="Numbers per /v1/check/batch")
    max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024,
                                description="Largest JSON request body")
    max_upload_bytes: int = Field(default=2 * 1024**3, ge=1024,
                                  description="Largest job upload")
    rate_per_second: float = Field(default=200.0, gt=0, description="Requests/s per API key")
    rate_burst: int = Field(default=400, ge=1, description="Bucket size per API key")
    key_cache_seconds: float = Field(default=2.0, ge=0, le=300,
                                     description="How long a verified key is trusted unchecked "
                                     "(at most 300: a revoked key is still accepted this long)")
    cache_checks: bool = Field(default=True, description="Reuse list indexes while the "
                               "database's list version is unchanged (checked per request)")
    list_max_age_days: int | None = Field(
        default=None, description="Removed, refused when set: list freshness follows the "
        "registry rules, [rules] max_age_days and [rules] default_max_age_days "
        "(dncguard.sources.rules.freshness)")
    ready_requires_fresh: bool = Field(
        default=True, description="/readyz fails on a registry past the age its rule allows")
    metrics_public: bool = Field(default=True, description="/metrics needs no key")
    export_seconds: float = Field(default=10.0, gt=0, le=3600,
                                  description="Seconds between audit export delivery passes "
                                  "(at most an hour)")
    metrics_flush_seconds: float = Field(default=5.0, gt=0, le=3600,
                                         description="Decision counts flushed this often (at "
                                         "most an hour: a crash loses the counts not yet "
                                         "flushed)")
    job_poll_seconds: float = Field(default=1.0, gt=0, le=300,
                                    description="Job queue poll interval (at most 300)")
    job_lease_seconds: float = Field(default=30.0, gt=0, le=86_400,
                                     description="A job whose runner is silent this long is "
                                     "taken over by another replica (at most a day)")
    job_max_attempts: int = Field(default=5, ge=1, le=100,
                                  description="A job claimed more often than this since it "
                                  "last committed a chunk (its runner killed or crashed each "
                                  "time) is failed, resumable, instead of run again (1-100)")
    job_chunk_delay: float = Field(default=0.0, ge=0, le=60,
                                   description="Testing only: sleep after each job chunk (at "
                                   "most 60)")


    @field_validator("forwarded_allow_ips")
    @classmethod
    def _trusted(cls, value: str) -> str:
        """Every entry an IP address or network, or ``*`` alone: uvicorn takes an entry it
        cannot read as a literal host name that no TCP client ever has, so a typo would
        silently trust no proxy (and the console's cookies would lose Secure)."""
        entries = [e.strip() for e in value.split(",")]
        if entries == ["*"]:
            return "*"
        for entry in entries:
            try:
                if "/" in entry:
                    ipaddress.ip_network(entry)
                else:
                    ipaddress.ip_address(entry)
            except ValueError as exc:
                why = f" ({exc})" if "/" in entry else ""  # e.g. 10.0.0.1/8 has host bits set
                raise ValueError(f"{entry!r} is not an IP address or network{why}: give "
                                 "comma-separated addresses and networks (127.0.0.1, "
                                 "10.0.0.0/8), or * alone") from None
        return ",".join(entries)

    @model_validator(mode="after")
    def _removed(self) -> ServerSettings:
        """A removed setting is refused, not ignored: whoever set it asked for a limit that
        nothing would apply."""
        if self.list_max_age_days is not None:
            raise ValueError("list_max_age_days is no longer a setting (list freshness follows "
                             "the registry rules): set [rules] default_max_age_days for lists "
                             "without a rule, or [rules] max_age_days per jurisdiction to be "
                             "stricter than a rule")
        return self


def load_server_settings(settings: Settings, **overrides: object) -> ServerSettings:
    clean = {k: v for k, v in overrides.items() if v is not None}
    return load_section(ServerSettings, settings, **clean)
