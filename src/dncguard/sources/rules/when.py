"""When a number may be called: its legal windows over a period, and the one document that
``dncguard rules when --json`` prints and ``GET /v1/rules/when`` answers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field

from ...models import Reason
from ..protocol import CheckContext
from ._zones import Location


class LocalWindow(BaseModel):
    zone: str
    start: datetime
    end: datetime


class LegalWindow(BaseModel):
    start: datetime = Field(description="UTC")
    end: datetime = Field(description="UTC")
    local: list[LocalWindow] = Field(description="The same window in every candidate zone")


class WhenOut(BaseModel):
    """The legal windows of a number, as the CLI prints them and the API answers them."""

    model_config = ConfigDict(populate_by_name=True)

    e164: str
    ruleset: str | None
    timezone: str = Field(description="Candidate IANA zones, ';'-joined")
    zones: list[str]
    how: str = Field(description="How the zones were found, e.g. npa-table+zip")
    states: list[str]
    jurisdictions: list[str]
    purpose: str
    call_type: str = Field(alias="callType")
    at: datetime = Field(description="Start of the period searched (UTC)")
    days: int
    windows: list[LegalWindow] = Field(description="Legal windows under the time rules")
    reasons: list[Reason] = Field(description="Why a call at `at` would not be allowed now "
                                              "(rules only; empty when the rules are off)")
    rules_enabled: bool = Field(alias="rulesEnabled",
                                description="Whether /v1/check applies the rules on this server")


@dataclass(frozen=True)
class When:
    """The legal windows of one number over a period (:meth:`RulesCheck.when`)."""

    location: Location
    jurisdictions: tuple[str, ...]
    windows: list[tuple[datetime, datetime]]
    reasons: list[Reason]

    def document(self, e164: str, *, ruleset: str | None, ctx: CheckContext, days: int,
                 rules_enabled: bool) -> WhenOut:
        """The document of these windows (``ctx.at`` is the start of the period)."""
        zones = [ZoneInfo(z) for z in self.location.zones]
        return WhenOut(
            e164=e164, ruleset=ruleset, timezone=";".join(self.location.zones),
            zones=list(self.location.zones), how=self.location.how,
            states=list(self.location.states), jurisdictions=list(self.jurisdictions),
            purpose=ctx.purpose, call_type=ctx.call_type, at=ctx.at, days=days,
            windows=[LegalWindow(start=a, end=b, local=[
                LocalWindow(zone=z.key, start=a.astimezone(z), end=b.astimezone(z))
                for z in zones]) for a, b in self.windows],
            reasons=self.reasons, rules_enabled=rules_enabled)
