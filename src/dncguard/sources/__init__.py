"""Sources of reasons: everything a number is checked against.

* :mod:`.protocol`: the :class:`~.protocol.Check` protocol, :class:`~.protocol.Batch` and
  :class:`~.protocol.CheckContext`;
* :mod:`.registry`: :func:`~.registry.default_checks`, the sources a scrub runs;
* :mod:`.local`: the local lists, and the wireless lists that mark mobile lines;
* :mod:`.rules`: the regulatory rules (calling windows, holidays, registries, caps, consent);
* :mod:`.cxone`: NICE CXone DNC groups (client, sync, live search, write-back);
* :mod:`.remote`: remote batch services (http-batch), their resilience and the hash
  pre-filter.

The package imports nothing on its own.
"""
