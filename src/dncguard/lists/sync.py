"""Keeping a home's list snapshots equal to the database's versions (PostgreSQL).

:meth:`ListSync.sync_all` is one pass, run by each replica's syncer
(:mod:`dncguard.server._snapshot_sync`): every list whose current version this home does not hold
(or holds damaged) is fetched (:meth:`dncguard.lists.store.ListStore.sync`); a current version this
home holds that the database lacks (imported into a shared home before snapshots were kept in the
database) is published; local files of versions the database no longer names are removed.
"""

from __future__ import annotations

import logging
import time

from sqlalchemy import select

from ..store import list_versions_table
from . import share as snapshot_share
from .integrity import SEAL_SUFFIX, Seal, SnapshotIntegrityError
from .store import ListInfo, ListStore

log = logging.getLogger("dncguard.lists.store")

#: Local snapshot files younger than this are never removed (an import on this host writes its
#: file before its transaction names it).
STALE_AFTER_SECONDS = 600.0


class ListSync:
    """Passes that bring one home's snapshots to the database's versions."""

    def __init__(self, store: ListStore) -> None:
        self.store = store
        self._published: set[str] = set()  # snapshot files seen in the database

    def sync_all(self) -> dict[str, str]:
        """One pass (see the module docstring). Returns the lists that could not be synced,
        with why (their checks answer ``error`` until a later pass succeeds). Nothing to do
        for a SQLite home."""
        problems: dict[str, str] = {}
        store = self.store
        if not store.shared:
            return problems
        infos = store.all()
        for info in infos:
            try:
                if store.sync(info):
                    log.info("list %s: snapshot %s fetched from the database", info.name,
                             info.current_file)
                elif info.current_file and info.seal is not None:
                    self._publish_held(info, info.seal)
            except (SnapshotIntegrityError, OSError) as exc:  # this list only; the rest go on
                problems[info.name] = str(exc)
                log.warning("list %s not synced: %s", info.name, exc)
        self._drop_stale(infos)
        return problems

    def _publish_held(self, info: ListInfo, seal: Seal) -> None:
        folder = self.store.folder_of(info)
        if seal.file in self._published:
            return
        if not snapshot_share.is_published(self.store.engine, folder.name, seal.file):
            with self.store.engine.begin() as conn:
                snapshot_share.publish(conn, folder, seal.file, seal, info.name)
            log.info("list %s: snapshot %s published to the database", info.name, seal.file)
        self._published.add(seal.file)

    def _drop_stale(self, infos: list[ListInfo]) -> None:
        """Remove local snapshot files (and their seals) that no list version names, those of
        lists that are gone included, once older than :data:`STALE_AFTER_SECONDS`."""
        root = self.store.settings.lists_dir
        if not root.is_dir():
            return
        named: dict[str, set[str]] = {}
        # each list's folder from the records already read (ListStore.folder would read the
        # list's record again for every version)
        folders = {i.name: self.store.folder_of(i).name for i in infos}
        with self.store.engine.connect() as conn:
            for row in conn.execute(select(list_versions_table.c.list_name,
                                           list_versions_table.c.file)):
                where = folders.get(row.list_name) or self.store.folder(row.list_name).name
                named.setdefault(where, set()).add(row.file)
        for info in infos:
            if info.current_file:
                named.setdefault(folders[info.name], set()).add(info.current_file)
        cutoff = time.time() - STALE_AFTER_SECONDS
        for folder in root.iterdir():
            if not folder.is_dir():
                continue
            keep = named.get(folder.name, set())
            for f in folder.iterdir():
                file = f.name.removesuffix(SEAL_SUFFIX)
                if f.name.startswith(".") or file in keep:
                    continue
                try:
                    if f.stat().st_mtime < cutoff:
                        f.unlink()
                except OSError:
                    continue


__all__ = ["STALE_AFTER_SECONDS", "ListSync"]
