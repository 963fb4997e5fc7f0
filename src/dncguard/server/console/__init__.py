"""The web console (``/console``): server-rendered pages for compliance officers and operations
staff, over the same library calls as the API. See ``docs/console.md``.

Mounted by ``app.include_router(console.router)``; its templates and static assets ship in
this package (no CDN, works offline). Sessions live in the database (``console_sessions``).
"""

from __future__ import annotations

from ._pages import headers
from ._routes import router

__all__ = ["headers", "router"]
