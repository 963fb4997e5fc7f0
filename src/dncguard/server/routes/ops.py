"""``/healthz``, ``/readyz``, ``/metrics`` and ``/v1/metrics/summary``."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from ...config import Settings
from ...lists.store import snapshot_remedy
from ...sources.rules.freshness import blocking
from ...store import utcnow
from .._deps import AdminKey, Credentials, Service, ServiceDep, require
from .._errors import ApiError, Instant, responses
from .._metrics import default_range
from .lists import list_states

router = APIRouter(tags=["operations"])


class Health(BaseModel):
    status: str = Field(examples=["ok"])
    reasons: list[str] = Field(default_factory=list)


@router.get("/healthz", response_model=Health, summary="The process is up")
async def healthz() -> Health:  # async: no threadpool hop for a liveness probe
    return Health(status="ok")


def stale_sources(settings: Settings) -> list[str]:
    """Remote sources past their maximum age: CXone groups synced too long ago (checks
    against them fail closed or fall back to live search, so the replica is not ready)."""
    from ...lists.store import ListStore
    from ...sources.cxone.settings import load_cxone
    from ...sources.cxone.source import unsynced_groups

    cx = load_cxone(settings)
    limit = timedelta(hours=cx.max_sync_age_hours)
    now = utcnow()
    infos = [i for i in ListStore(settings).all() if i.kind == "cxone"]
    out = [f"CXone group {gid} is configured ([cxone] groups) but has never been synced "
           f"(run 'dncguard cxone sync')" for gid in unsynced_groups(cx, infos)]
    for info in infos:
        if info.meta.get("active") is False:
            continue
        if info.synced_at is None or now - info.synced_at > limit:
            when = info.synced_at.isoformat() if info.synced_at else "never"
            out.append(f"CXone group {info.name} last synced {when}, past the maximum age of "
                       f"{cx.max_sync_age_hours:g} h (run 'dncguard cxone sync')")
    return out


@router.get("/readyz", response_model=Health, responses={503: {"model": Health}},
            summary="Ready to serve: database reachable, snapshots intact, registries fresh, "
                    "audit trail writable")
def readyz(svc: ServiceDep) -> Any:
    reasons = []
    try:
        with svc.engine.connect() as conn:
            conn.execute(text("select 1"))
        reasons.extend(list_problems(svc))
        reasons.extend(stale_sources(svc.settings))
    except SQLAlchemyError as exc:
        reasons.append(f"database unreachable: {type(exc).__name__}")
    reasons.extend(audit_problems(svc.settings))
    if reasons:
        return JSONResponse(Health(status="unavailable", reasons=reasons).model_dump(),
                            status_code=503)
    return Health(status="ok")


def list_problems(svc: Service) -> list[str]:
    """Lists that make verdicts ``error``: a current snapshot that fails its integrity check
    or a jurisdiction that is not understood (their checks answer SOURCE_ERROR), and, with
    ``ready_requires_fresh``, a registry past the maximum age the rules allow
    (:func:`dncguard.sources.rules.freshness.blocking`: the rules answer REGISTRY_STALE for its
    numbers)."""
    states = list_states(svc)
    out = [f"list {s.info.name}: snapshot fails its integrity check, its checks answer error "
           f"(SOURCE_ERROR): {s.snapshot_error}; {snapshot_remedy(s.snapshot_error)}"
           for s in states if s.snapshot_error]
    out.extend(f"{s.info.scope_problem}; its checks answer error (SOURCE_ERROR)"
               for s in states if s.info.scope_problem)
    if svc.server.ready_requires_fresh:
        out.extend(f"{f.problem()}; the rules answer error (REGISTRY_STALE) for "
                   f"{f.jurisdiction} numbers: import a newer snapshot"
                   for f in blocking(s.freshness for s in states))
    return out


def audit_problems(settings: Settings) -> list[str]:
    """:func:`dncguard.audit.health.readiness_problems`; a failure to tell is a problem too."""
    from ...audit.health import readiness_problems

    try:
        return list(readiness_problems(settings))
    except Exception as exc:  # fail closed: readiness that cannot be shown is not readiness
        return [f"audit trail readiness could not be determined: {type(exc).__name__}"]


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request, svc: ServiceDep, credentials: Credentials) -> Response:
    """Prometheus text; with ``metrics_public`` off, for an admin key, read as every other
    route reads one (:data:`~.._deps.Credentials`)."""
    if not svc.server.metrics_public:
        await anyio.to_thread.run_sync(lambda: require("admin")(request, svc, credentials))
    body = await anyio.to_thread.run_sync(generate_latest, svc.metrics.registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


class SummaryResponse(BaseModel):
    from_: datetime = Field(alias="from")
    to: datetime
    verdicts: int
    by_decision: dict[str, int] = Field(alias="byDecision")
    suppression_rate: float | None = Field(alias="suppressionRate",
                                           description="block + defer + error over verdicts")
    by_reason: dict[str, dict[str, int]] = Field(alias="byReason",
                                                 description="code -> decision -> verdicts")
    by_source: dict[str, dict[str, int]] = Field(alias="bySource",
                                                 description="list or source -> decision -> n")
    by_state: dict[str, dict[str, int]] = Field(alias="byState")

    model_config = {"populate_by_name": True}


@router.get("/v1/metrics/summary", response_model=SummaryResponse, response_model_by_alias=True,
            responses=responses(401, 403, 422, 429, 503),
            summary="Verdicts served by reason, source and state over a time range")
def metrics_summary(
    svc: ServiceDep, _key: AdminKey,
    start: Annotated[Instant | None, Query(alias="from",
                                                 description="Default: 24 hours ago")] = None,
    end: Annotated[Instant | None, Query(alias="to", description="Default: now")] = None,
) -> SummaryResponse:
    """Counted per UTC hour: the range is widened to whole hours."""
    first, last = default_range(start, end)
    if first > last:
        raise ApiError(422, "'from' is after 'to'")
    return SummaryResponse.model_validate(svc.counter.summary(first, last))
