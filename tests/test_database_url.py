"""A database URL that cannot be read, or names a driver that is not installed, is one line
naming it (password masked) and exit 2, never a traceback."""

from __future__ import annotations

import pytest

from dncguard.cli import run


@pytest.mark.parametrize("url, words", [
    ("postgresql+psycopg://u:s3cret@127.0.0.1:54x32/db", "is not a valid database URL"),
    ("postgresql+psycopg2://u:s3cret@127.0.0.1:5432/db", "its driver (psycopg2) is not installed"),
    ("nosuchdb://u:s3cret@127.0.0.1/db", "no database dialect"),
])
def test_a_database_url_not_understood(capsys: pytest.CaptureFixture[str],
                                       monkeypatch: pytest.MonkeyPatch, url: str,
                                       words: str) -> None:
    monkeypatch.setenv("DNCGUARD_DATABASE_URL", url)
    assert run(["check", "+12025550123"]) == 2
    err = capsys.readouterr().err
    assert words in err and "DNCGUARD_DATABASE_URL" in err
    assert "s3cret" not in err and "u:***@" in err
    assert "Traceback" not in err
