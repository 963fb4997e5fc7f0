"""The reason codes the rules engine adds (documented in docs/reason-codes.md (section Rules))."""

from __future__ import annotations

from ...models import Decision

OUTSIDE_CALLING_WINDOW = "OUTSIDE_CALLING_WINDOW"
DAY_PROHIBITED = "DAY_PROHIBITED"
HOLIDAY = "HOLIDAY"
STATE_OF_EMERGENCY = "STATE_OF_EMERGENCY"
FREQUENCY_CAP = "FREQUENCY_CAP"
CONSENT_REQUIRED = "CONSENT_REQUIRED"
WIRELESS_RESTRICTED = "WIRELESS_RESTRICTED"
REGISTRY_STALE = "REGISTRY_STALE"
REGISTRY_MISSING = "REGISTRY_MISSING"
TIMEZONE_UNKNOWN = "TIMEZONE_UNKNOWN"
EXEMPT_CONSENT = "EXEMPT_CONSENT"
EXEMPT_EBR = "EXEMPT_EBR"
LINE_TYPE_ASSUMED = "LINE_TYPE_ASSUMED"

#: Every rules reason code, the decision it implies, and its meaning.
RULE_CODES: dict[str, tuple[Decision, str]] = {
    OUTSIDE_CALLING_WINDOW: (Decision.DEFER, "The local time in at least one candidate zone is "
                             "outside a calling window (state, federal, or campaign hours)."),
    DAY_PROHIBITED: (Decision.DEFER, "No calls at all on this day of the week in at least one "
                     "candidate zone (e.g. Sunday bans)."),
    HOLIDAY: (Decision.DEFER, "The local date is a holiday (or its observed day) on which a "
              "candidate state bans calls."),
    STATE_OF_EMERGENCY: (Decision.DEFER, "An operator-declared state of emergency covers a "
                         "candidate state/area whose law bans solicitation during it."),
    FREQUENCY_CAP: (Decision.DEFER, "A rolling-window attempt cap (or a cooldown after a "
                    "conversation) is reached; next_allowed_at says when it frees up."),
    CONSENT_REQUIRED: (Decision.BLOCK, "The call type needs prior (express or express written) "
                       "consent for this line type and purpose, and none is on record."),
    WIRELESS_RESTRICTED: (Decision.BLOCK, "A candidate state restricts solicitation calls to "
                          "wireless numbers and no consent is on record."),
    REGISTRY_STALE: (Decision.ERROR, "The loaded registry snapshot the verdict relies on is older "
                     "than its jurisdiction allows at the dial time."),
    REGISTRY_MISSING: (Decision.ERROR, "The number's national or state registry is required but "
                       "not loaded; the detail names the list to import."),
    TIMEZONE_UNKNOWN: (Decision.ERROR, "No time zone could be found and the configuration says "
                       "unknown_timezone = 'error'."),
    EXEMPT_CONSENT: (Decision.ALLOW, "Valid express written consent: lifts DNC_NATIONAL and "
                     "DNC_STATE (never DNC_INTERNAL); oral express consent does not."),
    EXEMPT_EBR: (Decision.ALLOW, "An established business relationship within its window: lifts "
                 "DNC_NATIONAL, and DNC_STATE while it is within the window of every state "
                 "whose list may apply (never DNC_INTERNAL)."),
    LINE_TYPE_ASSUMED: (Decision.ALLOW, "Informational: the line type is unknown and the rules "
                        "judged the number as unknown_line_type says (by default 'any': by "
                        "the wireless and the residential rules, the strict reading); the "
                        "detail names the rules that brought in."),
}

#: Registry reason codes an exemption lifts.
LIFTED_BY_EXEMPTION = ["DNC_NATIONAL", "DNC_STATE"]
