"""The local lists: :mod:`.store` (:class:`~.store.ListStore`: import, versions, opt-outs,
membership), :mod:`.files` (reading list downloads), :mod:`.snapshots` (the sorted and bitmap
snapshot files), :mod:`.integrity` (their seals), :mod:`.share` and :mod:`.sync` (snapshots
through PostgreSQL between replicas), :mod:`.freshness` (registry age) and :mod:`.optouts`.

The package imports nothing on its own.
"""
