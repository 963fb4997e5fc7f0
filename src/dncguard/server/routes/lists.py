"""``GET /v1/lists``: lists, sizes, snapshot dates and freshness."""

from __future__ import annotations

from datetime import date, datetime

from fastapi import APIRouter
from pydantic import BaseModel, Field

from ...lists import DATED_KINDS, ListStore
from ...store import utcnow
from ..deps import CheckKey, Service, ServiceDep
from ..errors import responses

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
    max_age_days: int | None = Field(alias="maxAgeDays")
    fresh: bool = Field(description="False when a dated list is older than its maximum age")

    model_config = {"populate_by_name": True}


class ListsResponse(BaseModel):
    lists: list[ListStatus]
    stale: list[str]


def list_statuses(svc: Service) -> list[ListStatus]:
    store = ListStore(svc.settings, svc.engine)
    today = utcnow().date()
    out = []
    for info in store.all():
        counts = store.entry_counts(info.name)
        age = ((today - date.fromisoformat(info.snapshot_date)).days
               if info.snapshot_date else None)
        max_age = svc.server.list_max_age_days if info.kind in DATED_KINDS else None
        fresh = not (max_age is not None and (age is None or age > max_age))
        out.append(ListStatus(
            name=info.name, kind=info.kind, jurisdiction=info.jurisdiction, count=info.count,
            manual=ManualCounts(**counts), snapshot_date=info.snapshot_date,
            updated_at=info.updated_at, synced_at=info.synced_at, age_days=age,
            max_age_days=max_age, fresh=fresh))
    return out


@router.get("/v1/lists", response_model=ListsResponse, response_model_by_alias=True,
            responses=responses(401, 403, 429, 503), summary="Lists and their freshness")
def lists(svc: ServiceDep, _key: CheckKey) -> ListsResponse:
    statuses = list_statuses(svc)
    return ListsResponse(lists=statuses, stale=[s.name for s in statuses if not s.fresh])
