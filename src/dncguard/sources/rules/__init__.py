"""Regulatory rules as versioned data: calling windows, holidays, registries, caps, consent.

>>> from dncguard.sources.rules import RulesCheck  # doctest: +SKIP
>>> check = RulesCheck(settings)  # doctest: +SKIP
>>> check.versions().ruleset  # doctest: +SKIP
'2026.11.0+83dbb4d4'

See docs/rules.md for the data format and docs/reason-codes.md (section Rules) for the reason codes.
"""

from __future__ import annotations

from ._loader import RulesDataError, Ruleset, load_ruleset, parse_texts
from ._zones import Location, resolve_location, resolve_zones, zone_in_country
from .codes import RULE_CODES
from .settings import EmergencyDeclaration, RulesSettings
from .source import RulesCheck, load_emergencies
from .stores import AttemptStore, ConsentStore
from .when import When

__all__ = [
    "RULE_CODES",
    "AttemptStore",
    "ConsentStore",
    "EmergencyDeclaration",
    "Location",
    "RulesCheck",
    "RulesDataError",
    "RulesSettings",
    "Ruleset",
    "When",
    "load_emergencies",
    "load_ruleset",
    "parse_texts",
    "resolve_location",
    "resolve_zones",
    "zone_in_country",
]
