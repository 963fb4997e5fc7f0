"""Settings: ``DNCGUARD_*`` environment variables over an optional TOML file over defaults.

Precedence, highest first:

1. values passed to :func:`load_settings` (the CLI's flags),
2. ``DNCGUARD_*`` environment variables,
3. the TOML file named by ``DNCGUARD_CONFIG``, else ``dncguard.toml`` inside the home,
4. built-in defaults.

Every ``DNCGUARD_`` variable is read whatever the case of its name (``dncguard_home`` is
``DNCGUARD_HOME``), and two that differ only by case are refused (:func:`environment_variable`).

``DNCGUARD_HOME`` (default: the platform's user data directory) holds all state: the SQLite
database, list snapshots and job files. Two homes never share anything. The home itself is read
from the environment or the arguments only, since it locates the TOML file.

Subsystems (CXone, rules, audit, ...) keep their own settings classes derived from
:class:`SectionSettings`; each reads ``DNCGUARD_<SECTION>_*`` variables and the ``[section]``
table of the same TOML file.

One :class:`Settings` object is built at the edge (the CLI, the server's ``create_app``, a
library caller) and handed down. It holds its sections: :meth:`Settings.section` loads a
section the first time it is asked for, from the TOML file as it was read when the settings
were loaded, and every later caller gets that same object. A file edited while a server runs
therefore changes nothing until a restart, rather than some sections and not others.
"""

from __future__ import annotations

import difflib
import importlib
import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from contextvars import ContextVar
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, ClassVar, Literal, TypeVar, Union, get_args, get_origin
from urllib.parse import urlsplit

import platformdirs
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from .errors import ConfigError, ContextError

SUPPORTED_REGIONS = ("US", "CA", "GB", "AU")

_toml_data: ContextVar[dict[str, Any] | None] = ContextVar("dncguard_toml_data", default=None)


class _TomlTableSource(PydanticBaseSettingsSource):
    """A settings source over one already-parsed TOML table."""

    def __init__(self, settings_cls: type[BaseSettings], table: str | None) -> None:
        super().__init__(settings_cls)
        data = _toml_data.get() or {}
        section = data.get(table, {}) if table else data
        if not isinstance(section, dict):
            raise ConfigError(_not_a_table(table or "", section))
        self._data: dict[str, Any] = dict(section)

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        names = set(self.settings_cls.model_fields)
        table = getattr(self.settings_cls, "toml_table", None)
        # the top level also holds the sections' tables, each checked by its own section
        allowed = names if table else (names - {"home", "config_file"}) | set(SECTION_CLASSES)
        unknown = sorted(k for k in self._data if k not in allowed)
        if unknown:
            raise ConfigError(_unknown_keys(table, unknown, allowed))
        if not table:  # a section that is not a table is refused with the file, not on use
            for name in sorted(set(SECTION_CLASSES) & set(self._data)):
                if not isinstance(self._data[name], dict):
                    raise ConfigError(_not_a_table(name, self._data[name]))
        for name in sorted(names & set(self._data)):
            why = _blank(self._data[name])
            if why:
                key = f"[{table}] {name}" if table else name
                fix = ("remove the empty item" if why != "is empty" else
                       f"remove it (for the default) or give {_what(name)}")
                raise ConfigError(f"{key} {why} in the settings file: {fix}")
        return {k: v for k, v in self._data.items() if k in names}


#: What a TOML value is called in an error (never the value: it may be a secret).
_TOML_KINDS = ((bool, "a boolean"), (int, "an integer"), (float, "a number"), (str, "a string"),
               (list, "an array"))


def _not_a_table(table: str, value: object) -> str:
    """The error for a section given as something else: an array of pairs was read as the
    table it spelt (``rules = [["enabled", false]]`` turned the rules off), anything else
    failed with a traceback."""
    kind = next((k for t, k in _TOML_KINDS if isinstance(value, t)), "a date or time")
    return (f"[{table}] must be a table (a [{table}] header followed by key = value lines), "
            f"not {kind}: {table} = ... in the settings file")


def _blank(value: object) -> str | None:
    """Why ``value`` is blank (empty or only whitespace, or a list holding such an item), or
    None. A blank value would stand for the default or for "off" without a word (an empty
    database URL for the default database, an empty host for every interface): refused."""
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if isinstance(value, str) and not value.strip():
        return "is empty"
    if isinstance(value, list | tuple) and any(_blank(v) == "is empty" for v in value
                                               if isinstance(v, str | SecretStr)):
        return "holds an empty item"
    return None


def _what(name: str) -> str:
    """What to give instead of a blank value of the setting (or variable) ``name``."""
    name = name.upper()
    if name.endswith("_URL"):
        return "a URL"
    return {"DNCGUARD_HOME": "a folder", "DNCGUARD_CONFIG": "the settings file's path",
            "DNCGUARD_USER": "a name"}.get(name, "a value")


#: ``DNCGUARD_`` variables that are not settings: the home and the settings file (which locate
#: the file), and the name recorded as who did something (:mod:`dncguard.identity`). Names
#: under :data:`TEST_ENV_PREFIX` belong to dncguard's own test suite.
NOT_SETTINGS = frozenset({"DNCGUARD_HOME", "DNCGUARD_CONFIG", "DNCGUARD_USER"})
TEST_ENV_PREFIX = "DNCGUARD_TEST_"


class _EnvironmentCheck(PydanticBaseSettingsSource):
    """Reads nothing; refuses a variable with the class's prefix that no setting reads. A
    misspelt variable (``DNCGUARD_SERVER_METRICS_PUBLC``) would otherwise leave its setting
    at the default without a word, as a misspelt key of the file would. The core settings
    leave the sections' variables to the sections (each checks its own when it is built)."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        prefix = str(self.settings_cls.model_config.get("env_prefix") or "").upper()
        if not prefix:
            return {}
        known = {prefix + name.upper() for name in self.settings_cls.model_fields}
        others: tuple[str, ...] = ()
        if prefix == "DNCGUARD_":
            known |= NOT_SETTINGS
            others = (TEST_ENV_PREFIX, *(f"DNCGUARD_{s.upper()}_" for s in SECTION_CLASSES))
        _refuse_case_twins(prefix)
        blank = sorted(k for k, v in os.environ.items() if k.upper() in known and _blank(v))
        if blank:  # a blank variable still overrides the file's value: refused, not ignored
            raise ConfigError(f"{blank[0]} is empty: unset it or give {_what(blank[0])}")
        unknown = sorted(k for k in os.environ if (u := k.upper()).startswith(prefix)
                         and u not in known and not (others and u.startswith(others)))
        if unknown:
            hints = [m if len(unknown) == 1 else f"{m} for {k}" for k in unknown
                     if (m := _env_hint(k.upper(), known))]
            hint = f" (did you mean {', '.join(hints)}?)" if hints else ""
            raise ConfigError(f"unknown environment variable{'s' if len(unknown) > 1 else ''} "
                              f"{', '.join(unknown)}{hint}: no setting reads "
                              f"{'them' if len(unknown) > 1 else 'it'}; unset "
                              f"{'them' if len(unknown) > 1 else 'it'} or fix the name")
        return {}


def _refuse_case_twins(prefix: str) -> None:
    """Refuse two variables under ``prefix`` whose names differ only by case
    (``DNCGUARD_CHUNK_SIZE=5`` and ``dncguard_chunk_size=7``): every variable is read whatever
    its case, so one of them would win by the order of the environment, without a word."""
    seen: dict[str, list[str]] = {}
    for key in os.environ:
        if key.upper().startswith(prefix):
            seen.setdefault(key.upper(), []).append(key)
    twins = sorted(sorted(names) for names in seen.values() if len(names) > 1)
    if twins:
        raise ConfigError(f"{' and '.join(twins[0])} are both set: variables are read whatever "
                          "the case of their names, so they name the same setting; unset one")


def environment_variable(name: str) -> str | None:
    """The ``DNCGUARD_`` variable ``name`` (upper case) whatever the case it is set in, as
    the settings read theirs (None: unset). Two spellings of it that differ only by case are
    refused (:func:`_refuse_case_twins`), and so is a blank one, not read as unset (an empty
    ``DNCGUARD_HOME`` used the default home without a word)."""
    found = [k for k in os.environ if k.upper() == name]
    if len(found) > 1:
        _refuse_case_twins(name)
    value = os.environ[found[0]] if found else None
    if value is not None and _blank(value):
        raise ConfigError(f"{found[0]} is empty: unset it or give {_what(name)}")
    return value


def _env_hint(name: str, known: set[str]) -> str | None:
    """A known variable close to ``name``, or a section's prefix close to its start (the
    section's own names are checked when it is built)."""
    close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.75)
    if close:
        return close[0]
    for section in SECTION_CLASSES:
        prefix = f"DNCGUARD_{section.upper()}_"
        head = name[:len(prefix)]
        if difflib.SequenceMatcher(None, head, prefix).ratio() >= 0.75:
            return prefix + name[len(prefix):]
    return None


def _unknown_keys(table: str | None, unknown: list[str], allowed: set[str]) -> str:
    """The error for keys of the settings file no setting reads: a misspelt key would
    otherwise leave its setting at the default without a word."""
    where = f"[{table}]" if table else "the top level"
    what = ", ".join(repr(k) for k in unknown)
    hints = [f"{k!r} -> {m[0]!r}" for k in unknown
             if (m := difflib.get_close_matches(k, sorted(allowed), n=1, cutoff=0.75))]
    hint = f" (did you mean {', '.join(hints)}?)" if hints else ""
    return (f"unknown setting{'s' if len(unknown) > 1 else ''} in {where} of the settings "
            f"file: {what}{hint}; known: {', '.join(sorted(allowed))}")


def _input_problem(annotation: Any, value: Any) -> str | None:
    """Why ``value`` (as a source gave it, before pydantic reads it) is refused for a field of
    type ``annotation``, or None: a blank string (see :func:`_blank`; a list's blank items
    are the settings file's to refuse, and the field's own validator's), and a boolean where
    a number is expected, at any depth (``margin_minutes = true`` was read as 1,
    ``max_age_days = {US-FL = true}`` as one day). Environment variables arrive as text,
    which pydantic reads as before."""
    if _blank(value) == "is empty":
        return "is empty: give a value or leave the setting out (for its default)"
    if not _bool_for_number(annotation, value):
        return None
    return ("is true or false, not a number: give a number" if isinstance(value, bool) else
            "holds true or false where a number is expected: give a number")


def _bool_for_number(annotation: Any, value: Any) -> bool:
    """Whether ``value`` holds a bool where ``annotation`` expects an int or float."""
    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    origin, args = get_origin(annotation), get_args(annotation)
    if origin in (Union, UnionType):
        if isinstance(value, bool):
            return bool not in args and any(_bool_for_number(a, value) for a in args)
        return any(_bool_for_number(a, value) for a in args)
    if isinstance(value, bool):
        return annotation in (int, float)
    if isinstance(value, dict) and origin in (dict, Mapping) and len(args) == 2:
        return any(_bool_for_number(args[1], v) for v in value.values())
    if isinstance(value, list | tuple) and origin in (list, tuple, set, frozenset, Sequence):
        if origin is tuple and args and args[-1] is not Ellipsis:
            return any(_bool_for_number(a, v) for a, v in zip(args, value, strict=False))
        return bool(args) and any(_bool_for_number(args[0], v) for v in value)
    return False


def _refuse_odd_input(model: type[BaseModel], value: Any, info: ValidationInfo) -> Any:
    """The shared before-validator of :class:`SectionSettings` and :class:`CampaignProfile`
    (see :func:`_input_problem`)."""
    if info.field_name is not None:
        why = _input_problem(model.model_fields[info.field_name].annotation, value)
        if why:
            raise ValueError(why)
    return value


class SectionSettings(BaseSettings):
    """Base of every settings class: environment over the TOML table over defaults.

    Every value is read strictly enough that nothing stands for something else: no float
    takes ``inf`` or ``nan`` (``allow_inf_nan``: an infinite age made every check fail with
    an OverflowError, ``nan`` compares false with everything), no number takes a boolean,
    and no value is blank (:func:`_input_problem`). A blank environment variable or key of
    the file (or item of a list in the file) is refused by the sources, naming it; the
    validator below refuses the rest (arguments)."""

    model_config = SettingsConfigDict(allow_inf_nan=False)
    toml_table: ClassVar[str | None] = None

    @field_validator("*", mode="before")
    @classmethod
    def _strict_input(cls, value: Any, info: ValidationInfo) -> Any:
        return _refuse_odd_input(cls, value, info)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, _EnvironmentCheck(settings_cls), env_settings,
                _TomlTableSource(settings_cls, cls.toml_table))


#: The longest calling window any jurisdiction's rules give, in minutes: 08:00-21:00 (US
#: federal, GB and most states), 13 hours. A campaign's margin must be shorter: one this long
#: closes every legal window, so every check of the campaign would defer with no moment to
#: call again (tests/test_settings_review_campaigns.py holds it to the rules' data).
LONGEST_LEGAL_WINDOW_MINUTES = 13 * 60


class CampaignProfile(BaseModel):
    """A named campaign's defaults, from ``[campaigns.NAME]`` in the TOML file."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    purpose: Literal["telemarketing", "informational", "collections"] = "telemarketing"
    call_type: Literal["manual", "autodialed", "prerecorded"] = "manual"
    lists: list[str] | None = Field(
        default=None, description="Only these DNC lists and sources are checked (default: "
        "all); wireless lists, consent and attempts still apply")
    skip_wireless: list[str] = Field(
        default_factory=list, description="Wireless lists the rules do not read for this "
        "campaign (by name; default: every wireless list applies)")
    calling_hours: tuple[str, str] | None = Field(
        default=None, description="Narrower local window, e.g. ['09:00', '20:00']"
    )
    margin_minutes: int = Field(default=0, ge=0, le=LONGEST_LEGAL_WINDOW_MINUTES - 1,
                                description="Stop this long before a window ends: shorter "
                                "than the campaign's calling_hours, and at most 779 (shorter "
                                "than 08:00-21:00, the longest legal window of any "
                                "jurisdiction: a longer margin closes every one)")

    @field_validator("*", mode="before")
    @classmethod
    def _strict_input(cls, value: Any, info: ValidationInfo) -> Any:
        return _refuse_odd_input(cls, value, info)

    @field_validator("lists")
    @classmethod
    def _some_lists(cls, value: list[str] | None) -> list[str] | None:
        """``lists = []`` would check no DNC list at all, the internal opt-outs included,
        while looking like a setting that narrows them: refused (leave ``lists`` out to check
        every list)."""
        if value is not None and not value:
            raise ValueError("an empty list checks no DNC list at all, the company's own "
                             "opt-outs included; name the lists and sources to check, or "
                             "leave lists out to check every one")
        return value

    @field_validator("calling_hours")
    @classmethod
    def _hours(cls, value: tuple[str, str] | None) -> tuple[str, str] | None:
        """Read when the settings load, by the parser the rules read it with: hours the rules
        cannot read (``25:00``, ``9am``, an end before the start) would otherwise be found
        only when a number is checked, and fail every check of the campaign."""
        if value is not None:
            # (imported here: the rules import these settings; the schema imports nothing)
            from .sources.rules.schema import Window

            try:
                Window.parse(f"{value[0]}-{value[1]}")
            except ValueError as exc:
                raise ValueError(f"{exc}; write it as two local times HH:MM, the start "
                                 "before the end, e.g. [\"09:00\", \"20:00\"]") from None
        return value

    @model_validator(mode="after")
    def _margin_inside_hours(self) -> CampaignProfile:
        """A margin at least as long as the campaign's own window leaves no minute of it:
        every check would defer with no next moment (``calling_hours = ["09:00", "10:00"]``
        with ``margin_minutes = 60``)."""
        if self.calling_hours is not None and self.margin_minutes:
            from .sources.rules.schema import Window  # (see _hours)

            window = Window.parse(f"{self.calling_hours[0]}-{self.calling_hours[1]}")
            start = window.start.hour * 60 + window.start.minute
            end = 24 * 60 if window.end is None else window.end.hour * 60 + window.end.minute
            if self.margin_minutes >= end - start:
                raise ValueError(
                    f"margin_minutes {self.margin_minutes} is not shorter than calling_hours "
                    f"{window} ({end - start} minutes): no minute of the window would be left "
                    "to call in; give a margin shorter than the window, or wider "
                    "calling_hours")
        return self


#: How a URL starts: its scheme and ``://`` (SQLAlchemy's ``make_url`` reads nothing else).
_URL_START = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://")


def start_within_bound(section: BaseModel, start: str, bound: str, prefix: str) -> None:
    """Hold ``section``'s ``start`` setting to at most its ``bound`` (a concurrency and its
    maximum, a first retry delay and the longest). A start given above its bound is refused
    (ValueError naming both, as ``prefix`` + the name spells their variables): it was cut to
    the bound without a word, so one of the two meant nothing. A bound given below the
    default start lowers the start to it (the start was not given: nothing said is
    dropped)."""
    low, high = getattr(section, start), getattr(section, bound)
    if low <= high:
        return
    if start not in section.model_fields_set:
        object.__setattr__(section, start, high)
        return
    raise ValueError(f"{start} ({prefix}{start.upper()}) {low:g} is above {bound} "
                     f"({prefix}{bound.upper()}) {high:g}; lower {start} or raise {bound}")


def url_problem(url: str) -> str | None:
    """What keeps ``url`` from being an http(s) URL with a host, or None: the one check of
    every remote endpoint a section names (the audit export URL, the http-batch base and
    token URLs, the CXone issuer and API endpoint). A message built on it never repeats the
    URL: it may hold a password."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "is not a URL"
    try:
        _ = parts.port  # raises on a port that is not a number from 0 to 65535
    except ValueError:
        return "has a port that is not a number from 0 to 65535"
    if parts.scheme.lower() not in ("http", "https"):
        return (f"has the scheme {parts.scheme!r}, not http or https" if parts.scheme and
                "://" in url else "has no http:// or https:// scheme")
    if not parts.hostname:
        return "has no host"
    return None


def endpoint_url(value: str | None, what: str, variable: str, example: str) -> str | None:
    """``value`` as is when it is an http(s) URL with a host (:func:`url_problem`), else
    ValueError naming ``what``, its ``variable`` and an ``example``: an endpoint nothing
    could reach is refused when the settings load, not found by every request failing."""
    if value is None:
        return None
    why = url_problem(value)
    if why:
        raise ValueError(f"the {what} {why} ({variable}); give an http:// or https:// URL "
                         f"with a host, e.g. {example}")
    return value


#: The ``default`` campaign when the settings configure none.
_BUILT_IN_DEFAULT = CampaignProfile()


class Settings(SectionSettings):
    """Core settings. Environment variable names are ``DNCGUARD_`` + the field name."""

    model_config = SettingsConfigDict(env_prefix="DNCGUARD_", extra="ignore")

    home: Path = Field(default_factory=lambda: Path(platformdirs.user_data_dir("dncguard")))
    config_file: Path | None = Field(default=None, description="The TOML file that was read")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default sqlite:///<home>/dncguard.db"
    )
    default_region: str = Field(default="US", description="Region for numbers without one")
    chunk_size: int = Field(default=50_000, ge=1, description="Numbers per pipeline chunk")
    concurrency: int = Field(default=1, ge=1, description="Slices of a file checked at once "
                             "(1: one checked while the next is read and the one before "
                             "written; more costs memory, and on 2 cores, time)")
    keep_snapshots: int = Field(default=3, ge=1, description="Snapshots kept per list")
    object_store_url: str | None = Field(
        default=None, description="s3://BUCKET/PREFIX: job files go to this S3-compatible "
        "store instead of the (PostgreSQL) database; credentials and endpoint from AWS_*")
    progress_min_rows: int = Field(default=5_000, ge=0, description="Show a progress bar above")
    campaigns: dict[str, CampaignProfile] = Field(default_factory=dict)

    # the TOML file's contents as read when these settings were loaded (None: not read yet),
    # the config file they belong to, and the sections loaded from them
    _toml: dict[str, Any] | None = PrivateAttr(default=None)
    _toml_of: Path | None = PrivateAttr(default=None)
    _sections: dict[type[SectionSettings], SectionSettings] = PrivateAttr(default_factory=dict)

    @field_validator("default_region")
    @classmethod
    def _region(cls, value: str) -> str:
        value = value.upper()
        if value not in SUPPORTED_REGIONS:
            raise ValueError(f"must be one of {', '.join(SUPPORTED_REGIONS)}")
        return value

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str | None) -> str | None:
        """Something that cannot be a URL (no ``scheme://``) is refused now, and never
        repeated: it may be a password pasted into the wrong variable."""
        if value is not None and not _URL_START.match(value):
            raise ValueError(f"is not a URL ({len(value)} characters, not shown: it may be a "
                             "secret); set DNCGUARD_DATABASE_URL or database_url to a "
                             "SQLAlchemy URL such as postgresql+psycopg://USER:PASSWORD@HOST:"
                             "PORT/DB or sqlite:///PATH")
        return value

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'dncguard.db'}"

    @property
    def lists_dir(self) -> Path:
        return self.home / "lists"

    def campaign(self, name: str) -> CampaignProfile:
        """The profile of that name: ``default`` (the built-in defaults unless
        ``[campaigns.default]`` overrides them) or a configured ``[campaigns.NAME]``.
        Any other name is refused (:class:`ContextError`): a typo must not quietly judge a
        campaign by the defaults."""
        profile = self.campaigns.get(name)
        if profile is not None:
            return profile
        if name == "default":  # one object, as a configured profile is: caches key on it
            return _BUILT_IN_DEFAULT
        known = ", ".join(["default", *sorted(k for k in self.campaigns if k != "default")])
        raise ContextError("campaign", name, f"one of the configured campaigns: {known}",
                           f"no campaign profile named {name!r}; configured: {known} "
                           "([campaigns.NAME] in the settings file)")

    def toml(self) -> dict[str, Any]:
        """The settings file's tables, read once (when these settings were loaded, or on
        first use for settings built directly); ``{}`` without a file."""
        if self._toml is None or self._toml_of != self.config_file:
            self._toml = _read_toml(self.config_file) if self.config_file else {}
            self._toml_of = self.config_file
            self._sections = {}
        return self._toml

    def section(self, cls: type[S]) -> S:
        """The ``cls`` section of these settings, loaded once and shared by every caller."""
        data = self.toml()
        found = self._sections.get(cls)
        if found is None:  # two threads may both build it: the first one stored wins
            found = self._sections.setdefault(cls, _build_section(cls, data))
        return found  # type: ignore[return-value]

    def __copy__(self) -> Settings:
        copied = super().__copy__()
        copied._sections = dict(self._sections)  # the copy's own cache, same sections
        return copied

    def __eq__(self, other: object) -> bool:
        """Equal fields (the sections loaded so far do not count)."""
        if not isinstance(other, Settings):
            return NotImplemented
        return type(self) is type(other) and self.__dict__ == other.__dict__


S = TypeVar("S", bound=SectionSettings)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc


#: A query parameter whose value is a secret (``?token=``, ``?password=``, ``&sig=``).
_SECRET_PARAM = re.compile(
    r"([?&;](?:[^=&;#]*(?:pass|pwd|token|secret|key|sig|auth|credential)[^=&;#]*)=)"
    r"([^&;#]*)", re.IGNORECASE)


def mask_url(text: str) -> str:
    """A URL with its secrets replaced by ``***``: the password of its user part (which, as
    SQLAlchemy reads a database URL, runs to the first ``@`` and may hold ``/``, ``?`` or
    ``#``), the whole user part of an http(s) URL (``https://TOKEN@host``: a token, not a
    name), and the value of a query parameter named like a secret (``?token=``,
    ``?password=``). Other text as is."""
    scheme, sep, rest = text.partition("://")
    if not sep or not scheme:
        return text
    user, at, after = rest.partition("@")
    if at and ":" in user:  # name:password@host
        rest = f"{user.split(':', 1)[0]}:***@{after}"
    elif at and "/" not in user and "?" not in user and \
            scheme.lower() in ("http", "https"):
        rest = f"***@{after}"
    return _SECRET_PARAM.sub(lambda m: f"{m.group(1)}***", f"{scheme}://{rest}")


def _config_path(home: Path) -> Path | None:
    named = environment_variable("DNCGUARD_CONFIG")
    if named:
        path = Path(named).expanduser()
        if not path.is_file():
            raise ConfigError(f"DNCGUARD_CONFIG names {path}, which does not exist")
        return path
    default = home / "dncguard.toml"
    return default if default.is_file() else None


def _explain(exc: ValueError) -> str:
    """A settings error in one line: each problem as ``field: why`` (pydantic's own text
    spans several lines and repeats the input, which may be a secret)."""
    if not isinstance(exc, ValidationError):
        return str(exc)
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"])
        why = str(err["msg"]).removeprefix("Value error, ")
        parts.append(f"{where}: {why}" if where else why)
    return "; ".join(parts)


def _build_section(cls: type[S], data: dict[str, Any], **overrides: Any) -> S:
    token = _toml_data.set(data)
    try:
        return cls(**overrides)
    except ValueError as exc:
        raise ConfigError(f"invalid [{cls.toml_table}] settings: {_explain(exc)}") from exc
    finally:
        _toml_data.reset(token)


def load_section(cls: type[S], settings: Settings, **overrides: Any) -> S:
    """A subsystem's settings from the same environment and TOML file as ``settings``: the
    section ``settings`` holds (:meth:`Settings.section`), or with ``overrides`` (a command's
    flags) a new one built from the same file contents."""
    if not overrides:
        return settings.section(cls)
    return _build_section(cls, settings.toml(), **overrides)


def load_settings(**overrides: Any) -> Settings:
    """Build the effective settings (see the module docstring for precedence)."""
    if isinstance(overrides.get("home"), str) and _blank(overrides["home"]):
        raise ConfigError("the home folder given is empty: give a folder")
    home_value = overrides.get("home") or environment_variable("DNCGUARD_HOME")
    home = Path(home_value).expanduser() if home_value else Settings.model_fields[
        "home"
    ].get_default(call_default_factory=True)
    path = _config_path(Path(home))
    data = _read_toml(path) if path else {}
    for key, variable in (("home", "DNCGUARD_HOME"), ("config_file", "DNCGUARD_CONFIG")):
        if key in data:  # the file is found through them, so it cannot set them
            raise ConfigError(f"{key} cannot be set in the settings file {path} (the file is "
                              f"found through it): set {variable} instead")
    token = _toml_data.set(data)
    try:
        settings = Settings(**{**overrides, "home": home, "config_file": path})
    except ValueError as exc:
        raise ConfigError(f"invalid settings: {_explain(exc)}") from exc
    finally:
        _toml_data.reset(token)
    settings._toml, settings._toml_of = data, path
    return settings


#: Subsystem settings shown by ``dncguard config show``: section name -> "module:Class".
SECTION_CLASSES: dict[str, str] = {
    "audit": "dncguard.audit.settings:AuditSettings",
    "cxone": "dncguard.sources.cxone.settings:CxoneSettings",
    "http_batch": "dncguard.sources.remote.http_batch:HttpBatchSettings",
    "prefilter": "dncguard.sources.remote.prefilter:PrefilterSettings",
    "rules": "dncguard.sources.rules.settings:RulesSettings",
    "server": "dncguard.server.settings:ServerSettings",
}


def all_sections(settings: Settings) -> dict[str, SectionSettings]:
    """Every registered subsystem's effective settings (each loaded once, see
    :meth:`Settings.section`); an invalid one is refused with :class:`ConfigError`."""
    out: dict[str, SectionSettings] = {}
    for name, target in SECTION_CLASSES.items():
        module, cls_name = target.split(":")
        cls = getattr(importlib.import_module(module), cls_name)
        out[name] = settings.section(cls)
    return out
