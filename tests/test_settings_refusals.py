"""Fail closed at load: a setting's value is understood or refused, naming the key or the
variable; nothing is silently ignored or replaced by a default.

Each test here was a reviewer's reproduction of a value that was accepted and then meant
something else: an empty variable that stood for the default, a registry_optional entry that
matched nothing, a section written as an array of pairs read as the table it spelt, a boolean
read as a number, ``inf`` accepted, a password pasted as the database URL shown in full."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dncguard.config import all_sections, load_settings
from dncguard.errors import ConfigError

from .conftest import cli


@pytest.fixture(name="toml")
def _toml(tmp_path: Path) -> Any:
    """Writes the settings file of the test's home."""

    def write(text: str) -> Path:
        home = tmp_path / "home"
        home.mkdir(exist_ok=True)
        path = home / "dncguard.toml"
        path.write_text(text, encoding="utf-8")
        return path

    return write


def _load_all() -> None:
    all_sections(load_settings())


def _one_line_refusal(err: str, *words: str) -> None:
    assert "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1, err
    for word in words:
        assert word in err, (word, err)


class TestBlankValues:
    """An empty (or whitespace) value is refused, naming the variable or the key: it used to
    stand for the default or for "off" while it looked like a setting."""

    @pytest.mark.parametrize(("variable", "fix"), [
        ("DNCGUARD_DATABASE_URL", "give a URL"),
        ("DNCGUARD_HOME", "give a folder"),
        ("DNCGUARD_CONFIG", "give the settings file's path"),
        ("DNCGUARD_USER", "give a name"),
        ("DNCGUARD_AUDIT_HMAC_KEY", "give a value"),
        ("DNCGUARD_AUDIT_EXPORT_URL", "give a URL"),
        ("DNCGUARD_SERVER_HOST", "give a value"),
        ("DNCGUARD_CXONE_CLIENT_ID", "give a value"),
        ("DNCGUARD_RULES_REGISTRY_OPTIONAL", "give a value"),
    ])
    @pytest.mark.parametrize("blank", ["", "  "])
    def test_a_blank_environment_variable_is_refused(
            self, monkeypatch: pytest.MonkeyPatch, variable: str, fix: str,
            blank: str) -> None:
        monkeypatch.setenv(variable, blank)
        with pytest.raises(ConfigError) as refused:
            _load_all()
        assert str(refused.value) == f"{variable} is empty: unset it or {fix}"

    def test_an_empty_database_url_does_not_replace_the_files(
            self, monkeypatch: pytest.MonkeyPatch, toml: Any, tmp_path: Path) -> None:
        """``DNCGUARD_DATABASE_URL=""`` overrode the file's URL, and the default database was
        used: opt-outs were written where the service never looks."""
        toml(f'database_url = "sqlite:///{tmp_path / "shared.db"}"\n')
        assert load_settings().db_url == f"sqlite:///{tmp_path / 'shared.db'}"
        monkeypatch.setenv("DNCGUARD_DATABASE_URL", "")
        with pytest.raises(ConfigError, match="^DNCGUARD_DATABASE_URL is empty"):
            load_settings()

    def test_an_empty_hmac_key_variable_does_not_discard_the_files(
            self, monkeypatch: pytest.MonkeyPatch, toml: Any, tmp_path: Path) -> None:
        """``DNCGUARD_AUDIT_HMAC_KEY=""`` discarded the [audit] key and a key file was
        generated: new records no longer matched old ones by number."""
        from dncguard.audit.settings import hmac_key, key_path, load_audit_settings

        toml('[audit]\nhmac_key = "configured-key"\n')
        s = load_settings()
        assert hmac_key(s, load_audit_settings(s)) == (b"configured-key", False)
        monkeypatch.setenv("DNCGUARD_AUDIT_HMAC_KEY", "")
        with pytest.raises(ConfigError, match="^DNCGUARD_AUDIT_HMAC_KEY is empty"):
            load_audit_settings(load_settings())
        assert not key_path(s).exists()

    @pytest.mark.parametrize(("text", "key"), [
        ('database_url = ""\n', "database_url"),
        ('object_store_url = " "\n', "object_store_url"),
        ('[server]\nhost = ""\n', "[server] host"),
        ('[server]\nhost = "  "\n', "[server] host"),
        ('[audit]\nhmac_key = ""\n', "[audit] hmac_key"),
        ('[audit]\nexport_url = ""\n', "[audit] export_url"),
        ('[cxone]\nclient_id = ""\n', "[cxone] client_id"),
        ('[rules]\ndata_dir = ""\n', "[rules] data_dir"),
    ])
    def test_a_blank_key_of_the_settings_file_is_refused(self, toml: Any, text: str,
                                                         key: str) -> None:
        toml(text)
        with pytest.raises(ConfigError) as refused:
            _load_all()
        assert str(refused.value).startswith(f"{key} is empty in the settings file: remove "
                                             "it (for the default) or give a ")

    def test_a_blank_item_of_a_list_is_refused(self, toml: Any,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
        toml('[cxone]\ngroups = ["17", " "]\n')
        with pytest.raises(ConfigError, match=r"^\[cxone\] groups holds an empty item"):
            _load_all()
        toml("")
        monkeypatch.setenv("DNCGUARD_CXONE_GROUPS", '["17", ""]')
        with pytest.raises(ConfigError, match=r"\[cxone\].*groups: holds an empty group id"):
            _load_all()

    def test_an_empty_list_of_cxone_groups_is_refused(self, toml: Any) -> None:
        """``groups = []`` was read as no list: every group checked."""
        toml("[cxone]\ngroups = []\n")
        with pytest.raises(ConfigError, match=r"\[cxone\].*groups: is an empty list"):
            _load_all()

    def test_a_blank_argument_is_refused(self) -> None:
        """Values given by a command's flags are refused the same way (``--host ""``)."""
        from dncguard.audit.settings import AuditSettings
        from dncguard.server.settings import load_server_settings

        with pytest.raises(ConfigError, match=r"\[server\].*host: is empty"):
            load_server_settings(load_settings(), host="")
        with pytest.raises(ValueError, match="export_url"):
            AuditSettings(export_url=" ")

    def test_serve_with_an_empty_host_never_listens(
            self, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
            toml: Any) -> None:
        """``[server] host = ""`` or ``DNCGUARD_SERVER_HOST=""`` made ``dncguard serve``
        listen on every interface."""
        import uvicorn

        started: list[dict[str, Any]] = []
        monkeypatch.setattr(uvicorn, "run", lambda *a, **k: started.append(k))
        toml('[server]\nhost = ""\n')
        code, out, err = cli(capsys, "serve", "--no-auth", "--port", "1")
        assert (code, out, started) == (2, "", [])
        _one_line_refusal(err, "[server] host is empty")
        toml("")
        monkeypatch.setenv("DNCGUARD_SERVER_HOST", "")
        code, out, err = cli(capsys, "serve", "--no-auth", "--port", "1")
        assert (code, out, started) == (2, "", [])
        _one_line_refusal(err, "DNCGUARD_SERVER_HOST is empty: unset it or give a value")
        monkeypatch.delenv("DNCGUARD_SERVER_HOST")
        code, out, err = cli(capsys, "serve", "--no-auth", "--port", "1", "--host", "")
        assert (code, out, started) == (2, "", [])
        _one_line_refusal(err, "host: is empty")

    def test_an_empty_home_through_the_cli(self, capsys: pytest.CaptureFixture[str],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("DNCGUARD_HOME", "")
        code, out, err = cli(capsys, "config", "show")
        assert (code, out) == (2, "")
        _one_line_refusal(err, "DNCGUARD_HOME is empty: unset it or give a folder")


class TestRegistryOptional:
    """``[rules] registry_optional`` entries are jurisdictions a registry can have, or ``*``:
    ``["FL", "us_tx"]`` was accepted and matched nothing, and the FL registry stayed
    required."""

    @pytest.mark.parametrize(("value", "words"), [
        ('["FL"]', "'FL' is not a jurisdiction (did you mean US-FL?)"),
        ('["us_tx"]', "'US_TX' is not a jurisdiction"),
        ('["US-XX"]', "'US-XX' is not a jurisdiction"),
        ('["FR"]', "'FR' is not a jurisdiction"),
    ])
    def test_an_unknown_jurisdiction_is_refused(self, toml: Any, value: str,
                                                words: str) -> None:
        from dncguard.sources.rules import RulesSettings

        toml(f"[rules]\nregistry_optional = {value}\n")
        with pytest.raises(ConfigError) as refused:
            load_settings().section(RulesSettings)
        message = str(refused.value)
        assert message.startswith("invalid [rules] settings: registry_optional: ")
        assert words in message and "'*' for all" in message

    def test_the_reviewers_value_is_refused(self, toml: Any) -> None:
        toml('[rules]\nregistry_optional = ["FL", "us_tx", ""]\n')
        with pytest.raises(ConfigError, match=r"\[rules\] registry_optional"):
            _load_all()

    def test_known_jurisdictions_and_the_star_are_accepted(
            self, toml: Any, monkeypatch: pytest.MonkeyPatch) -> None:
        from dncguard.sources.rules import RulesSettings

        toml('[rules]\nregistry_optional = ["us-fl", " CA-ON ", "GB", "US-PR"]\n')
        rules = load_settings().section(RulesSettings)
        assert rules.registry_optional == ["US-FL", "CA-ON", "GB", "US-PR"]
        assert not rules.registry_required("US-FL") and rules.registry_required("US-TX")
        monkeypatch.setenv("DNCGUARD_RULES_REGISTRY_OPTIONAL", '["*"]')
        assert not load_settings().section(RulesSettings).registry_required("US-TX")

    def test_through_the_cli(self, capsys: pytest.CaptureFixture[str], toml: Any) -> None:
        toml('[rules]\nregistry_optional = ["FL"]\n')
        code, out, err = cli(capsys, "config", "show")
        assert (code, out) == (2, "")
        _one_line_refusal(err, "[rules]", "registry_optional", "did you mean US-FL?")


class TestSectionsAreTables:
    """A section given as anything but a table is refused when the file is read: an array of
    pairs was read as the table it spelt (``rules = [["enabled", false]]`` turned the rules
    off), a string gave a confusing error, a boolean or a number a traceback."""

    @pytest.mark.parametrize(("text", "kind"), [
        ('rules = [["enabled", false]]\n', "an array"),
        ('rules = "off"\n', "a string"),
        ("rules = false\n", "a boolean"),
        ("server = 5\n", "an integer"),
        ("audit = 1.5\n", "a number"),
        ("cxone = 2026-01-01\n", "a date or time"),
    ])
    def test_refused_naming_the_section(self, toml: Any, text: str, kind: str) -> None:
        toml(text)
        table = text.split(" ", 1)[0]
        with pytest.raises(ConfigError) as refused:
            load_settings()
        assert str(refused.value).startswith(f"[{table}] must be a table (a [{table}] "
                                             "header followed by key = value lines), not "
                                             f"{kind}:")

    @pytest.mark.parametrize("text", ['rules = [["enabled", false]]\n', "rules = false\n",
                                      "server = 5\n"])
    def test_through_the_cli(self, capsys: pytest.CaptureFixture[str], toml: Any,
                             text: str) -> None:
        toml(text)
        code, out, err = cli(capsys, "config", "show")
        assert (code, out) == (2, "")
        _one_line_refusal(err, "must be a table")

    def test_a_table_is_read(self, toml: Any) -> None:
        from dncguard.sources.rules import RulesSettings

        toml("[rules]\nenabled = false\n")
        assert not load_settings().section(RulesSettings).enabled


def test_a_campaign_checking_no_list_is_refused(toml: Any) -> None:
    """``lists = []`` checked no DNC list, the internal opt-outs included: allow for an
    opted-out number, with only "data: no lists" in the verdict."""
    toml("[campaigns.nolists]\nlists = []\n")
    with pytest.raises(ConfigError, match="campaigns.nolists.lists: .*checks no DNC list"):
        _load_all()


def test_a_jurisdiction_named_twice_in_max_age_days_is_refused(toml: Any) -> None:
    """``{"US-FL" = 10, "us-fl" = 30}`` read as 30: the stricter limit was dropped."""
    toml('[rules]\nmax_age_days = { "US-FL" = 10, "us-fl" = 30 }\n')
    with pytest.raises(ConfigError, match="max_age_days names US-FL twice"):
        _load_all()


class TestNumbers:
    """A boolean is not a number (``margin_minutes = true`` was read as 1), and no number
    setting takes ``inf`` or ``nan`` (an infinite CXone age broke every check with an
    OverflowError, and ``config show`` printed it as null)."""

    @pytest.mark.parametrize(("text", "where"), [
        ("[campaigns.x]\nmargin_minutes = true\n", "campaigns.x.margin_minutes: is true or "
                                                   "false, not a number"),
        ("chunk_size = true\n", "chunk_size: is true or false"),
        ("[rules]\nmax_age_days = {US-FL = true}\n", "max_age_days: holds true or false "
                                                     "where a number is expected"),
        ("[server]\nport = true\n", "port: is true or false"),
        ("[cxone]\nmax_sync_age_hours = false\n", "max_sync_age_hours: is true or false"),
        ("[audit]\nretention_days = true\n", "retention_days: is true or false"),
        ("[prefilter]\nsample_rate = true\n", "sample_rate: is true or false"),
    ])
    def test_a_boolean_for_a_number_is_refused(self, toml: Any, text: str,
                                               where: str) -> None:
        toml(text)
        with pytest.raises(ConfigError, match=where):
            _load_all()

    def test_numbers_from_the_environment_are_still_read(
            self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Variables arrive as text: read as before (a strict mode would refuse them)."""
        from dncguard.server.settings import ServerSettings
        from dncguard.sources.cxone.settings import CxoneSettings
        from dncguard.sources.rules import RulesSettings

        monkeypatch.setenv("DNCGUARD_CHUNK_SIZE", "7")
        monkeypatch.setenv("DNCGUARD_SERVER_PORT", "8081")
        monkeypatch.setenv("DNCGUARD_SERVER_PROXY_HEADERS", "true")
        monkeypatch.setenv("DNCGUARD_CXONE_MAX_SYNC_AGE_HOURS", "12.5")
        monkeypatch.setenv("DNCGUARD_RULES_MAX_AGE_DAYS", '{"US-FL": 30}')
        s = load_settings()
        assert s.chunk_size == 7
        server = s.section(ServerSettings)
        assert server.port == 8081 and server.proxy_headers is True
        assert s.section(CxoneSettings).max_sync_age_hours == 12.5
        assert s.section(RulesSettings).max_age_days == {"US-FL": 30}
        monkeypatch.setenv("DNCGUARD_RULES_MAX_AGE_DAYS", '{"US-FL": true}')
        with pytest.raises(ConfigError, match="max_age_days: holds true or false"):
            load_settings().section(RulesSettings)

    @pytest.mark.parametrize("text", [
        "[cxone]\nmax_sync_age_hours = inf\n",
        "[cxone]\nfull_sync_hours = nan\n",
        "[audit]\nexport_timeout = inf\n",
        "[prefilter]\nttl_seconds = inf\nmax_ttl_seconds = inf\n",
        "[prefilter]\nsample_rate = nan\n",
    ])
    def test_inf_and_nan_are_refused(self, toml: Any, text: str) -> None:
        toml(text)
        with pytest.raises(ConfigError, match="finite number"):
            _load_all()

    def test_inf_from_the_environment_is_refused(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from dncguard.sources.cxone.settings import CxoneSettings

        monkeypatch.setenv("DNCGUARD_CXONE_MAX_SYNC_AGE_HOURS", "inf")
        with pytest.raises(ConfigError, match=r"\[cxone\].*max_sync_age_hours"):
            load_settings().section(CxoneSettings)

    @pytest.mark.parametrize("text", [
        "[cxone]\nmax_sync_age_hours = 1e12\n",
        "[cxone]\nfull_sync_hours = 1e12\n",
        "[audit]\nretention_days = 1_000_000_000_000\n",
        "[audit]\nexport_max_delay = 1e300\n",
        "[server]\njob_lease_seconds = 1e300\n",
        "[campaigns.x]\nmargin_minutes = 100_000_000_000_000\n",
    ])
    def test_values_that_overflow_a_time_span_are_refused(self, toml: Any, text: str) -> None:
        toml(text)
        with pytest.raises(ConfigError, match="less than or equal to"):
            _load_all()

    def test_config_show_refuses_inf(self, capsys: pytest.CaptureFixture[str],
                                     toml: Any) -> None:
        toml("[cxone]\nmax_sync_age_hours = inf\n")
        code, out, err = cli(capsys, "config", "show", "--json")
        assert (code, out) == (2, "")
        _one_line_refusal(err, "[cxone]", "max_sync_age_hours", "finite number")


class TestDatabaseUrlNotShown:
    """A database URL that is not a URL at all is never repeated: it may be a password
    pasted into the wrong variable (``DNCGUARD_DATABASE_URL=S3cretPW`` was echoed)."""

    def test_refused_at_load_without_the_value(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("DNCGUARD_DATABASE_URL", "S3cretPW")
        with pytest.raises(ConfigError) as refused:
            load_settings()
        assert "S3cretPW" not in str(refused.value)
        assert "database_url: is not a URL (8 characters" in str(refused.value)

    def test_make_engine_does_not_repeat_it(self) -> None:
        """The engine's own refusal (settings built without validation, or by a caller)."""
        from dncguard.store import make_engine

        s = load_settings().model_copy(update={"database_url": "S3cretPW"})
        with pytest.raises(ConfigError) as refused:
            make_engine(s)
        assert "S3cretPW" not in str(refused.value)
        assert "DNCGUARD_DATABASE_URL) is not a URL (8 characters" in str(refused.value)

    def test_through_the_cli(self, capsys: pytest.CaptureFixture[str],
                             monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("DNCGUARD_DATABASE_URL", "S3cretPW")
        code, out, err = cli(capsys, "check", "+12025550123")
        assert (code, out) == (2, "")
        _one_line_refusal(err, "is not a URL", "DNCGUARD_DATABASE_URL")
        assert "S3cretPW" not in err
