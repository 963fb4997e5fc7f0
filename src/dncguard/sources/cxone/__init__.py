"""NICE CXone integration: auth and discovery, DNC-group sync, live search, write-back and the
``cxone`` check. See ``docs/cxone.md``."""

from ._client import CxoneClient, TokenCache, group_on
from ._sync import CxoneSync, SyncFailed, SyncReport
from .push import TOPIC, PushReport, enqueue_expire, enqueue_optout, push, push_pending
from .settings import CxoneSettings, load_cxone
from .source import CxoneCheck

__all__ = ["TOPIC", "CxoneCheck", "CxoneClient", "CxoneSettings", "CxoneSync", "PushReport",
           "SyncFailed", "SyncReport", "TokenCache", "enqueue_expire", "enqueue_optout",
           "group_on", "load_cxone", "push", "push_pending"]
