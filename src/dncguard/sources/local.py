"""The local lists as a source: every imported list (national and state registries, the
internal list, hashed lists, prefix blocks, CXone's synced groups), and the wireless lists that
mark mobile lines for the rules."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC
from typing import TYPE_CHECKING, cast

import numpy as np
import numpy.typing as npt

from .._lazy import lazy_import
from ..engine.findings import Findings
from ..errors import ListError
from ..lists.store import INFO_KINDS, ListIndex, ListInfo, ListStore
from ..models import DataVersions, Decision, Reason, ReasonCode
from ..phones import npa_state_index, npa_state_table
from ..places import address_state
from .protocol import Batch, CheckBase, CheckContext

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.compute as pc
else:
    pa = lazy_import("pyarrow", globals(), "pa")
    pc = lazy_import("pyarrow.compute", globals(), "pc")

log = logging.getLogger(__name__)


def applies_to(jurisdiction: str, batch: Batch) -> npt.NDArray[np.bool_]:
    """Which numbers a national or state list applies to.

    A national registry applies to the numbers of its country. A state list (``US-FL``)
    applies to numbers of that state by area code, by the row's address (``state`` column or
    flag) or by its ZIP or postal code's state (``zip`` column or flag): each is a candidate,
    as for the calling rules. A number whose row gives no address (no state, no ZIP) gets
    every state list of its country whatever its area code: a number keeps its area code
    when its subscriber moves, so the area code alone never shows that a state's list does
    not cover them (the safe side).
    """
    return _applies(jurisdiction, batch)[0]


def _applies(jurisdiction: str, batch: Batch
             ) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """:func:`applies_to`; the numbers it applies to only by their ZIP code's state; and those
    it applies to only because their row gives no address while their area code names
    another state (a hit on either says so: nothing else in the verdict names that state)."""
    country, _, state = jurisdiction.partition("-")
    key = f"country:{country}"
    out = batch._memo.get(key)
    if out is None:
        regions, ids = batch.distinct("region")
        out = batch._memo[key] = np.array([r == country for r in regions], dtype=bool)[ids]
    none = np.zeros(len(batch), dtype=bool)
    if not state or not out.any():
        return np.array(out, dtype=bool), none, none
    names, candidates = _state_candidates(batch)
    known = (candidates != 0).any(axis=0)
    npa, own, given, by_code = candidates
    # an address: the row's state or ZIP, or a batch state other than the area code's
    address = (own != 0) | (by_code != 0) | ((given != 0) & (given != npa))
    code = names.get(state)  # None: no number has this state by any account
    if code is None:
        applies = np.asarray(out & ~address, dtype=bool)
        return applies, none, applies & known
    same = candidates == code
    matches = same.any(axis=0)
    by_zip = out & same[_ZIP_ROW] & ~same[:_ZIP_ROW].any(axis=0)
    applies = np.asarray(out & (~address | matches), dtype=bool)
    return applies, by_zip, applies & ~matches & known


#: the row of :func:`_state_candidates` that holds the ZIP or postal code's state
_ZIP_ROW = 3
def _zip_states(zips: list[str]) -> list[str]:
    """The state or province of each distinct ZIP or postal code (``""``: none), as the rules
    find it (:func:`dncguard.places.address_state`: a military post code names none). Each
    code is looked up once per process (:data:`_ZIP_STATES`), not once per batch."""
    out: list[str] = []
    for code in zips:
        found = _ZIP_STATES.get(code)
        if found is None:
            if len(_ZIP_STATES) > 100_000:  # bounded: a file of made-up codes cannot grow it
                _ZIP_STATES.clear()
            found = _ZIP_STATES[code] = address_state(code) or ""
        out.append(found)
    return out


#: ZIP or postal code, as the row gives it -> its state or province (``""``: none). A value
#: that is neither (none, or a postcode of a country without state lists, e.g. the UK) or a
#: military post code (AA/AE/AP) gives no state.
_ZIP_STATES: dict[str, str] = {}


def _zip_given(batch: Batch) -> npt.NDArray[np.bool_]:
    """Which numbers' rows give a ZIP or postal code (whether or not it names a state), per
    distinct context."""
    distinct, index = batch.contexts()
    given = np.array([bool((c.get("zip") or "").strip()) for c in distinct], dtype=bool)
    return given[index] if given.size else np.zeros(len(batch), dtype=bool)


def _state_candidates(batch: Batch) -> tuple[dict[str, int], npt.NDArray[np.int64]]:
    """Each number's candidate states (area code, row address, batch state, the ZIP or postal
    code's state: row :data:`_ZIP_ROW`) as codes into one table (0: none), computed once per
    batch. The work is per distinct context and per distinct ZIP, not per number."""
    found = batch._memo.get("states")
    if found is not None:
        return cast(tuple[dict[str, int], npt.NDArray[np.int64]], found)
    names: dict[str, int] = {"": 0}

    def coded(table: list[str], index: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """``table[index]`` as codes into ``names`` (one dict lookup per distinct value)."""
        codes = np.array([names.setdefault(v, len(names)) for v in table], dtype=np.int64)
        return codes[index] if codes.size else np.zeros(index.size, dtype=np.int64)

    npa_names, npa_index = npa_state_table()[0], npa_state_index(batch.digits)
    distinct, index = batch.contexts()
    given, ids = batch.distinct("state")
    zip_ids: dict[str, int] = {}  # each distinct ZIP once, however many contexts share it
    zip_of = np.array([zip_ids.setdefault(c.get("zip") or "", len(zip_ids)) for c in distinct],
                      dtype=np.int64)
    candidates = np.stack([
        coded(npa_names, npa_index),
        coded([(c.get("state") or "").upper() for c in distinct], index),
        coded([(g or "").upper() for g in given], ids),
        coded(_zip_states(list(zip_ids)), zip_of[index]),
    ]) if len(batch) else np.zeros((_ZIP_ROW + 1, 0), dtype=np.int64)
    batch._memo["states"] = (names, candidates)
    return names, candidates


def list_version(info: ListInfo) -> str:
    """A local list's version as a verdict names it: its snapshot date (``2026-11-20``), or,
    for a list without one, the time of its last change, to the microsecond
    (``2026-12-04T21:11:34.120437Z``: two opt-outs in one second are two versions)."""
    if info.snapshot_date:
        return info.snapshot_date
    return info.updated_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LocalListsCheck(CheckBase):
    """Every local list (snapshots plus database entries), checked vectorised.

    Lists of kind ``cxone`` are left to the CXone check, which also knows their freshness.
    """

    name = "local"
    always = True  # applies a campaign's list selection to its own lists

    def __init__(self, store: ListStore, infos: list[ListInfo] | None = None) -> None:
        self.store = store
        infos = [i for i in (store.all() if infos is None else infos)
                 if i.kind != "cxone" and i.kind not in INFO_KINDS]
        self.indexes = [ListIndex(store, i) for i in infos]

    def versions(self) -> DataVersions:
        """Each list's version: its snapshot date, or for a list without one (internal,
        litigator, hashed, prefix lists) the time of its last change, so that a verdict names
        what the list held (its history in ``lists_events`` shows what changed when)."""
        return DataVersions(lists={ix.info.name: list_version(ix.info) for ix in self.indexes})

    def used(self, ctx: CheckContext) -> list[ListIndex]:
        return [ix for ix in self.indexes if ctx.selects(ix.info.name)]

    def _findings(self, batch: Batch, ctx: CheckContext) -> Findings:
        masks: list[npt.NDArray[np.bool_]] = []
        reasons: list[Reason] = []
        for ix in self.used(ctx):
            try:
                hits, by_zip, unplaced = self._hits(ix, batch, ctx)
            except Exception as exc:  # a damaged file or database error: fail closed
                log.warning("list %s could not be checked: %s", ix.info.name, exc)
                masks.append(np.ones(len(batch), dtype=bool))
                reasons.append(Reason(
                    code=ReasonCode.SOURCE_ERROR, decision=Decision.ERROR, source=self.name,
                    list=ix.info.name, detail=f"list {ix.info.name} could not be read "
                    f"({type(exc).__name__}: {str(exc)[:160]})"))
                continue
            reason = ix.reason()
            state = (ix.info.jurisdiction or "").partition("-")[2]
            # say why where the verdict's own state is another one
            zipped = _zip_given(batch) if unplaced.any() else unplaced
            for why, mask in ((f"it applies by the ZIP or postal code's state ({state})",
                               by_zip),
                              ("it applies because the row gives no state or ZIP: an area "
                               "code does not show where the subscriber lives",
                               unplaced & ~zipped),
                              ("it applies because the row names no state: it gives no state, "
                               "and its ZIP or postal code names none (a military post code "
                               "or a postcode of another country); an area code does not show "
                               "where the subscriber lives", unplaced & zipped)):
                these = hits & mask
                if these.any():
                    masks.append(these)
                    reasons.append(reason.model_copy(
                        update={"detail": f"{reason.detail}; {why}"}))
                    hits = hits & ~mask
            masks.append(hits)
            reasons.append(reason)
        return Findings.from_masks(masks, reasons, len(batch))

    @staticmethod
    def _hits(ix: ListIndex, batch: Batch, ctx: CheckContext
              ) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
        """The numbers on the list, looking up only those its jurisdiction applies to; those
        it applies to only by their ZIP or postal code's state; and those it applies to only
        because their row gives no address (see :func:`_applies`)."""
        if ix.info.scope_problem:  # a jurisdiction stored before it was checked: no number
            raise ListError(ix.info.scope_problem)  # can be told to be in it, fail closed
        none = np.zeros(len(batch), dtype=bool)
        if not (ix.info.kind in ("national", "state") and ix.info.jurisdiction):
            return _lookup(ix, batch, ctx, None), none, none
        applies, by_zip, unplaced = _applies(ix.info.jurisdiction, batch)
        return _lookup(ix, batch, ctx, None if applies.all() else applies), by_zip, unplaced

    async def findings(self, batch: Batch, ctx: CheckContext) -> Findings:
        return await asyncio.to_thread(self._findings, batch, ctx)

    async def check(self, batch: Batch, ctx: CheckContext) -> list[list[Reason]]:
        return (await self.findings(batch, ctx)).per_number()


#: From this many numbers a batch's lookups go through its numbers sorted once (see
#: :func:`_lookup`); fewer are looked up as they come.
SORT_FROM = 1024


def _lookup(ix: ListIndex, batch: Batch, ctx: CheckContext,
            only: npt.NDArray[np.bool_] | None) -> npt.NDArray[np.bool_]:
    """Which numbers of ``batch`` (those ``only`` marks, None: all) are on ``ix``. A large
    batch's numbers are sorted once and every list is given them in order: a binary search
    of ascending keys narrows from the last one, and each list would otherwise sort them
    again (with every state list applying to rows without an address, once per list)."""
    n = len(batch)
    if n < SORT_FROM:
        if only is None:
            return ix.contains(batch.digits, at=ctx.at)
        hits = np.zeros(n, dtype=bool)
        at = np.flatnonzero(only)
        if at.size:
            hits[at] = ix.contains(batch.digits[at], at=ctx.at)
        return hits
    memo = batch._memo.get("sorted")
    if memo is None:
        order = np.argsort(batch.digits, kind="stable")
        memo = batch._memo["sorted"] = (order, batch.digits[order])
    order, ascending = cast(tuple[npt.NDArray[np.int64], npt.NDArray[np.uint64]], memo)
    hits = np.zeros(n, dtype=bool)
    if only is None:
        hits[order] = ix.contains(ascending, at=ctx.at)
    else:
        keep = only[order]
        if keep.any():
            hits[order[keep]] = ix.contains(ascending[keep], at=ctx.at)
    return hits


class LineTypes:
    """Marks numbers found on ``wireless`` lists as mobile lines for the rules, before the
    checks run. A row's own ``line_type`` stands, but for ``landline``: a number a wireless
    (or ported-to-wireless) list holds while its row says landline is judged as ``voip``, by
    the wireless and the residential rules alike (the evidence disagrees: the strict
    reading; a landline row with port data showing a mobile line lost the wireless rules)."""

    def __init__(self, store: ListStore, infos: list[ListInfo] | None = None) -> None:
        infos = store.all() if infos is None else infos
        self.indexes = [ListIndex(store, i) for i in infos if i.kind == "wireless"]

    def versions(self) -> dict[str, str | None]:
        return {ix.info.name: ix.info.snapshot_date for ix in self.indexes}

    def mark(self, batch: Batch, ctx: CheckContext) -> None:
        for ix in self.indexes:
            if not ctx.reads_wireless(ix.info.name):
                continue
            hits = _lookup(ix, batch, ctx, None)
            batch.with_default(hits, "line_type", "mobile")  # none given: mobile
            batch.with_default(hits, "line_type", "voip", over=("landline",))


__all__ = ["LineTypes", "LocalListsCheck", "applies_to"]
