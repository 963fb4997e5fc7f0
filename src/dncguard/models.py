"""The verdict schema shared by the CLI, output files and the HTTP API.

A verdict answers "may we dial this number at this instant, and if not, why and when?".
Every reason carries a stable code (see ``docs/reason-codes.md``), the source and list that
produced it, the rule and its citation where one applies, and a human-readable detail.
"""

from __future__ import annotations

import builtins
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class Decision(StrEnum):
    """What the dialer may do with a number. Ordered here from least to most severe."""

    ALLOW = "allow"
    DEFER = "defer"
    ERROR = "error"
    BLOCK = "block"
    INVALID = "invalid"

    @property
    def severity(self) -> int:
        return _SEVERITY[self]

    @classmethod
    def most_severe(cls, decisions: list[Decision]) -> Decision:
        """The most severe decision (invalid > block > error > defer > allow)."""
        if not decisions:
            return cls.ALLOW
        return max(decisions, key=lambda d: _SEVERITY[d])


_SEVERITY = {
    Decision.ALLOW: 0,
    Decision.DEFER: 1,
    Decision.ERROR: 2,
    Decision.BLOCK: 3,
    Decision.INVALID: 4,
}


class ReasonCode(StrEnum):
    """Stable reason codes. Never renamed or reused; documented in docs/reason-codes.md."""

    # input
    INVALID_NUMBER = "INVALID_NUMBER"
    UNSUPPORTED_REGION = "UNSUPPORTED_REGION"
    MALFORMED_ROW = "MALFORMED_ROW"
    DUPLICATE = "DUPLICATE"
    CONTEXT_INVALID = "CONTEXT_INVALID"
    # lists and sources
    DNC_INTERNAL = "DNC_INTERNAL"
    DNC_NATIONAL = "DNC_NATIONAL"
    DNC_STATE = "DNC_STATE"
    DNC_CXONE = "DNC_CXONE"
    DNC_REMOTE = "DNC_REMOTE"
    DNC_HASHED = "DNC_HASHED"
    DNC_PREFIX = "DNC_PREFIX"
    DNC_LITIGATOR = "DNC_LITIGATOR"
    SOURCE_ERROR = "SOURCE_ERROR"
    # our own storage
    AUDIT_UNAVAILABLE = "AUDIT_UNAVAILABLE"


#: The decision each list/source/input reason code implies. Every :class:`Reason` carries its
#: own decision too, so rule modules that add codes need not register them here.
REASON_DECISION: dict[str, Decision] = {
    ReasonCode.INVALID_NUMBER: Decision.INVALID,
    ReasonCode.UNSUPPORTED_REGION: Decision.INVALID,
    ReasonCode.MALFORMED_ROW: Decision.INVALID,
    ReasonCode.DUPLICATE: Decision.ALLOW,  # informational: a duplicate shares its first row's
    ReasonCode.DNC_INTERNAL: Decision.BLOCK,
    ReasonCode.DNC_NATIONAL: Decision.BLOCK,
    ReasonCode.DNC_STATE: Decision.BLOCK,
    ReasonCode.DNC_CXONE: Decision.BLOCK,
    ReasonCode.DNC_REMOTE: Decision.BLOCK,
    ReasonCode.DNC_HASHED: Decision.BLOCK,
    ReasonCode.DNC_PREFIX: Decision.BLOCK,
    ReasonCode.DNC_LITIGATOR: Decision.BLOCK,
    ReasonCode.SOURCE_ERROR: Decision.ERROR,
    ReasonCode.CONTEXT_INVALID: Decision.ERROR,
    ReasonCode.AUDIT_UNAVAILABLE: Decision.ERROR,
}


class Reason(BaseModel):
    """One reason behind a decision."""

    model_config = ConfigDict(frozen=True)

    code: str = Field(description="Stable reason code, e.g. DNC_NATIONAL")
    decision: Decision = Field(description="The decision this reason implies on its own")
    source: str | None = Field(default=None, description="Source that produced it, e.g. 'local'")
    list: str | None = Field(default=None, description="List that matched, if any")
    rule: str | None = Field(default=None, description="Rule identifier, if a rule applied")
    citation: str | None = Field(default=None, description="Legal citation of the rule")
    detail: str = Field(default="", description="Human-readable explanation")
    next_allowed_at: datetime | None = Field(
        default=None, description="For defer reasons: when this check alone would allow"
    )
    overrides: builtins.list[str] = Field(
        default_factory=builtins.list,
        description="Exemptions only: reason codes this reason lifts (e.g. a consent record "
        "lifts DNC_NATIONAL and DNC_STATE); the lifted reasons stay listed but do not decide",
    )


class DataVersions(BaseModel):
    """The versions of the data a verdict relied on."""

    lists: dict[str, str | None] = Field(
        default_factory=dict,
        description="List name -> its version: a dated list's snapshot date (2026-11-20), "
                    "any other local list's last change (2026-12-04T21:11:34.120437Z: what it "
                    "held then, as its history shows), null for a remote service's (which "
                    "states none)")
    ruleset: str | None = Field(default=None, description="Ruleset version, once rules apply")


class Verdict(BaseModel):
    """One explainable verdict for one input row or number."""

    input: str
    row: int | None = Field(default=None, description="1-based data row (header excluded)")
    e164: str | None = None
    decision: Decision
    reasons: list[Reason] = Field(default_factory=list)
    region: str | None = None
    state: str | None = None
    timezone: str | None = Field(default=None, description="Candidate zones, ';'-joined")
    timezone_source: str | None = Field(
        default=None, description="How the zones were found, e.g. 'npa-table+npa-nxx+zip'")
    next_allowed_at: datetime | None = None
    dial_time: datetime
    checked_at: datetime
    versions: DataVersions = Field(default_factory=DataVersions)

    @property
    def reason_codes(self) -> list[str]:
        return [r.code for r in self.reasons]

    @property
    def detail(self) -> str:
        return "; ".join(r.detail for r in self.reasons if r.detail)


def merge_reasons(reasons: list[Reason]) -> tuple[Decision, datetime | None]:
    """Merge reasons into one decision: the most severe wins; every reason is kept.

    Reasons whose code another reason ``overrides`` (an exemption) stay listed but do not
    decide. For a ``defer`` the next allowed moment is the latest of the deferring reasons' moments,
    or None when any deferring reason does not know one.
    """
    if not reasons:
        return Decision.ALLOW, None
    lifted = {code for r in reasons for code in r.overrides}
    deciding = [r for r in reasons if r.code not in lifted]
    decision = Decision.most_severe([r.decision for r in deciding])
    if decision is not Decision.DEFER:
        return decision, None
    moments = [r.next_allowed_at for r in deciding if r.decision is Decision.DEFER]
    if any(m is None for m in moments):
        return decision, None
    return decision, max(m for m in moments if m is not None)
