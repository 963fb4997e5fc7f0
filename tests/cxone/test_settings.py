"""CXone and http-batch settings from the environment and the TOML file."""

from __future__ import annotations

from pathlib import Path

import pytest

from dncguard.config import load_settings
from dncguard.errors import ConfigError
from dncguard.sources.cxone.settings import PUBLIC_ISSUER, load_cxone
from dncguard.sources.remote.http_batch import load_http_batch


def test_environment_names_and_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    cx = load_cxone(load_settings())
    assert cx.issuer == PUBLIC_ISSUER and not cx.configured
    for name, value in {"CLIENT_ID": "app", "CLIENT_SECRET": "s3cret-app",
                        "ACCESS_KEY_ID": "AKID", "ACCESS_KEY_SECRET": "s3cret-key",
                        "API_VERSION": "30", "ISSUER": "https://cxone-gov.niceincontact.com/",
                        "STALE_POLICY": "live_search", "GROUPS": '["364"]'}.items():
        monkeypatch.setenv(f"DNCGUARD_CXONE_{name}", value)
    cx = load_cxone(load_settings())
    assert cx.configured
    assert cx.api_version == "v30.0"
    assert cx.issuer == "https://cxone-gov.niceincontact.com"
    assert cx.stale_policy == "live_search" and cx.groups == ["364"]
    assert "s3cret" not in repr(cx) and "s3cret" not in str(cx.model_dump())


def test_toml_tables_and_invalid_values(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                        ) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "dncguard.toml").write_text(
        '[cxone]\npush_group = "364"\nmax_sync_age_hours = 2\n'
        '[http_batch]\nchunk_size = 10\n'  # tuning alone: not a source given in part
        'match_type = "hash"\n', encoding="utf-8")
    monkeypatch.setenv("DNCGUARD_HOME", str(home))
    settings = load_settings()
    cx = load_cxone(settings)
    assert cx.push_group == "364" and cx.max_sync_age_hours == 2
    hb = load_http_batch(settings)
    assert hb.chunk_size == 10 and hb.match_type == "hash"
    assert not hb.configured
    monkeypatch.setenv("DNCGUARD_CXONE_STALE_POLICY", "allow")
    assert load_cxone(settings) is cx  # the settings already hold their section
    with pytest.raises(ConfigError, match=r"\[cxone\]"):
        load_cxone(load_settings())
