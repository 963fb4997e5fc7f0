"""Strings a request gives must be text: what UTF-8 can encode.

JSON can write a lone UTF-16 surrogate (``"\\ud800"``), and Python's parser keeps it in the
string it reads (so it does for the UTF-8-style bytes of one, which no encoder writes); such
a string can be neither stored, written to a job's file nor answered back, and the failure
came as a 500 that lost the whole request. Every string field of a request body is
:data:`Unicode` (or :data:`Text`), and a JSON job's values and every body's keys are checked
with :func:`not_text`: the request is refused, 422 naming the field.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator
from pydantic_core import PydanticCustomError


def not_text(value: str) -> str | None:
    """Why ``value`` is not text (the first character UTF-8 cannot encode), else None."""
    if value.isascii():  # the common case: no encoding attempt at all
        return None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        return (f"not text: contains U+{ord(value[exc.start]):04X}, a lone surrogate that "
                "UTF-8 cannot encode; remove it")
    return None


def _text_only(value: object) -> object:
    if isinstance(value, str):
        why = not_text(value)
        if why is not None:
            raise PydanticCustomError("string_not_text", why)
    return value  # anything else: the string schema refuses it as before


#: A string that UTF-8 can encode (else 422 naming the field); a validator before the
#: string's own, so its constraints and the JSON schema are those of ``str``.
Unicode = Annotated[str, BeforeValidator(_text_only)]

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _no_control(value: str) -> str:
    """Refuse control characters other than tab and line breaks: PostgreSQL cannot store a
    NUL at all (the write failed as if the database were away, and SQLite stored it), and
    none belongs in a reason, a subject or a campaign name."""
    found = _CONTROL.search(value)
    if found:
        raise ValueError(f"contains the control character U+{ord(found.group()):04X}; "
                         "remove it")
    return value


#: Free text a request stores (a reason, a subject): text UTF-8 can encode, without control
#: characters.
Text = Annotated[str, BeforeValidator(_text_only), AfterValidator(_no_control)]


def key_name(key: str, most: int = 100) -> str:
    """A JSON key as a field name says it (``body.<key>``): its first ``most`` characters,
    with what UTF-8 cannot encode written as JSON escapes it (``\\ud800``), so that the
    refusal naming it can itself be answered."""
    shown = key if len(key) <= most else key[:most] + "..."
    if not_text(shown) is None:
        return shown
    return shown.encode("utf-8", "backslashreplace").decode("utf-8")
