"""An S3-compatible object store for job files (``DNCGUARD_OBJECT_STORE_URL``).

``s3://BUCKET/PREFIX``; the credentials, region and endpoint come from the standard variables
(``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_REGION``, ``AWS_ENDPOINT_URL`` for a
store other than Amazon's, ``AWS_ALLOW_HTTP=true`` for one without TLS), read by ``obstore``
(the Rust ``object_store`` client). Objects are content-addressed chunks
(:mod:`dncguard.sharedfiles`): written once, never changed, each checked against its address
when read.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .errors import ConfigError, SourceError


class ObjectStore:
    """Put, get and delete objects under one bucket and prefix."""

    def __init__(self, url: str) -> None:
        if not url.startswith("s3://") or len(url) <= len("s3://"):
            raise ConfigError(f"object_store_url must be s3://BUCKET[/PREFIX], not {url!r}")
        try:
            from obstore.store import S3Store
        except ImportError:
            raise ConfigError("object_store_url needs the S3 client: pip install "
                              "'dncguard[s3]'") from None
        self.url = url
        try:
            self._store: Any = S3Store.from_url(url)
        except Exception as exc:  # a bad URL or configuration: name it, never a traceback
            raise ConfigError(f"object store {url}: {exc}") from None

    def put(self, key: str, data: bytes) -> None:
        import obstore

        try:
            obstore.put(self._store, key, data)
        except Exception as exc:
            raise SourceError(f"object store: cannot write {key}: {type(exc).__name__}",
                              source="object store") from exc

    def get(self, key: str) -> bytes | None:
        """The object's bytes (None when there is no such object)."""
        import obstore

        try:
            return bytes(obstore.get(self._store, key).bytes())
        except FileNotFoundError:
            return None
        except Exception as exc:
            raise SourceError(f"object store: cannot read {key}: {type(exc).__name__}",
                              source="object store") from exc

    def delete(self, keys: Sequence[str]) -> None:
        import obstore

        try:
            for start in range(0, len(keys), 1000):
                obstore.delete(self._store, list(keys[start:start + 1000]))
        except Exception as exc:
            raise SourceError(f"object store: cannot delete {len(keys)} objects: "
                              f"{type(exc).__name__}", source="object store") from exc


def object_store(url: str | None) -> ObjectStore | None:
    """The store a setting names (None: job files stay in the database)."""
    return ObjectStore(url) if url else None


__all__ = ["ObjectStore", "object_store"]
