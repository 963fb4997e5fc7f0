"""A records answer without content is never read as an empty group: a 204 is one only when
the group says it holds no valid record (``validRecords`` 0), a 200 with an empty body is
unreadable (retried, then the group's sync fails), and a page of fewer records than the
group's ``validRecords`` is refused. The last sync stands, and the other groups are synced.
(Real sockets to the sandbox; answers are rewritten on their way back.)"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from dncguard.config import Settings
from dncguard.errors import SourceError
from dncguard.lists.store import ListStore
from dncguard.models import Decision

from .conftest import FakeSleep, Hook, cx_settings, judge, sync
from .test_sync_fail_closed import PAST, TWO

US, OTHER = "+12025550101", "+16175550105"


def records_of(gid: str, answer: Any) -> Hook:
    """Answers every GET of group ``gid``'s records with ``answer`` (a status and body)."""
    status, body = answer

    def hook(request: httpx.Request, response: httpx.Response) -> httpx.Response | None:
        if request.method == "GET" and request.url.path.endswith(f"/dnc-groups/{gid}/records"):
            if isinstance(body, bytes):
                return httpx.Response(status, content=body, request=request)
            return httpx.Response(status, json=body, request=request)
        return None
    return hook


EMPTY_PAGE = {"resultSet": {"totalRecords": 0, "dncRecords": []}}


@pytest.mark.parametrize(("answer", "error"), [
    ((204, b""), r"no content \(204\) for the records of DNC group 364, whose validRecords is 1"),
    ((200, b""), "HTTP 200 with an empty body"),
    ((200, b"  \n"), "HTTP 200 with an empty body"),
    ((200, EMPTY_PAGE), "sent 0 records but says it holds 1 valid records"),
])
async def test_records_without_content_keep_the_group(
        settings: Settings, sandbox_factory: Any, sleep: FakeSleep, answer: Any,
        error: str) -> None:
    sb = sandbox_factory(data=TWO)
    cx = cx_settings(sb)
    await sync(settings, cx, sleep)
    sb.state.add_record(365, "3125550104")  # group 365 changes meanwhile: it is synced
    with pytest.raises(SourceError, match=error) as raised:
        await sync(settings, cx, sleep, records_of("364", answer))
    assert "group 364" in str(raised.value) and "synced: 365" in str(raised.value)
    assert ListStore(settings).get("cxone:364").count == 1  # type: ignore[union-attr]
    assert await judge(settings, cx, sleep, [US, OTHER, "+13125550104"]) == {
        US: Decision.BLOCK, OTHER: Decision.BLOCK, "+13125550104": Decision.BLOCK}


async def test_no_content_is_an_empty_group_when_it_holds_no_valid_record(
        settings: Settings, sandbox_factory: Any, sleep: FakeSleep) -> None:
    sb = sandbox_factory(data={"groups": [{"dncGroupId": 364, "dncGroupName": "Lapsed",
                                           "records": [{"phoneNumber": "2025550101",
                                                        "expiredDate": PAST}]}]})
    assert sb.state.groups[364]["validRecords"] == 0
    cx = cx_settings(sb)
    report = await sync(settings, cx, sleep, records_of("364", (204, b"")))
    (g,) = report.groups
    assert (g.mode, g.records, g.fetched) == ("full", 0, 0)
    assert ListStore(settings).get("cxone:364").synced_at is not None  # type: ignore[union-attr]
