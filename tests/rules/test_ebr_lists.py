"""An established business relationship lifts a state list's hit only while it is live under
that state's window. A row without an address meets every state's list (sources.local), so
its EBR must be live under every state's window to lift their hits; live only under its own
jurisdictions' (the federal 18 months), it lifts the national registry's hit alone.

Before, a 9-month-old purchase lifted a Missouri no-call hit (Missouri: 180 days) for a DC or
Puerto Rico number whose row gave no address: ``allow`` with EXEMPT_EBR."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from ..conftest import cli

AT = "2026-12-02T19:00:00Z"  # Wed 14:00 EST, 13:00 CST: inside every window


@pytest.fixture
def home(monkeypatch: pytest.MonkeyPatch, write_lines: Callable[..., Path],
         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("DNCGUARD_RULES_ENABLED", "true")
    # no state list but Missouri's is loaded: the others' registries are not required here
    monkeypatch.setenv("DNCGUARD_RULES_REGISTRY_OPTIONAL", '["*"]')
    numbers = ["+12025550188", "+17875550100", "+13145550177", "+12025550199"]
    for args in (["--kind", "national", "--jurisdiction", "US", "--name", "us-ftc"],
                 ["--kind", "state", "--jurisdiction", "US-MO", "--name", "us-mo"]):
        path = write_lines(["phone", *numbers], name=f"{args[-1]}.csv")
        code, _, err = cli(capsys, "lists", "import", str(path), *args,
                           "--snapshot-date", "2026-12-01")
        assert code == 0, err
    for phone, granted in (("+12025550188", "2026-03-01"), ("+17875550100", "2026-03-01"),
                           ("+13145550177", "2026-03-01"), ("+12025550199", "2026-10-01")):
        code, _, err = cli(capsys, "consent", "add", phone, "--type", "ebr_purchase",
                           "--date", granted)
        assert code == 0, err


def _check(capsys: pytest.CaptureFixture[str], phone: str, *args: str) -> dict[str, object]:
    code, out, err = cli(capsys, "check", phone, "--at", AT, "--line-type", "landline",
                         "--json", *args)
    assert code in (0, 3), err
    found: dict[str, object] = json.loads(out)
    return found


def _codes(verdict: dict[str, object]) -> list[str]:
    return [r["code"] for r in verdict["reasons"]]  # type: ignore[attr-defined,index]


@pytest.mark.parametrize("phone", ["+12025550188", "+17875550100"])
def test_a_lapsed_state_window_keeps_the_state_hit(home: None, capsys: pytest.CaptureFixture[str],
                                                   phone: str) -> None:
    verdict = _check(capsys, phone)
    assert verdict["decision"] == "block"
    assert "DNC_STATE" in _codes(verdict) and "EXEMPT_EBR" in _codes(verdict)
    (ebr,) = [r for r in verdict["reasons"] if r["code"] == "EXEMPT_EBR"]  # type: ignore
    assert ebr["overrides"] == ["DNC_NATIONAL"]
    assert "state registry hits still decide" in ebr["detail"] and "US-MO" in ebr["detail"]


def test_the_numbers_own_state_window_decides_as_before(
        home: None, capsys: pytest.CaptureFixture[str]) -> None:
    """A Missouri number: Missouri's own 180 days already ended the relationship."""
    verdict = _check(capsys, "+13145550177")
    assert verdict["decision"] == "block" and "EXEMPT_EBR" not in _codes(verdict)


def test_a_relationship_live_everywhere_lifts_every_hit(
        home: None, capsys: pytest.CaptureFixture[str]) -> None:
    verdict = _check(capsys, "+12025550199")  # two months old: live under every window
    assert verdict["decision"] == "allow"
    (ebr,) = [r for r in verdict["reasons"] if r["code"] == "EXEMPT_EBR"]  # type: ignore
    assert ebr["overrides"] == ["DNC_NATIONAL", "DNC_STATE"]


def test_an_address_narrows_the_lists_and_the_windows(
        home: None, capsys: pytest.CaptureFixture[str]) -> None:
    """Given a DC address, Missouri's list no longer applies, and the federal 18 months lift
    the national hit."""
    verdict = _check(capsys, "+12025550188", "--state", "DC")
    assert verdict["decision"] == "allow"
    assert "DNC_STATE" not in _codes(verdict)
