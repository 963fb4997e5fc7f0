"""Load and validate the rules data: one YAML file per jurisdiction plus zone data.

:func:`load_ruleset` reads ``dncguard/sources/rules/data`` (or another folder, e.g. in tests),
validates every file against :mod:`dncguard.sources.rules.schema` and returns a :class:`Ruleset`.
A malformed file raises :class:`RulesDataError` naming the file and the field.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ValidationError

from ...errors import ConfigError
from .schema import (
    OUTCOMES,
    CallingWindowRule,
    FrequencyCapRule,
    HolidaySet,
    RuleBase,
    RulesetMeta,
    RulesFile,
    ZoneData,
    outcome_key,
)

R = TypeVar("R", bound=RuleBase)
M = TypeVar("M", bound=BaseModel)


class RulesDataError(ConfigError):
    """A rules data file is missing or malformed."""


@dataclass(frozen=True)
class Ruleset:
    """Every jurisdiction's rules, the zone data and the version verdicts record."""

    version: str
    files: dict[str, RulesFile]
    zones: ZoneData
    holiday_sets: dict[str, HolidaySet] = field(default_factory=dict)

    def jurisdictions(self) -> list[str]:
        return sorted(self.files)

    def rules(self, jurisdiction: str) -> list[RuleBase]:
        f = self.files.get(jurisdiction)
        return list(f.rules) if f else []

    def of_kind(self, kind: type[R], jurisdictions: Iterable[str]) -> list[tuple[str, R]]:
        """(jurisdiction, rule) pairs of one kind from these jurisdictions, in order."""
        out: list[tuple[str, R]] = []
        for j in jurisdictions:
            out.extend((j, r) for r in self.rules(j) if isinstance(r, kind))
        return out


def _parse(model: type[M], data: Any, where: str) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(file)'}: {e['msg']}" for e in exc.errors()
        )
        raise RulesDataError(f"{where}: {problems}") from None


# libyaml's safe loader when PyYAML has it (several times faster: the rules load on every run)
_SafeLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _read_yaml(text: str, where: str) -> Any:
    try:
        return yaml.load(text, Loader=_SafeLoader)
    except yaml.YAMLError as exc:
        raise RulesDataError(f"{where}: not valid YAML: {exc}") from None


def _check_zones(names: Iterable[str], where: str, known: set[str] | None = None) -> None:
    """Every name is a time zone this machine knows. ``known``: names already shown to be,
    shared between calls (the zone tables repeat a few dozen names over a thousand entries,
    and ``ZoneInfo`` keeps only the last eight it made unless they are held, so each repeat
    read its file again)."""
    seen = known if known is not None else set()
    for name in names:
        if name in seen:
            continue
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise RulesDataError(f"{where}: unknown time zone {name!r}") from None
        seen.add(name)


def _check_outcomes(rule: FrequencyCapRule, where: str) -> None:
    """Every ``cooldown_after`` names an attempt outcome (:data:`~.schema.OUTCOMES`, any
    case): a cooldown after an outcome no attempt can record would never start."""
    bad = [o for o in rule.cooldown_after if outcome_key(o) not in OUTCOMES]
    if bad:
        raise RulesDataError(f"{where}: rule {rule.id}: cooldown_after {bad[0]!r} is not an "
                             f"attempt outcome; the outcomes are {', '.join(OUTCOMES)}")


def _check_applies(rf: RulesFile, files: dict[str, RulesFile]) -> None:
    """A file's ``applies`` names existing rules of its country, and all of them: the engine
    applies every rule of the country to the country's numbers, so a list leaving one out
    would say less than the verdicts do."""
    if not rf.applies:
        return
    where = f"{rf.jurisdiction}.yaml: applies"
    country = rf.jurisdiction.split("-")[0]
    have = {f"{country}:{r.id}" for r in files[country].rules} if country in files else set()
    listed = {ref for group in rf.applies for ref in group.rules}
    unknown = sorted(listed - have)
    if unknown:
        raise RulesDataError(f"{where}: no such rule: {', '.join(unknown)}")
    missing = sorted(have - listed)
    if missing:
        raise RulesDataError(
            f"{where}: {', '.join(missing)} apply to {rf.jurisdiction} numbers (every "
            f"{country} rule does) but are not listed with the citation that makes them apply")


def parse_texts(texts: dict[str, str]) -> Ruleset:
    """Build a ruleset from file name -> YAML text (``_ruleset.yaml``, ``_zones.yaml``, ...)."""
    if "_ruleset.yaml" not in texts or "_zones.yaml" not in texts:
        raise RulesDataError("rules data needs _ruleset.yaml and _zones.yaml")
    meta = _parse(RulesetMeta, _read_yaml(texts["_ruleset.yaml"], "_ruleset.yaml"),
                  "_ruleset.yaml")
    zone_data = _read_yaml(texts["_zones.yaml"], "_zones.yaml")
    if isinstance(zone_data, dict) and "ca_postal_provinces" in zone_data:
        raise RulesDataError("_zones.yaml: ca_postal_provinces is no longer read (the provinces "
                             "of Canadian postal codes come with dncguard: dncguard.places); "
                             "remove it")
    zones = _parse(ZoneData, zone_data, "_zones.yaml")
    known: set[str] = set()
    for table in (zones.multi_timezone_npas, zones.subdivision_zones, zones.region_zones,
                  zones.zip3_zones):
        for zone_list in table.values():
            _check_zones(zone_list, "_zones.yaml", known)
    files: dict[str, RulesFile] = {}
    sets: dict[str, HolidaySet] = {}
    for name in sorted(texts):
        if name.startswith("_"):
            continue
        data = _read_yaml(texts[name], name)
        rf = _parse(RulesFile, data, name)
        if name != f"{rf.jurisdiction}.yaml":
            raise RulesDataError(f"{name}: holds jurisdiction {rf.jurisdiction}; "
                                 f"the file must be named {rf.jurisdiction}.yaml")
        for rule in rf.rules:
            if isinstance(rule, CallingWindowRule):
                _check_zones(rule.extra_zones, f"{name}: rule {rule.id}", known)
            elif isinstance(rule, FrequencyCapRule):
                _check_outcomes(rule, name)
        for set_name, hs in rf.holiday_sets.items():
            if set_name in sets and sets[set_name] != hs:
                raise RulesDataError(f"{name}: holiday set {set_name} defined twice differently")
            sets[set_name] = hs
        files[rf.jurisdiction] = rf
    for rf in files.values():
        _check_applies(rf, files)
    digest = hashlib.sha256()
    for name in sorted(texts):
        digest.update(name.encode())
        digest.update(texts[name].encode())
    version = f"{meta.version}+{digest.hexdigest()[:8]}"
    return Ruleset(version=version, files=files, zones=zones, holiday_sets=sets)


def load_ruleset(folder: Path | None = None) -> Ruleset:
    """The packaged ruleset (cached), or the one in ``folder``.

    Another folder must hold a file for every jurisdiction dncguard ships (it is an edited
    copy of the packaged folder): a folder without ``US.yaml`` or ``US-FL.yaml`` would judge
    those numbers by no federal or Florida rule at all, and a file spelt ``US.yml`` would be
    skipped in the same silence. Both are refused, naming the files."""
    if folder is None:
        return _packaged()
    if not folder.is_dir():
        raise RulesDataError(f"rules data folder {folder} does not exist or is not a folder")
    names = sorted(p.name for p in folder.iterdir())
    misnamed = [n for n in names if n.lower().endswith((".yaml", ".yml"))
                and not n.endswith(".yaml")]
    if misnamed:
        raise RulesDataError(f"rules data folder {folder}: {', '.join(misnamed)}: rules files "
                             "end in .yaml (lower case); rename them")
    texts = {n: (folder / n).read_text("utf-8") for n in names if n.endswith(".yaml")}
    missing = sorted(f"{j}.yaml" for j in _packaged().files if f"{j}.yaml" not in texts)
    if missing:
        raise RulesDataError(
            f"rules data folder {folder} has no {', '.join(missing)}: another rules folder "
            "must hold every jurisdiction dncguard judges, or their numbers would meet none "
            f"of their rules; copy the missing files from {_packaged_folder()} and edit them")
    return parse_texts(texts)


def _packaged_folder() -> Any:
    return resources.files("dncguard.sources.rules").joinpath("data")


@cache
def _packaged() -> Ruleset:
    root = _packaged_folder()
    texts = {p.name: p.read_text("utf-8") for p in root.iterdir() if p.name.endswith(".yaml")}
    return parse_texts(texts)
