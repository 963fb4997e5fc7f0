"""Starting the service: keys required unless --no-auth; per-key rate limits; the keys CLI."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from dncguard.config import load_settings
from dncguard.server._deps import TokenBuckets
from dncguard.server.app import create_app
from dncguard.server.keys import KeyStore, hash_key
from dncguard.store import get_engine

from ..conftest import cli
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


def test_serve_gives_uvicorn_the_proxy_settings(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """``[server] proxy_headers`` and ``forwarded_allow_ips`` reach uvicorn (docs/console.md:
    behind a proxy that terminates TLS the console's cookies are Secure only with them);
    ``dncguard serve`` hard-coded proxy_headers=False. uvicorn.run is stood in for."""
    import uvicorn

    make_key(tmp_path / "home", "check")  # the home the tests' environment names
    ran: list[dict[str, object]] = []
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kw: ran.append(kw))
    assert cli(capsys, "serve", "--port", "18631")[0] == 0
    monkeypatch.setenv("DNCGUARD_SERVER_PROXY_HEADERS", "true")
    monkeypatch.setenv("DNCGUARD_SERVER_FORWARDED_ALLOW_IPS", "10.0.0.0/8, 192.0.2.7")
    assert cli(capsys, "serve", "--port", "18631")[0] == 0
    assert [(kw.get("proxy_headers"), kw.get("forwarded_allow_ips")) for kw in ran] == [
        (False, "127.0.0.1"), (True, "10.0.0.0/8,192.0.2.7")]
    monkeypatch.setenv("DNCGUARD_SERVER_FORWARDED_ALLOW_IPS", "10.0.0.0/8 192.0.2.7")
    code, _, err = cli(capsys, "serve", "--port", "18631")
    assert code == 2 and len(ran) == 2 and "Traceback" not in err
    assert "forwarded_allow_ips: '10.0.0.0/8 192.0.2.7' is not an IP address" in err


@pytest.mark.parametrize(("name", "value", "why"), [
    ("KEY_CACHE_SECONDS", "inf", "key_cache_seconds: Input should be a finite number"),
    ("KEY_CACHE_SECONDS", "nan", "key_cache_seconds: Input should be a finite number"),
    ("KEY_CACHE_SECONDS", "301", "key_cache_seconds: Input should be less than or equal to 300"),
    ("RATE_PER_SECOND", "inf", "rate_per_second: Input should be a finite number"),
    ("JOB_CHUNK_DELAY", "nan", "job_chunk_delay: Input should be a finite number"),
    ("EXPORT_SECONDS", "Infinity", "export_seconds: Input should be a finite number"),
])
def test_server_settings_refuse_what_no_limit_means(
        monkeypatch: pytest.MonkeyPatch, name: str, value: str, why: str) -> None:
    """``key_cache_seconds=inf`` was taken: a revoked key was then trusted for ever (and an
    hour would be most of one); ``rate_per_second=inf`` was no limit. No float setting takes
    inf or nan, and a key is trusted unchecked 300 s at most: refused in one line."""
    from dncguard.errors import ConfigError
    from dncguard.server.settings import load_server_settings

    monkeypatch.setenv(f"DNCGUARD_SERVER_{name}", value)
    with pytest.raises(ConfigError) as refused:
        load_server_settings(load_settings())
    assert str(refused.value) == f"invalid [server] settings: {why}"


def test_server_settings_refuse_infinity_in_the_file(tmp_path: Path) -> None:
    """TOML has inf and nan literals: the file is refused as the environment is."""
    from dncguard.errors import ConfigError
    from dncguard.server.settings import load_server_settings

    home = tmp_path / "home"
    home.mkdir()
    (home / "dncguard.toml").write_text("[server]\nkey_cache_seconds = inf\n")
    with pytest.raises(ConfigError, match="key_cache_seconds: Input should be a finite number"):
        load_server_settings(load_settings(home=home))
    (home / "dncguard.toml").write_text("[server]\nkey_cache_seconds = 300\n")
    assert load_server_settings(load_settings(home=home)).key_cache_seconds == 300


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


def test_keys_cli_refuses_a_second_revoke(capsys: pytest.CaptureFixture[str]) -> None:
    """Revoking a key revoked already printed success and exited 0; it is refused as an
    unknown id is (one line, exit 2), saying when it was revoked."""
    code, text, _ = cli(capsys, "keys", "create", "--name", "dialer", "--scope", "check")
    assert code == 0
    key_id = text.strip().split("_")[1]
    assert cli(capsys, "keys", "revoke", key_id)[0] == 0
    [key] = KeyStore(get_engine(load_settings())).all()
    code, out, err = cli(capsys, "keys", "revoke", key_id)
    assert (code, out) == (2, "") and len(err.strip().splitlines()) == 1, err
    assert re.search(rf"^error: key {key_id} \(dialer\) was already revoked at "
                     r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00; nothing changed$", err.strip()), err
    assert KeyStore(get_engine(load_settings())).all() == [key]  # its revocation time stands


def test_keys_cli_refuses_names_it_cannot_keep(capsys: pytest.CaptureFixture[str]) -> None:
    """A name that is empty, longer than the column's 200 characters or holds a control
    character is refused in one line before any key is made; one that looks like markup is
    shown as it is (it made rich raise after the key was made, its secret never shown, and
    every later ``keys list``)."""
    for name, why in [("", "is empty"), ("  ", "is empty"),
                      ("x" * 201, "is 201 characters long; at most 200"),
                      ("ops\x1b[31m", "contains the control character U+001B"),
                      ("ops\nadmin", "contains the control character U+000A")]:
        code, out, err = cli(capsys, "keys", "create", "--name", name, "--scope", "check")
        assert (code, out) == (2, "") and f"the key's name {why}" in err, (name, err)
        assert len(err.strip().splitlines()) == 1, err
    for name in ("x" * 200, "[/]"):
        code, out, err = cli(capsys, "keys", "create", "--name", name, "--scope", "check")
        assert code == 0 and out.startswith("dgk_") and f"({name};" in err, err
    code, out, _ = cli(capsys, "keys", "list")
    assert code == 0 and "[/]" in out
    store = KeyStore(get_engine(load_settings()))
    assert sorted(k.name for k in store.all()) == ["[/]", "x" * 200]


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
