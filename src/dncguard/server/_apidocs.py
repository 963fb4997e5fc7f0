"""The interactive API docs (``/docs``, Swagger UI; ``/redoc``, ReDoc) from package data.

FastAPI's default pages load their scripts from a CDN, so on a server without internet they
are blank. The assets ship in ``server/static/`` (see its README) and are served from
``/static/api-docs/``; the pages are FastAPI's own, pointed at them, with no web fonts.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).resolve().parent / "static"
PREFIX = "/static/api-docs"


def install(app: FastAPI) -> None:
    """Serve ``/docs`` and ``/redoc`` (the app is built with ``docs_url=None,
    redoc_url=None``) and their assets."""
    app.mount(PREFIX, StaticFiles(directory=STATIC), name="api-docs")
    openapi = app.openapi_url or "/openapi.json"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi, title=f"{app.title} - API",
            swagger_js_url=f"{PREFIX}/swagger-ui/swagger-ui-bundle.js",
            swagger_css_url=f"{PREFIX}/swagger-ui/swagger-ui.css",
            swagger_favicon_url=f"{PREFIX}/swagger-ui/favicon-32x32.png")

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(openapi_url=openapi, title=f"{app.title} - API",
                              redoc_js_url=f"{PREFIX}/redoc/redoc.standalone.js",
                              redoc_favicon_url=f"{PREFIX}/swagger-ui/favicon-32x32.png",
                              with_google_fonts=False)


__all__ = ["install"]
