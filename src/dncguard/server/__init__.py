"""The HTTP validation service (``dncguard serve``): FastAPI on uvicorn.

>>> from dncguard.server import create_app  # doctest: +SKIP
>>> app = create_app(load_settings(), no_auth=True)  # doctest: +SKIP
"""

from .app import create_app

__all__ = ["create_app"]
