"""Discovery and auth against the sandbox over real sockets."""

from __future__ import annotations

import asyncio
import logging

import httpx
import pytest

from dncguard.config import Settings
from dncguard.errors import SourceError
from dncguard.models import Decision
from dncguard.sandbox import SandboxServer
from dncguard.sources.cxone import CxoneSync

from .conftest import FakeSleep, cx_settings, decisions, make_client, scrubber, verdicts


async def test_discovery_password_grant_and_tenant(settings: Settings, sandbox: SandboxServer,
                                                   sleep: FakeSleep) -> None:
    cx = cx_settings(sandbox)
    async with make_client(cx, sleep) as client:
        oidc = await client.openid_configuration()
        assert oidc["token_endpoint"] == f"{sandbox.url}/auth/token"
        assert oidc["token_endpoint_auth_methods_supported"] == ["client_secret_basic"]
        api = await client.discover()
        assert api == sandbox.url
        assert client.tokens.tenant_id == sandbox.state.config.tenant_id
        assert client.tokens.grants == ["password"]
        groups = await client.groups()
        await CxoneSync(settings, cx, client).sync()
    assert {g["dncGroupId"] for g in groups} == {364, 365, 366}
    assert sandbox.state.requests["GET /.well-known/cxone-configuration"] == 1
    scr, _ = scrubber(settings, cx, sleep)
    out = await verdicts(scr, ["+12025550101", "+15125550100"])
    assert decisions(out) == {"+12025550101": Decision.BLOCK, "+15125550100": Decision.ALLOW}


async def test_concurrent_callers_share_one_token_request(sandbox: SandboxServer,
                                                          sleep: FakeSleep) -> None:
    async with make_client(cx_settings(sandbox), sleep) as client:
        results = await asyncio.gather(*(client.groups() for _ in range(25)))
    assert all(len(r) == 3 for r in results)
    assert sandbox.state.grants["password"] == 1


async def test_client_credentials_is_refused_like_real_cxone(sandbox: SandboxServer) -> None:
    async with httpx.AsyncClient() as http:
        resp = await http.post(f"{sandbox.url}/auth/token",
                               data={"grant_type": "client_credentials"},
                               auth=("sandbox-app", "sandbox-app-secret"))
    assert resp.status_code == 400
    assert resp.json()["error"] == "unsupported_grant_type"


async def test_bad_access_key_is_one_clear_error_without_secrets(
        sandbox: SandboxServer, sleep: FakeSleep, caplog: pytest.LogCaptureFixture) -> None:
    cx = cx_settings(sandbox, access_key_secret="wrong-secret-value")
    caplog.set_level(logging.DEBUG)
    async with make_client(cx, sleep) as client:
        with pytest.raises(SourceError) as err:
            await client.groups()
    assert "invalid_grant" in str(err.value)
    assert "wrong-secret-value" not in str(err.value)
    assert "wrong-secret-value" not in caplog.text
    assert "sandbox-app-secret" not in repr(cx) and "wrong-secret-value" not in repr(cx)
    assert sleep.calls == []  # a refusal is final, not retried


async def test_refresh_grant_before_expiry_then_password_when_refresh_fails(
        sandbox: SandboxServer, sleep: FakeSleep) -> None:
    now = {"t": 1000.0}
    cx = cx_settings(sandbox, token_margin_seconds=300)
    async with make_client(cx, sleep, clock=lambda: now["t"]) as client:
        await client.groups()
        now["t"] += 3600 - 200  # inside the refresh margin
        await client.groups()
        assert client.tokens.grants == ["password", "refresh_token"]
        sandbox.state.refresh_tokens.clear()  # refresh token no longer accepted
        now["t"] += 3600
        await client.groups()
    assert client.tokens.grants == ["password", "refresh_token", "refresh_token", "password"]


async def test_401_reauthenticates_once_and_retries(sandbox: SandboxServer,
                                                    sleep: FakeSleep) -> None:
    async with make_client(cx_settings(sandbox), sleep) as client:
        await client.groups()
        sandbox.state.revoke_tokens()  # token expires on the server's side
        groups = await client.groups()
    assert len(groups) == 3
    assert sandbox.state.grants["refresh_token"] == 1


async def test_missing_configuration_is_a_config_error() -> None:
    from dncguard.errors import ConfigError
    from dncguard.sources.cxone import CxoneClient, CxoneSettings

    with pytest.raises(ConfigError, match="DNCGUARD_CXONE_CLIENT_ID"):
        CxoneClient(CxoneSettings())


async def test_search_logs_no_full_number(sandbox: SandboxServer, sleep: FakeSleep,
                                          caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with make_client(cx_settings(sandbox), sleep) as client:
        found = await client.search("2025550101")
        assert repr(client.tokens.token).count("sbx.") == 0  # no token in repr
    assert [r["dncGroupId"] for r in found] == [364]
    assert "phoneNumber=202555****" in caplog.text
    assert "2025550101" not in caplog.text
