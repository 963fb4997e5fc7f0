"""The FastAPI application: :func:`create_app` builds it, :func:`app_from_env` for uvicorn."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
from fastapi import Depends, FastAPI
from fastapi.responses import Response

from .. import audit, sharedfiles
from .._version import __version__
from ..config import Settings, all_sections, load_settings
from ..errors import ConfigError
from ..lists.store import ListStore
from ..models import Verdict
from ..outbox import Outbox
from ..sources.cxone.push import background_push
from ..sources.cxone.push import outbox_metrics as cxone_outbox_metrics
from ..store import get_engine, metadata
from . import _apidocs as apidocs
from . import _errors as errors
from . import tables
from ._checker import CheckerProvider
from ._deps import Service, TokenBuckets, strict_query
from ._fastcheck import ServiceApp
from ._jobs import JobRunner, JobStore
from ._metrics import (
    ASGIApp,
    DecisionCounter,
    Message,
    Metrics,
    ObserveMiddleware,
    Receive,
    Scope,
    Send,
    list_ages,
)
from ._realtime import Realtime
from ._snapshot_sync import SnapshotSyncer
from .console import router as console_router
from .keys import KeyStore
from .routes import check, dnc, jobs, lists, ops, rules
from .routes.audit import router as audit_router
from .settings import ServerSettings, load_server_settings

log = logging.getLogger("dncguard.server")

assert tables.api_keys_table.metadata is metadata

#: The interpreter's thread switch interval while serving (seconds; Python's default is
#: 0.005). The audit writer's thread lets go of the GIL at every SQLite call and then waits
#: for it back; with the event loop busy on a batch request each wait lasted up to the
#: interval, and group commits of 16 records took 77-103 ms (single checks beside batches,
#: alternated runs: p99 81-106 ms at 5 ms, 37-53 ms at 1 ms; see docs/performance.md).
SWITCH_INTERVAL = 0.001
#: The collector's thresholds while serving (Python's default is 700, 10, 10). A batch
#: request holds its 10,000 verdicts and their records alive while it runs, so at 700 the
#: collector kept walking them: about 1,150 collections per ten batches of 10,000 (9 of
#: them of the oldest generation, up to 33 ms each), 30-39 ms of collecting per batch. At
#: 50,000 the same batches were collected once, in 12-18 ms (gc.callbacks timings on Python
#: 3.11, see docs/performance.md); the process's memory stayed the same over 30 batches
#: (214-216 MB either way). What a single check allocates is freed by reference counting.
GC_THRESHOLD = (50_000, 10, 10)

#: What the process had before the first serving app, kept while any app of it serves.
_before: list[tuple[float, tuple[int, int, int]]] = []
_before_lock = threading.Lock()


@contextlib.contextmanager
def serving_interpreter(interval: float = SWITCH_INTERVAL,
                        threshold: tuple[int, int, int] = GC_THRESHOLD) -> Iterator[None]:
    """The interpreter's thread switch ``interval`` and collector ``threshold`` set while any
    app of this process serves (blocks may overlap: each sets them, the last one to end
    restores what the process had before the first), however the blocks end."""
    with _before_lock:
        _before.append((sys.getswitchinterval(), gc.get_threshold()))
        sys.setswitchinterval(interval)
        gc.set_threshold(*threshold)
    try:
        yield
    finally:
        with _before_lock:
            previous = _before.pop()
            if not _before:
                sys.setswitchinterval(previous[0])
                gc.set_threshold(*previous[1])


DESCRIPTION = """\
Pre-dial checks against every configured DNC list, source and rule, batch checks, background
scrub jobs, internal opt-outs and list status. Every verdict explains itself: a decision
(`allow`, `defer`, `block`, `error`, `invalid`), stable reason codes, the list that matched and
the data versions used. A number that could not be verified is never `allow`.

Authenticate with `Authorization: Bearer <key>` (`dncguard keys create --scope check`).
"""


class BodyLimit:
    """413 for a body over the limit, however it is framed (uploads to ``/v1/jobs`` have their
    own limit): a ``Content-Length`` over it is answered at once; any other body is read and
    counted before the application runs (at most ``limit`` bytes are held), so a chunked body
    over the limit is a 413 too, never a failure inside the framework's body parsing."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") == "/v1/jobs":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > self.limit:
                await _send_413(send, self.limit, scope.get("path", ""))
                return
        messages: list[Message] = []
        size = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":  # the client went away: the app hears it
                break
            size += len(message.get("body", b""))
            if size > self.limit:
                await _send_413(send, self.limit, scope.get("path", ""))
                return
            if not message.get("more_body", False):
                break
        await self.app(scope, _replayed(messages, receive), send)


def _replayed(messages: list[Message], receive: Receive) -> Receive:
    """A receive that hands back ``messages`` (as they were received), then ``receive``'s."""
    waiting = iter(messages)

    async def replay() -> Message:
        return next(waiting, None) or await receive()

    return replay


async def _send_413(send: Send, limit: int, path: str = "") -> None:
    """The 413 of a body over the limit; on a console path with the console's headers."""
    body = errors.ErrorBody(error=errors.ErrorDetail(
        status=413, code="too_large", message=f"the request body is larger than {limit:,} bytes"))
    data = body.model_dump_json().encode()
    more: list[tuple[bytes, bytes]] = []
    if path == "/console" or path.startswith("/console/"):
        from .console import headers

        more = [(k.encode("latin-1"), v.encode("latin-1"))
                for k, v in headers(Response()).headers.items()
                if k not in ("content-length", "content-type")]
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(data)).encode()), *more]})
    await send({"type": "http.response.body", "body": data})


def create_app(settings: Settings | None = None, server: ServerSettings | None = None, *,
               no_auth: bool | None = None, run_jobs: bool = True) -> FastAPI:
    """Build the service. Refuses (ConfigError) to build without an API key unless no_auth."""
    settings = settings or load_settings()
    all_sections(settings)  # every section read and checked now, not on some later request
    server = server or load_server_settings(settings)
    no_auth = server.no_auth if no_auth is None else no_auth
    engine = get_engine(settings)  # migrated to the newest revision: every table exists
    keys = KeyStore(engine, server.key_cache_seconds)
    if no_auth:
        log.warning("*** AUTHENTICATION IS OFF (--no-auth): anyone who can reach this port can "
                    "check numbers, change opt-outs and read jobs. Local development only. ***")
    elif keys.active_count() == 0:
        raise ConfigError("no API key exists: create one with 'dncguard keys create --name NAME "
                          "--scope check' (or serve with --no-auth for local development)")
    cxone_box: list[Outbox] = []  # the write-back queue, opened at the first scrape

    def cxone_outbox() -> dict[str, float]:
        if not cxone_box:
            cxone_box.append(Outbox(engine))
        return cxone_outbox_metrics(cxone_box[0])

    metrics = Metrics(lambda: list_ages(ListStore(settings, engine)),
                      outbox=lambda: audit.outbox_metrics(audit.audit_log(settings)),
                      cxone_outbox=cxone_outbox)
    # CXone write-back (credentials and a push group): drained while serving, as below
    pusher = background_push(settings, engine=engine)
    counter = DecisionCounter(engine)
    provider = CheckerProvider(settings, engine, cache=server.cache_checks)
    writer = audit.audit_writer(settings)
    def observe(verdicts: list[Verdict]) -> None:
        metrics.observe(verdicts)
        counter.record(verdicts)

    realtime = Realtime(settings, provider, writer, observe=observe)
    # PostgreSQL: list snapshots come from the database into this replica's home
    syncer = SnapshotSyncer(settings, engine) if sharedfiles.enabled(engine) else None
    runner = JobRunner(settings, engine, provider, counter, metrics, poll=server.job_poll_seconds,
                       lease=server.job_lease_seconds, chunk_delay=server.job_chunk_delay,
                       max_attempts=server.job_max_attempts,
                       ready=syncer.first_pass.is_set if syncer else None) if run_jobs else None
    svc = Service(settings=settings, server=server, engine=engine, keys=keys, provider=provider,
                  counter=counter, metrics=metrics, jobs=JobStore(settings, engine),
                  runner=runner, buckets=TokenBuckets(server.rate_per_second, server.rate_burst),
                  no_auth=no_auth, realtime=realtime)

    def warm_up() -> None:
        """Load the checks and the number parser before the first dialer's request."""
        try:
            prepared = provider.refresh()
            prepared.scrubber.scrub(["+12025550123"])
            prepared.direct.scrub(["+12025550123"])
        except Exception as exc:  # the first request will report it properly
            log.warning("warm-up check failed: %s", exc)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if syncer is not None:
            syncer.start()
        await anyio.to_thread.run_sync(warm_up)
        # what start-up built (settings, checks, list indexes, the rules) lives as long as the
        # process: out of the collector's way, its passes only walk what requests create
        gc.freeze()
        with serving_interpreter():
            if runner is not None:
                runner.start()

            async def flush_forever() -> None:
                while True:
                    await asyncio.sleep(server.metrics_flush_seconds)
                    await anyio.to_thread.run_sync(counter.flush)

            async def export_forever() -> None:
                """Deliver audit exports (job summaries) from the outbox while serving. A
                worker that cannot be built (or a pass that fails) is logged and tried again
                next pass: the task never ends while serving, the outbox keeps the backlog."""
                from ..audit.export import failure_text

                worker: audit.ExportWorker | None = None
                while True:
                    try:
                        if worker is None:
                            worker = audit.ExportWorker(audit.audit_log(settings))
                        await anyio.to_thread.run_sync(worker.run_once)
                    except Exception as exc:  # keep serving; the outbox keeps the backlog
                        what = "pass failed" if worker is not None else (
                            "worker could not be built")
                        log.warning("audit export %s (tried again in %gs): %s", what,
                                    server.export_seconds,
                                    failure_text(exc, audit.load_audit_settings(settings)))
                    await asyncio.sleep(server.export_seconds)

            flusher = asyncio.create_task(flush_forever())
            exporter = (asyncio.create_task(export_forever())
                        if audit.load_audit_settings(settings).export_url else None)
            # the CXone write-back queue: a pass every few seconds, in a worker thread; a
            # failed pass is logged and the next waits longer (push.BackgroundPush)
            pushing = (asyncio.create_task(pusher.run_forever())
                       if pusher is not None else None)
            try:
                yield
            finally:
                flusher.cancel()
                if exporter is not None:
                    exporter.cancel()
                if pusher is not None and pushing is not None:
                    pusher.stop()  # a running pass ends after its batch
                    pushing.cancel()
                if runner is not None:
                    await anyio.to_thread.run_sync(runner.stop)
                if syncer is not None:
                    await anyio.to_thread.run_sync(syncer.stop)
                await anyio.to_thread.run_sync(realtime.stop)
                await anyio.to_thread.run_sync(writer.stop)
                await anyio.to_thread.run_sync(counter.flush)

    app = ServiceApp(title="dncguard", version=__version__, description=DESCRIPTION,
                     docs_url=None, redoc_url=None,  # apidocs: served from package data
                     lifespan=lifespan, dependencies=[Depends(strict_query)])
    app.state.service = svc
    errors.install(app)
    apidocs.install(app)
    for module in (check, dnc, rules, lists, jobs, ops):
        app.include_router(module.router)
    app.include_router(console_router)  # the web console, /console
    app.include_router(audit_router)
    app.add_middleware(BodyLimit, limit=server.max_body_bytes)
    app.add_middleware(ObserveMiddleware, metrics=metrics)
    return app


def app_from_env() -> FastAPI:
    """The uvicorn factory (``dncguard.server.app:app_from_env``): settings from the environment."""
    return create_app()


def log_config(level: str = "info") -> dict[str, Any]:
    """uvicorn's logging plus dncguard's loggers (its own access log is switched off)."""
    from uvicorn.config import LOGGING_CONFIG

    config: dict[str, Any] = {**LOGGING_CONFIG, "loggers": dict(LOGGING_CONFIG["loggers"])}
    config["formatters"] = {**LOGGING_CONFIG["formatters"], "plain": {
        "format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}}
    config["handlers"] = {**LOGGING_CONFIG["handlers"], "plain": {
        "formatter": "plain", "class": "logging.StreamHandler", "stream": "ext://sys.stderr"}}
    config["loggers"]["dncguard"] = {"handlers": ["plain"], "level": level.upper(),
                                     "propagate": False}
    return config
