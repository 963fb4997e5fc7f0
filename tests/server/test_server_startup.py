"""Starting the service: keys required unless --no-auth; per-key rate limits; the keys CLI."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from dncguard.config import load_settings
from dncguard.server._deps import TokenBuckets
from dncguard.server.app import create_app
from dncguard.server.keys import KeyStore, hash_key
from dncguard.store import get_engine

from .conftest import Server, make_key, server_env


def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dncguard.server", *args], env=env,
                          capture_output=True, text=True, timeout=60)


def test_refuses_to_start_without_a_key(tmp_path: Path) -> None:
    done = run_cli(server_env(tmp_path / "home"), "serve", "--port", "0")
    assert done.returncode == 2
    assert "no API key exists" in done.stderr


def test_a_log_level_that_is_not_one_is_refused_in_one_line(tmp_path: Path) -> None:
    """``--log-level verbose`` ended in a 64-line traceback from the logging setup."""
    home = tmp_path / "home"
    make_key(home, "check")
    done = run_cli(server_env(home), "serve", "--port", "0", "--log-level", "verbose")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "--log-level" in done.stderr and "'verbose' is not a level" in done.stderr
    helped = run_cli(server_env(home), "keys", "create", "--help")
    from dncguard.server.keys import SCOPES

    assert all(scope in helped.stdout for scope in SCOPES)


def test_create_app_refuses_without_a_key(tmp_path: Path) -> None:
    import pytest

    from dncguard.errors import ConfigError

    with pytest.raises(ConfigError, match="no API key"):
        create_app(load_settings(home=tmp_path / "home"))


def test_no_auth_serves_and_says_so_loudly(start_server: Callable[..., Server],
                                           tmp_path: Path) -> None:
    server = start_server(server_env(tmp_path / "home"), "--no-auth")
    with server.client() as c:
        assert c.post("/v1/check", json={"phone": "+12025550123"}).json()["decision"] == "allow"
    assert "AUTHENTICATION IS OFF" in server.log()


def test_rate_limit_per_key(start_server: Callable[..., Server], tmp_path: Path) -> None:
    home = tmp_path / "home"
    a, b = make_key(home, "check"), make_key(home, "check")
    server = start_server(server_env(home, DNCGUARD_SERVER_RATE_PER_SECOND="0.01",
                                     DNCGUARD_SERVER_RATE_BURST="3"))
    with server.client(a) as c:
        codes = [c.post("/v1/check", json={"phone": "+12025550123"}).status_code
                 for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        limited = c.post("/v1/check", json={"phone": "+12025550123"})
        assert limited.json()["error"]["code"] == "rate_limited"
        assert int(limited.headers["retry-after"]) >= 1
    with server.client(b) as c:  # another key has its own bucket
        assert c.post("/v1/check", json={"phone": "+12025550123"}).status_code == 200


def test_token_bucket_refills() -> None:
    buckets = TokenBuckets(rate=0.001, burst=2)
    assert buckets.take("k") == 0 and buckets.take("k") == 0
    assert buckets.take("k") > 100  # seconds until the next token
    assert buckets.take("other") == 0


def test_keys_cli_create_list_revoke(tmp_path: Path) -> None:
    env = server_env(tmp_path / "home")
    created = run_cli(env, "keys", "create", "--name", "dialer", "--scope", "check",
                      "--scope", "jobs")
    assert created.returncode == 0, created.stderr
    text = created.stdout.strip()
    assert text.startswith("dgk_") and "shown once" in created.stderr
    store = KeyStore(get_engine(load_settings(home=tmp_path / "home")), cache_seconds=0)
    [key] = store.all()
    assert key.scopes == ("check", "jobs") and key.name == "dialer"
    assert store.verify(text) == key and store.verify(text + "x") is None
    listed = run_cli(env, "keys", "list", "--json")
    assert key.id in listed.stdout and text not in listed.stdout
    assert hash_key(text) not in listed.stdout
    assert run_cli(env, "keys", "revoke", key.id).returncode == 0
    assert store.verify(text) is None
    import pytest

    from dncguard.server.keys import ApiKeyError

    with pytest.raises(ApiKeyError, match="scopes must be among"):
        store.create("x", ["root"])


def _interpreter() -> tuple[float, tuple[int, int, int]]:
    import gc

    return sys.getswitchinterval(), gc.get_threshold()


def test_serving_tunes_the_interpreter_and_restores(tmp_path: Path) -> None:
    """While the app serves, the interpreter switches threads at SWITCH_INTERVAL (the audit
    writer's thread gets the GIL back sooner behind a batch on the loop) and collects at
    GC_THRESHOLD (a batch's verdicts are not walked again and again); afterwards the process
    has its own settings again (an embedding program's are not kept)."""
    import asyncio

    from dncguard.server import app as app_module

    home = tmp_path / "home"
    make_key(home, "check")
    app = create_app(load_settings(home=home), run_jobs=False)
    before = _interpreter()
    serving = (app_module.SWITCH_INTERVAL, app_module.GC_THRESHOLD)
    assert before[0] != serving[0] and before[1] != serving[1]
    seen: list[tuple[float, tuple[int, int, int]]] = []

    async def serve() -> None:
        async with app.router.lifespan_context(app):
            seen.append(_interpreter())

    asyncio.run(serve())
    assert seen == [serving]
    assert _interpreter() == before


def test_interpreter_settings_are_restored_when_the_block_fails() -> None:
    """A failed shutdown still gives the process its own settings back."""
    import pytest

    from dncguard.server.app import serving_interpreter

    before = _interpreter()
    with pytest.raises(RuntimeError), serving_interpreter(before[0] * 3, (12_345, 7, 7)):
        assert _interpreter() == (pytest.approx(before[0] * 3), (12_345, 7, 7))
        raise RuntimeError("shutdown failed")
    assert _interpreter() == before


def test_overlapping_apps_keep_the_settings_until_the_last_stops() -> None:
    """Two apps serving in one process (tests, an embedding program): the first to stop does
    not take the settings from the other; the last restores what the process had."""
    import contextlib

    import pytest

    from dncguard.server.app import serving_interpreter

    before = _interpreter()
    with contextlib.ExitStack() as first:
        first.enter_context(serving_interpreter(before[0] * 3, (12_345, 7, 7)))
        second = serving_interpreter(before[0] * 3, (12_345, 7, 7))
        second.__enter__()
        first.close()  # the first app stops while the second still serves
        assert _interpreter() == (pytest.approx(before[0] * 3), (12_345, 7, 7))
        second.__exit__(None, None, None)
    assert _interpreter() == before
