"""Audit settings: ``DNCGUARD_AUDIT_*`` variables over the ``[audit]`` TOML table."""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path
from typing import ClassVar

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from ..config import SectionSettings, Settings, load_section, start_within_bound, url_problem
from ..errors import ConfigError

#: Five years (365 * 5 + 1 leap day), the default retention.
DEFAULT_RETENTION_DAYS = 1826


class AuditSettings(SectionSettings):
    """Audit trail settings (environment variables ``DNCGUARD_AUDIT_`` + the field name)."""

    # hide_input_in_errors: a refused export_url may hold a password, the HMAC key is secret
    model_config = SettingsConfigDict(env_prefix="DNCGUARD_AUDIT_", extra="ignore",
                                      hide_input_in_errors=True)
    toml_table: ClassVar[str | None] = "audit"

    hmac_key: SecretStr | None = Field(
        default=None,
        description="Secret key numbers are HMAC-SHA256'd with; default: a key generated once "
        "into <home>/audit/hmac.key (mode 0600)",
    )
    export_url: str | None = Field(
        default=None, description="HTTP endpoint that receives each job's summary (POST JSON)"
    )
    export_token: SecretStr | None = Field(
        default=None, description="Sent as 'Authorization: Bearer <token>' when set; printable "
        "ASCII only"
    )
    export_timeout: float = Field(default=10.0, gt=0, le=3600,
                                  description="Seconds per export request (at most 3600)")
    export_base_delay: float = Field(default=30.0, gt=0, le=86_400,
                                     description="First retry delay (s; at most a day)")
    export_max_delay: float = Field(default=3600.0, gt=0, le=7 * 86_400,
                                    description="Longest retry delay (s; at most a week)")
    retention_days: int = Field(
        default=DEFAULT_RETENTION_DAYS, ge=1, le=36_525,
        description="Records older than this may be pruned (at most a century: 36525)"
    )
    checkpoint_interval: int = Field(
        default=1000, ge=1, description="A checkpoint every this many records"
    )
    retain_results: bool = Field(
        default=True, description="Keep a copy of every job's results file for inclusion proofs"
    )

    @field_validator("hmac_key")
    @classmethod
    def _hmac_key(cls, value: SecretStr | None) -> SecretStr | None:
        """Used as given (its UTF-8 bytes, as before: a key already used keys the earlier
        records, so no key that worked is refused after an upgrade); a blank one is refused
        with every blank setting, and one shorter than :data:`MIN_KEY_CHARS` characters is
        warned about (:func:`_warn_if_short`)."""
        if value is not None:
            _warn_if_short(value.get_secret_value().encode("utf-8"),
                           "DNCGUARD_AUDIT_HMAC_KEY or [audit] hmac_key")
        return value

    @field_validator("export_url")
    @classmethod
    def _export_url(cls, value: str | None) -> str | None:
        """An http or https URL with a host (leave it out for none: a blank one is refused,
        as every blank setting is, since it turned export off without a word). A URL nothing
        could be delivered to is refused now, rather than every delivery failing later. The
        message never repeats the value: it may hold a password."""
        if value is None:
            return None
        value = value.strip()
        why = url_problem(value)
        if why:
            raise ValueError(f"the export URL {why} (DNCGUARD_AUDIT_EXPORT_URL or [audit] "
                             "export_url); give an http:// or https:// URL with a host, e.g. "
                             "https://receiver.example/dncguard")
        return value

    @field_validator("export_token")
    @classmethod
    def _export_token(cls, value: SecretStr | None) -> SecretStr | None:
        """Printable ASCII only: it is sent in an HTTP header, which carries nothing else (a
        token that could not be sent would stop every delivery). The message never repeats
        the token."""
        if value is None:
            return None
        token = value.get_secret_value()
        if not (token.isascii() and token.isprintable()):
            raise ValueError("the export token holds characters other than printable ASCII "
                             "(DNCGUARD_AUDIT_EXPORT_TOKEN or [audit] export_token); it is "
                             "sent in an HTTP header, which carries only those: give the "
                             "token exactly as the receiver issued it")
        return value

    @model_validator(mode="after")
    def _delays_in_order(self) -> AuditSettings:
        """The first retry delay is at most the longest: a larger one was silently cut to
        the longest (the backoff starts at ``min(base, max)``), so one of the two settings
        meant nothing. A longest delay given below the default first one lowers the first
        to it (the first was not given)."""
        start_within_bound(self, "export_base_delay", "export_max_delay", "DNCGUARD_AUDIT_")
        return self


def load_audit_settings(settings: Settings, **overrides: object) -> AuditSettings:
    return load_section(AuditSettings, settings, **overrides)


def audit_dir(settings: Settings) -> Path:
    return settings.home / "audit"


def key_path(settings: Settings) -> Path:
    return audit_dir(settings) / "hmac.key"


def hmac_key(settings: Settings, audit: AuditSettings) -> tuple[bytes, bool]:
    """The HMAC key and whether it was generated just now.

    A configured key wins. Otherwise the key in ``<home>/audit/hmac.key`` is used, created once
    (mode 0600, 32 random bytes as hex) when missing. Losing that file means new records cannot
    be matched to old ones by number: back it up with the database.
    """
    if audit.hmac_key is not None and audit.hmac_key.get_secret_value():
        return audit.hmac_key.get_secret_value().encode("utf-8"), False
    path = key_path(settings)
    if path.is_file():
        return _key_file(path), False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".hmac.key.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(secrets.token_hex(32) + "\n")
    try:
        os.link(tmp, path)  # atomic: a concurrent process either wins or sees a whole file
        created = True
    except FileExistsError:
        created = False
    finally:
        tmp.unlink(missing_ok=True)
    if created:
        logging.getLogger("dncguard.audit").warning(
            "no audit HMAC key configured: generated one in %s (mode 0600); back it up with the "
            "database or set DNCGUARD_AUDIT_HMAC_KEY", path)
    return _key_file(path), created


#: Fewest characters of an HMAC key, configured or in the key file, without a warning: a
#: generated one holds 64 (32 random bytes as hex). A shorter key can be guessed, and every
#: number with it.
MIN_KEY_CHARS = 32
_WARNED: set[str] = set()


def _warn_if_short(key: bytes, where: str) -> None:
    """A warning (once per process and place) when ``key`` is shorter than
    :data:`MIN_KEY_CHARS`: it is used, since the records already keyed with it are found
    only with it, but numbers keyed with a short key can be recovered by guessing it."""
    if len(key) < MIN_KEY_CHARS and where not in _WARNED:
        _WARNED.add(where)
        logging.getLogger("dncguard.audit").warning(
            "the audit HMAC key (%s) holds %d characters, fewer than %d: numbers keyed with "
            "it can be recovered by guessing it; a new installation should use a longer one "
            "(e.g. 'openssl rand -hex 32'; changing it means earlier records no longer match "
            "their numbers)", where, len(key), MIN_KEY_CHARS)


def _key_file(path: Path) -> bytes:
    """The key in ``path``: ASCII, surrounding whitespace aside (as it was always read;
    shorter than :data:`MIN_KEY_CHARS`: warned about). Anything else is refused
    (:class:`ConfigError`, one line): an empty or blank file would key every number with a
    key anyone knows, and one of other bytes is not a file dncguard wrote (it failed with a
    UnicodeDecodeError before)."""
    raw = path.read_bytes()
    key = raw.strip()
    why = ("is empty" if not key else "holds bytes other than ASCII" if not key.isascii()
           else None)
    if why:
        raise ConfigError(f"the audit HMAC key file {path} {why}: restore it from the backup "
                          "made with the database (or set DNCGUARD_AUDIT_HMAC_KEY); "
                          "deleting it makes a new key, under which earlier records no "
                          "longer match their numbers")
    _warn_if_short(key, str(path))
    return key
