"""Context values in requests (query parameters, body fields): cleaned, or 422 naming them."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from ..engine.context import clean_context
from ..engine.scrubber import Scrubber
from ..errors import ContextError
from ..sources.protocol import CheckContext
from ._errors import ApiError, FieldError


def _refused(exc: ContextError, where: str) -> ApiError:
    return ApiError(422, f"{where}.{exc.field}: {exc.why}",
                    fields=[FieldError(field=f"{where}.{exc.field}", message=exc.why)])


def clean_or_422(values: Mapping[str, str | None], where: str = "query", *,
                 country: str | None = None) -> dict[str, str]:
    """The non-empty values cleaned by :func:`dncguard.engine.context.clean_context` (with
    ``country``: for one number of that region); the first value that is not understood
    answers 422 naming ``where.field`` and the accepted forms."""
    try:
        return clean_context(values, country=country)
    except ContextError as exc:
        raise _refused(exc, where) from None


def context_or_422(scrubber: Scrubber, *, at: datetime | None, campaign: str,
                   purpose: str | None, call_type: str | None,
                   where: str = "query") -> CheckContext:
    """The check context; an unknown campaign (or a profile naming unknown lists) answers
    422 naming ``where.campaign``."""
    try:
        return scrubber.context(at=at, campaign=campaign, purpose=purpose, call_type=call_type)
    except ContextError as exc:
        raise _refused(exc, where) from None


__all__ = ["clean_or_422", "context_or_422"]
