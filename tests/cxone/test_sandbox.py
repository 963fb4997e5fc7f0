"""The sandbox itself: seeding, discovery errors, headers, permissions, paging limits."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from dncguard.sandbox import SandboxConfig, run_sandbox


def token(url: str, key: str = "SANDBOXKEY", secret: str = "sandbox-secret") -> str:
    resp = httpx.post(f"{url}/auth/token", auth=("sandbox-app", "sandbox-app-secret"),
                      data={"grant_type": "password", "username": key, "password": secret})
    assert resp.status_code == 200
    return str(resp.json()["access_token"])


def test_seed_file_paging_headers_and_permissions(tmp_path: Path) -> None:
    seed = tmp_path / "seed.json"
    seed.write_text(json.dumps({
        "groups": [{"dncGroupId": 7, "dncGroupName": "G",
                    "records": [f"20255501{i:02d}" for i in range(30)]}],
        "config": {"max_top": 10, "access_keys": {"RW": "a", "RO": "b"},
                   "read_only_keys": ["RO"]}}))
    with run_sandbox(data=seed) as sb:
        url = sb.url
        api = f"{url}/inContactAPI/services/v33.0"
        rw = {"Authorization": f"Bearer {token(url, 'RW', 'a')}", "Accept": "application/json"}
        page = httpx.get(f"{api}/dnc-groups/7/records", params={"top": 500, "skip": 25},
                         headers=rw).json()["resultSet"]
        assert page["totalRecords"] == 30 and len(page["dncRecords"]) == 5
        first = httpx.get(f"{api}/dnc-groups/7/records", params={"top": 500},
                          headers=rw).json()["resultSet"]["dncRecords"]
        assert len(first) == 10  # capped at max_top
        assert httpx.get(f"{api}/dnc-groups/7/records",
                         headers={"Authorization": rw["Authorization"]}).status_code == 406
        assert httpx.get(f"{api}/dnc-groups/7/records", params={"orderBy": "bogus asc"},
                         headers=rw).status_code == 400
        assert httpx.get(f"{url}/inContactAPI/services/v4.0/dnc-groups",
                         headers=rw).status_code == 404
        assert httpx.get(f"{api}/dnc-groups/99", headers=rw).status_code == 404
        ro = {"Authorization": f"Bearer {token(url, 'RO', 'b')}", "Accept": "application/json"}
        body = {"dncGroupRecords": [{"phoneNumber": 2025550199}]}
        assert httpx.post(f"{api}/dnc-groups/7/records", json=body, headers=ro
                          ).status_code == 403
        added = httpx.post(f"{api}/dnc-groups/7/records", json=body, headers=rw).json()
        assert added["resultSet"]["errorCount"] == 0
        found = httpx.post(f"{api}/dnc-groups/search", json={"phoneNumber": "2025550199"},
                           headers=rw).json()["searchResults"]
        assert [r["dncGroupId"] for r in found] == [7]
        assert httpx.get(f"{url}/.well-known/cxone-configuration",
                         params={"tenantId": "nope"}).status_code == 404
        bad = httpx.post(f"{url}/auth/token", auth=("sandbox-app", "wrong"),
                         data={"grant_type": "password", "username": "RW", "password": "a"})
        assert bad.status_code == 401 and bad.json()["error"] == "invalid_client"


def test_rate_limit_answers_429_with_optional_retry_after() -> None:
    for flag in (False, True):
        with run_sandbox(SandboxConfig(rate_limit=1.0, burst=2, retry_after=flag)) as sb:
            h = {"Authorization": f"Bearer {token(sb.url)}", "Accept": "application/json"}
            codes = [httpx.get(f"{sb.url}/inContactAPI/services/v33.0/dnc-groups", headers=h)
                     for _ in range(4)]
            limited = [r for r in codes if r.status_code == 429]
            assert limited
            assert all(("retry-after" in r.headers) is flag for r in limited)
