"""dncguard: may we call this number now, and if not, why and when?

>>> from dncguard import Scrubber
>>> verdict = Scrubber().check("+1 202 555 0123")  # doctest: +SKIP
>>> verdict.decision, verdict.reason_codes  # doctest: +SKIP
"""

from ._version import __version__
from .checks import Batch, Check, CheckContext, LocalListsCheck
from .config import CampaignProfile, Settings, load_settings
from .errors import ConfigError, DncGuardError, InputError, ListError, SourceError
from .lists import ListStore
from .models import DataVersions, Decision, Reason, ReasonCode, Verdict
from .phones import normalise
from .pipeline import Scrubber
from .summary import ScrubSummary

__all__ = [
    "Batch",
    "CampaignProfile",
    "Check",
    "CheckContext",
    "ConfigError",
    "DataVersions",
    "Decision",
    "DncGuardError",
    "InputError",
    "ListError",
    "ListStore",
    "LocalListsCheck",
    "Reason",
    "ReasonCode",
    "ScrubSummary",
    "Scrubber",
    "Settings",
    "SourceError",
    "Verdict",
    "__version__",
    "load_settings",
    "normalise",
]
