"""An opt-out's last day (``dnc add --expires DAY``, the console's date) lasts until that day
has ended in every zone: it lapsed at UTC's midnight, so from 19:00 on its last day a New
York number was callable again (allow), and a Honolulu one from 14:00."""

from __future__ import annotations

import pytest

from .conftest import cli


@pytest.mark.parametrize(("phone", "at", "decision"), [
    ("2025550123", "2026-12-05T00:30:00Z", "block"),   # 19:30 on Dec 4 in Washington
    ("8085550123", "2026-12-05T09:30:00Z", "block"),   # 23:30 on Dec 4 in Honolulu
    ("2025550123", "2026-12-05T12:00:00Z", "allow"),   # Dec 4 has ended everywhere
])
def test_the_last_day_holds_in_the_called_partys_zone(
        capsys: pytest.CaptureFixture[str], phone: str, at: str, decision: str) -> None:
    code, _, err = cli(capsys, "dnc", "add", phone, "--expires", "2026-12-04")
    assert code == 0, err
    code, out, err = cli(capsys, "check", phone, "--at", at, "--json")
    assert code == 0, err
    assert f'"decision": "{decision}"' in out, out
