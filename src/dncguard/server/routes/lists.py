"""``GET /v1/lists``: lists, sizes, snapshot dates, freshness and snapshot integrity."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from fastapi import APIRouter
from pydantic import BaseModel, Field

from ...lists.store import ListInfo, ListStore
from ...sources.rules.freshness import Freshness, FreshnessPolicy, today
from .._deps import CheckKey, Service, ServiceDep
from .._errors import responses

router = APIRouter(tags=["lists"])


class ManualCounts(BaseModel):
    added: int
    removed: int


class ListStatus(BaseModel):
    name: str
    kind: str
    jurisdiction: str | None
    count: int = Field(description="Entries in the current snapshot")
    manual: ManualCounts = Field(description="Database entries: opt-outs added, numbers removed")
    snapshot_date: str | None = Field(alias="snapshotDate")
    updated_at: datetime = Field(alias="updatedAt")
    synced_at: datetime | None = Field(alias="syncedAt")
    age_days: int | None = Field(alias="ageDays", description="Days since the snapshot date")
    max_age_days: int | None = Field(
        alias="maxAgeDays", description="Days the snapshot may be used: the jurisdiction's "
        "registry rule, an operator override, or the default (null: not a dated list)")
    fresh: bool = Field(description="False when a dated list is older than its maximum age")
    max_age_rule: str | None = Field(
        default=None, alias="maxAgeRule",
        description="The registry rule that governs the list, e.g. US:national_dnc")
    max_age_citation: str | None = Field(default=None, alias="maxAgeCitation")
    max_age_basis: str = Field(default="undated", alias="maxAgeBasis",
                               description="rule, override, default or undated")
    snapshot_error: str | None = Field(
        default=None, alias="snapshotError",
        description="Why the current snapshot fails its integrity check (its checks answer "
        "error); null when it verifies")
    scope_problem: str | None = Field(
        default=None, alias="scopeProblem",
        description="Why the numbers the list applies to cannot be told from its stored "
        "jurisdiction (e.g. a state list of US-FA; its checks answer error, SOURCE_ERROR); "
        "null when they can")

    model_config = {"populate_by_name": True}


class ListsResponse(BaseModel):
    lists: list[ListStatus]
    stale: list[str]
    as_of: date = Field(alias="asOf", description="The day (UTC) ages are counted to")

    model_config = {"populate_by_name": True}


@dataclass(frozen=True)
class ListState:
    """One list's stored record, freshness and snapshot problem (``/readyz`` reads these)."""

    info: ListInfo
    freshness: Freshness
    snapshot_error: str | None


def list_states(svc: Service, day: date | None = None) -> list[ListState]:
    """Every list's freshness (:mod:`dncguard.sources.rules.freshness`) and snapshot integrity."""
    store = ListStore(svc.settings, svc.engine)
    policy = FreshnessPolicy.of(svc.settings)
    day = day or today()
    return [ListState(info, policy.judge(info, day), store.snapshot_problem(info))
            for info in store.all()]


def list_statuses(svc: Service) -> tuple[date, list[ListStatus]]:
    store = ListStore(svc.settings, svc.engine)
    day = today()
    out = []
    for state in list_states(svc, day):
        info, f = state.info, state.freshness
        out.append(ListStatus(
            name=info.name, kind=info.kind, jurisdiction=info.jurisdiction, count=info.count,
            manual=ManualCounts(**store.entry_counts(info.name)),
            snapshot_date=info.snapshot_date, updated_at=info.updated_at,
            synced_at=info.synced_at, age_days=f.age_days, max_age_days=f.max_age_days,
            fresh=f.fresh, max_age_rule=f.rule, max_age_citation=f.citation,
            max_age_basis=f.basis, snapshot_error=state.snapshot_error,
            scope_problem=info.scope_problem))
    return day, out


@router.get("/v1/lists", response_model=ListsResponse, response_model_by_alias=True,
            responses=responses(401, 403, 429, 503), summary="Lists and their freshness")
def lists(svc: ServiceDep, _key: CheckKey) -> ListsResponse:
    day, statuses = list_statuses(svc)
    return ListsResponse(lists=statuses, stale=[s.name for s in statuses if not s.fresh],
                         as_of=day)
