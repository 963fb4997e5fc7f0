"""The sources a scrub runs when none are given: every configured list and source.

Each source is registered here, in the order its reasons are listed: the local lists, CXone's
DNC groups (when configured or synced), an http-batch service (when configured), and the
rules (unless turned off). Nothing else names a source."""

from __future__ import annotations

from ..config import Settings
from ..lists.store import ListStore
from .cxone.settings import load_cxone
from .cxone.source import CxoneCheck
from .local import LocalListsCheck
from .protocol import Check
from .remote.http_batch import HttpBatchCheck, load_http_batch


def default_checks(settings: Settings, store: ListStore | None = None) -> list[Check]:
    """The checks a scrub runs when none are given: every configured list and source."""
    store = store or ListStore(settings)
    infos = store.all()
    checks: list[Check] = [LocalListsCheck(store, infos)]
    cx = load_cxone(settings)
    if cx.asked_for or any(i.kind == "cxone" for i in infos):
        checks.append(CxoneCheck(settings, cx, store=store))
    hb = load_http_batch(settings)
    if hb.configured:  # (given in part, the settings are refused when they load)
        checks.append(HttpBatchCheck(hb, settings=settings))
    from .rules import RulesCheck, RulesSettings

    rules_settings = settings.section(RulesSettings)
    if rules_settings.enabled:
        checks.append(RulesCheck(settings, rules_settings=rules_settings, store=store))
    return checks


__all__ = ["default_checks"]
