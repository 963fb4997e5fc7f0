"""Contradictory pairs, unbounded time spans, endpoints and an HMAC key that were accepted
when the settings loaded and then meant something else (settings review, findings 9, 10
and 12): each is refused, naming the setting, and never repeats a value that may be secret."""

from __future__ import annotations

from pathlib import Path

import pytest

from dncguard.config import all_sections, load_settings
from dncguard.errors import ConfigError

from .conftest import log_lines

#: Every http-batch setting the source needs, so that one endpoint can be judged alone.
HTTP_BATCH = ('[http_batch]\nclient_id = "c"\nclient_secret = "s"\nlist_ids = ["a"]\n')


def _load(tmp_path: Path, text: str) -> None:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    (home / "dncguard.toml").write_text(text, encoding="utf-8")
    all_sections(load_settings())


class TestPairsInOrder:
    def test_cxone_concurrency_above_its_maximum_is_refused(self, tmp_path: Path) -> None:
        """As http-batch refuses it: it was cut to the maximum without a word."""
        with pytest.raises(ConfigError, match=r"\[cxone\].*concurrency "
                                              r"\(DNCGUARD_CXONE_CONCURRENCY\) 64 is above "
                                              r"max_concurrency"):
            _load(tmp_path, "[cxone]\nconcurrency = 64\nmax_concurrency = 16\n")
        _load(tmp_path, "[cxone]\nconcurrency = 16\nmax_concurrency = 16\n")

    def test_audit_first_delay_above_the_longest_is_refused(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigError, match=r"\[audit\].*export_base_delay .*7200 is above "
                                              r"export_max_delay .*3600"):
            _load(tmp_path, "[audit]\nexport_base_delay = 7200\nexport_max_delay = 3600\n")
        _load(tmp_path, "[audit]\nexport_base_delay = 3600\nexport_max_delay = 3600\n")

    def test_a_bound_lowered_alone_lowers_the_default_start(
            self, monkeypatch: pytest.MonkeyPatch) -> None:
        """DNCGUARD_CXONE_MAX_CONCURRENCY=2 alone (default start 4) stopped every command,
        CXone configured or not; so did EXPORT_MAX_DELAY=10 (default first delay 30)."""
        from dncguard.audit.settings import load_audit_settings
        from dncguard.sources.cxone.settings import load_cxone
        from dncguard.sources.remote.http_batch import HttpBatchSettings

        monkeypatch.setenv("DNCGUARD_CXONE_MAX_CONCURRENCY", "2")
        monkeypatch.setenv("DNCGUARD_AUDIT_EXPORT_MAX_DELAY", "10")
        monkeypatch.setenv("DNCGUARD_HTTP_BATCH_MAX_CONCURRENCY", "3")
        settings = load_settings()
        cx = load_cxone(settings)
        assert (cx.concurrency, cx.max_concurrency) == (2, 2)
        audit = load_audit_settings(settings)
        assert (audit.export_base_delay, audit.export_max_delay) == (10, 10)
        hb = settings.section(HttpBatchSettings)
        assert (hb.concurrency, hb.max_concurrency) == (3, 3)


@pytest.mark.parametrize(("section", "key", "most"), [
    ("server", "metrics_flush_seconds", 3600),
    ("server", "job_poll_seconds", 300),
    ("server", "export_seconds", 3600),
    ("server", "job_chunk_delay", 60),
    ("http_batch", "timeout_seconds", 3600),
    ("http_batch", "token_margin_seconds", 3600),
    ("cxone", "token_margin_seconds", 3600),
])
def test_time_spans_are_bounded(tmp_path: Path, section: str, key: str, most: int) -> None:
    with pytest.raises(ConfigError, match=rf"\[{section}\].*{key}: Input should be less than "
                                          rf"or equal to {most}"):
        _load(tmp_path, f"[{section}]\n{key} = 1e300\n")
    _load(tmp_path, f"[{section}]\n{key} = {most}\n")


class TestEndpoints:
    @pytest.mark.parametrize(("text", "setting"), [
        (HTTP_BATCH + 'base_url = "not a url"\ntoken_url = "https://auth.example/token"\n',
         "DNCGUARD_HTTP_BATCH_BASE_URL"),
        (HTTP_BATCH + 'base_url = "https://dnc.example"\ntoken_url = "ftp://auth.example/t"\n',
         "DNCGUARD_HTTP_BATCH_TOKEN_URL"),
        ('[cxone]\nissuer = "not a url"\n', "DNCGUARD_CXONE_ISSUER"),
        ('[cxone]\napi_endpoint = "https://:443"\n', "DNCGUARD_CXONE_API_ENDPOINT"),
        ('[cxone]\napi_endpoint = "https://api.example:99999"\n',
         "DNCGUARD_CXONE_API_ENDPOINT"),
    ])
    def test_an_endpoint_that_is_no_http_url_is_refused(self, tmp_path: Path, text: str,
                                                        setting: str) -> None:
        with pytest.raises(ConfigError, match=rf"{setting} or .*give an http:// or https:// "
                                              "URL with a host") as refused:
            _load(tmp_path, text)
        assert "not a url" not in str(refused.value)  # the value is never repeated

    def test_good_endpoints_load_as_before(self, tmp_path: Path) -> None:
        _load(tmp_path, HTTP_BATCH + 'base_url = "https://dnc.example/"\n'
                        'token_url = "http://127.0.0.1:8080/token"\n'
                        '[cxone]\nissuer = "https://cxone-gov.niceincontact.com/"\n'
                        'api_endpoint = "https://api-na1.niceincontact.com"\n')
        sections = all_sections(load_settings())
        assert sections["http_batch"].base_url == "https://dnc.example/"  # type: ignore[attr-defined]
        assert sections["cxone"].issuer == "https://cxone-gov.niceincontact.com"  # type: ignore[attr-defined]

    @pytest.mark.parametrize("version", ["latest", "v33.0-beta", "33.0.1", "v", "vv33"])
    def test_an_api_version_not_of_the_documented_form_is_refused(self, tmp_path: Path,
                                                                  version: str) -> None:
        """``latest`` became ``vlatest.0``, a path no CXone API serves."""
        with pytest.raises(ConfigError, match=r"\[cxone\].*api_version: is not an API "
                                              r"version such as v33\.0"):
            _load(tmp_path, f'[cxone]\napi_version = "{version}"\n')

    @pytest.mark.parametrize(("version", "read"), [("v33.0", "v33.0"), ("30", "v30.0"),
                                                   ("v12", "v12.0"), ("34.1", "v34.1")])
    def test_an_api_version_of_the_documented_form_is_read(self, tmp_path: Path,
                                                           version: str, read: str) -> None:
        _load(tmp_path, f'[cxone]\napi_version = "{version}"\n')
        assert all_sections(load_settings())["cxone"].api_version == read  # type: ignore[attr-defined]


class TestHmacKey:
    """A configured key is used as given, as before (no key that worked is refused after an
    upgrade: the records keyed with it are found only with it); a key under 32 characters is
    used with a warning."""

    @pytest.mark.parametrize("key", ["cl\u00e9-secr\u00e8te-0123456789abcdef0123456789",
                                     "0123456789abcdef0123456789abcdef\n"])
    def test_a_key_that_worked_before_is_still_used(self, monkeypatch: pytest.MonkeyPatch,
                                                    key: str) -> None:
        from dncguard.audit.settings import hmac_key, load_audit_settings

        monkeypatch.setenv("DNCGUARD_AUDIT_HMAC_KEY", key)
        settings = load_settings()
        assert hmac_key(settings, load_audit_settings(settings)) == (key.encode(), False)

    @pytest.mark.parametrize("key", ["Zq9", "Q" * 31])
    def test_a_short_key_is_used_with_a_warning(self, monkeypatch: pytest.MonkeyPatch,
                                                key: str) -> None:
        from dncguard.audit import settings as audit_settings
        from dncguard.audit.settings import hmac_key, load_audit_settings

        monkeypatch.setenv("DNCGUARD_AUDIT_HMAC_KEY", key)
        audit_settings._WARNED.clear()
        with log_lines("dncguard.audit") as logged:
            settings = load_settings()
            assert hmac_key(settings, load_audit_settings(settings)) == (key.encode(), False)
        assert any(f"holds {len(key)} characters, fewer than 32" in line
                   for line in logged.lines)
        assert not any(key in line for line in logged.lines)

    def test_a_key_of_32_characters_is_used(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from dncguard.audit.settings import hmac_key, load_audit_settings

        monkeypatch.setenv("DNCGUARD_AUDIT_HMAC_KEY", "k" * 32)
        settings = load_settings()
        assert hmac_key(settings, load_audit_settings(settings)) == (b"k" * 32, False)
