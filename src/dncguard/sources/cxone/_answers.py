"""Reading CXone's answer to a record write (``POST``/``DELETE records``): which result is
each record's, and whether it shows the record written. CXone answers 200 with a result per
record; an item counts as delivered only when its record has exactly one result, a clean
success, and the answer as a whole can be trusted (see :func:`match_results`)."""

from __future__ import annotations

from typing import Any

from ...phones import mask_numbers
from ._records import phone_digits


def _key(digits: str) -> str:
    """A number's digits as records and results are compared: a NANP number without its
    country code (records carry national digits; a result may name ``1`` + them)."""
    return digits[1:] if len(digits) == 11 and digits[0] == "1" else digits


def _same_number(a: str, b: str) -> bool:
    """Whether two digit strings a result gives (``phoneNumber``, ``formattedPhone``) can be
    one number: equal, or one the other's national form (its trunk ``0`` dropped, the
    country code left off)."""
    if a == b:
        return True
    short, long = sorted((a.lstrip("0"), b.lstrip("0")), key=len)
    return len(short) >= 7 and long.endswith(short)


def _error_text(result: dict[str, Any]) -> str | None:
    """The error a result states (masked, cut), None when it states none (absent, null or
    blank text). Anything else in ``error`` (a number, an object) counts as an error."""
    error = result.get("error")
    if error is None or (isinstance(error, str) and not error.strip()):
        return None
    return mask_numbers(str(error))[:300]


def _clean(result: dict[str, Any]) -> bool:
    """Whether a result says its record was written: ``success`` is the JSON ``true`` (not
    ``"true"``, ``1``, ``"false"``) and it states no error."""
    return result.get("success") is True and _error_text(result) is None


def match_results(answer: dict[str, Any], results: list[Any], records: list[dict[str, Any]]
           ) -> tuple[list[list[dict[str, Any]]], str | None]:
    """Each record's results, or why the answer as a whole cannot be trusted.

    A result is matched to its record by the number it names (``phoneNumber``,
    ``formattedPhone``); by position only when it names none and CXone answered one result
    per record (matched by position, a reordered answer marked a refused record delivered and
    a delivered one refused). The answer is refused whole when an entry is not an object, a
    result names two different numbers (not one number in two forms), or none the request
    sent, a result cannot be matched to any record, or ``errorCount`` is malformed or
    disagrees with the results that are not clean successes: in each case some record's
    outcome is unknown."""
    odd = sum(1 for r in results if not isinstance(r, dict))
    if odd:
        return [], f"{odd} of {len(results)} results are not objects"
    keys = [_key(phone_digits(rec["phoneNumber"])) for rec in records]
    sent = set(keys)
    by_key: dict[str, list[int]] = {}
    unnamed: dict[int, None] = {}  # in order
    for i, r in enumerate(results):
        named = [_key(d) for d in _named(r)]
        if not named:
            unnamed[i] = None
            continue
        if not _same_number(named[0], named[-1]):
            return [], "a result names two different numbers"
        k = next((k for k in named if k in sent), None)
        if k is None:
            return [], "a result names a number the request did not send"
        by_key.setdefault(k, []).append(i)
    used: set[int] = set()
    matched: list[list[dict[str, Any]]] = []
    for n, k in enumerate(keys):
        found = by_key.get(k, [])
        if not found and len(results) == len(records) and n in unnamed:
            found = [n]
        used.update(found)
        matched.append([results[i] for i in found])
    if stray := [i for i in unnamed if i not in used]:
        return [], f"{len(stray)} results name no number and match no record"
    if "errorCount" in answer:
        count = answer["errorCount"]
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            return [], f"malformed errorCount {str(count)[:40]!r}"
        bad = sum(1 for r in results if not _clean(r))
        if count != bad:
            return [], (f"errorCount is {count} but {bad} of {len(results)} results are "
                        "not clean successes")
    return matched, None


def record_verdict(mine: list[dict[str, Any]]) -> tuple[str, bool] | None:
    """None when a record's results show it written (exactly one result, a clean success),
    else (why not, whether CXone refused it: ``success`` is ``false`` itself)."""
    if not mine:
        return "CXone returned no result for this record", False
    if len(mine) > 1:
        said = "; ".join(dict.fromkeys(_error_text(r) or f"success={r.get('success')!r}"
                                       for r in mine))
        return f"CXone returned {len(mine)} results for this record ({said[:300]})", False
    r = mine[0]
    if _clean(r):
        return None
    error = _error_text(r)
    success = r.get("success")
    if success is False:
        return error or "refused without a reason", True
    if success is True:
        return f"CXone answered success with an error: {error}", False
    shown = str(success)[:40] if "success" in r else "missing"
    return (f"CXone's result is not a success (success {shown!r})"
            + (f": {error}" if error else "")), False


def _named(result: dict[str, Any]) -> list[str]:
    """The digits of the numbers a write result names (``phoneNumber``, ``formattedPhone``)."""
    return [d for k in ("phoneNumber", "formattedPhone")
            if (d := phone_digits(result.get(k) or ""))]
