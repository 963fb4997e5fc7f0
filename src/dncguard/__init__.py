"""dncguard: may we call this number now, and if not, why and when?

>>> from dncguard import Scrubber
>>> verdict = Scrubber().check("+1 202 555 0123")  # doctest: +SKIP
>>> verdict.decision, verdict.reason_codes  # doctest: +SKIP

The public names below are imported on first use (PEP 562), so that importing a submodule,
e.g. the command line's, does not import the whole library (issue 12: CLI start time).
"""

import typing

from ._version import __version__

if typing.TYPE_CHECKING:
    from .config import CampaignProfile, Settings, load_settings
    from .engine.scrubber import Scrubber
    from .engine.summary import ScrubSummary
    from .errors import ConfigError, DncGuardError, InputError, ListError, SourceError
    from .lists.store import ListStore
    from .models import DataVersions, Decision, Reason, ReasonCode, Verdict
    from .phones import normalise
    from .sources.local import LocalListsCheck
    from .sources.protocol import Batch, Check, CheckContext

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

#: Where each lazily imported public name lives (a submodule of this package).
_LAZY: dict[str, str] = {
    "Batch": "sources.protocol",
    "Check": "sources.protocol",
    "CheckContext": "sources.protocol",
    "LocalListsCheck": "sources.local",
    "CampaignProfile": "config",
    "Settings": "config",
    "load_settings": "config",
    "ConfigError": "errors",
    "DncGuardError": "errors",
    "InputError": "errors",
    "ListError": "errors",
    "SourceError": "errors",
    "ListStore": "lists.store",
    "DataVersions": "models",
    "Decision": "models",
    "Reason": "models",
    "ReasonCode": "models",
    "Verdict": "models",
    "normalise": "phones",
    "Scrubber": "engine.scrubber",
    "ScrubSummary": "engine.summary",
}


def __getattr__(name: str) -> object:
    """Import a public name on first access and keep it as a module attribute."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
