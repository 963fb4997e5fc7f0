"""Damaged snapshot files under a running server (two workers): every check of that list
answers error / SOURCE_ERROR, /readyz fails naming it, no worker crashes, a re-import recovers."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from dncguard.config import load_settings
from dncguard.lists.store import ListStore
from dncguard.store import utcnow

from .conftest import Server, make_key, server_env

LISTED = "+12025550042"
UNLISTED = "+12025559999"


def _touch_later(path: Path, before: os.stat_result) -> None:
    after = os.stat(path)
    if after.st_mtime_ns == before.st_mtime_ns:
        os.utime(path, ns=(after.st_atime_ns, before.st_mtime_ns + 1_000_000))


def truncate(path: Path) -> None:
    os.truncate(path, 1000)


def shorten(path: Path) -> None:
    os.truncate(path, path.stat().st_size - 4096 * 3)


def flip(path: Path) -> None:
    before = os.stat(path)
    with path.open("r+b") as fh:
        fh.seek(before.st_size // 2)
        chunk = fh.read(64)
        fh.seek(before.st_size // 2)
        fh.write(bytes(b ^ 0xFF for b in chunk))
    _touch_later(path, before)


DAMAGE: list[tuple[str, Callable[[Path], None], str]] = [
    ("truncated", truncate, "truncated or extended"),
    ("shortened", shorten, "truncated or extended"),
    ("corrupted", flip, "checksum mismatch")]


def _numbers(layout: str) -> list[str]:
    if layout == "sorted":
        return [f"202,555{i:04d}" for i in range(2500)]
    # dense enough in one area code for the NANP bitmap (about 1.25 MB)
    return [f"202,555{i:04d}" for i in range(2500)] + [
        f"202,{n:07d}" for n in range(0, 7_000_000, 40)]


def _verdict(c: httpx.Client, phone: str) -> dict[str, object]:
    resp = c.post("/v1/check", json={"phone": phone})
    assert resp.status_code == 200, resp.text
    body: dict[str, object] = resp.json()
    return body


@pytest.mark.parametrize("layout", ["sorted", "bitmap"])
def test_damaged_snapshots_under_a_running_server(
        tmp_path: Path, start_server: Callable[..., Server], layout: str) -> None:
    home = tmp_path / "home"
    admin = make_key(home, "admin")
    store = ListStore(load_settings(home=home))
    source = tmp_path / "ftc.txt"
    source.write_text("\n".join(_numbers(layout)) + "\n", encoding="utf-8")

    def publish() -> Path:
        info = store.import_file(source, kind="national", name="us-ftc", jurisdiction="US",
                                 snapshot_date=utcnow().date()).info
        path = store.snapshot_path(info)
        assert path is not None
        return path

    snapshot = publish()
    assert (snapshot.stat().st_size > 1_000_000) is (layout == "bitmap")
    store.add_number("+12025550188", reason="asked")
    server = start_server(server_env(home), "--workers", "2")
    with server.client(admin) as c:
        assert c.get("/readyz").status_code == 200
        for _ in range(6):  # both workers have the list open
            assert _verdict(c, LISTED)["decision"] == "block"
        for name, damage, expected in DAMAGE:
            damage(snapshot)
            for _ in range(6):  # whichever worker answers
                for phone in (LISTED, UNLISTED):
                    v = _verdict(c, phone)
                    assert v["decision"] == "error", (name, v)
                    reasons = v["reasons"]
                    assert isinstance(reasons, list)
                    assert [(r["code"], r["list"]) for r in reasons] == [
                        ("SOURCE_ERROR", "us-ftc")], (name, reasons)
                    assert expected in reasons[0]["detail"]
                internal = _verdict(c, "+12025550188")  # the internal list keeps working
                assert internal["decision"] == "block"
                assert {r["code"] for r in internal["reasons"]} == {  # type: ignore[attr-defined]
                    "DNC_INTERNAL", "SOURCE_ERROR"}
            ready = c.get("/readyz")
            assert ready.status_code == 503, name
            problems = [r for r in ready.json()["reasons"] if "us-ftc" in r]
            assert len(problems) == 1 and expected in problems[0], ready.json()
            lists = {x["name"]: x for x in c.get("/v1/lists").json()["lists"]}
            assert expected in lists["us-ftc"]["snapshotError"]
            assert lists["internal"]["snapshotError"] is None
            metrics = c.get("/metrics").text
            assert 'dncguard_list_snapshot_ok{list="us-ftc"} 0.0' in metrics
            assert c.get("/healthz").status_code == 200
            assert server.proc is not None and server.proc.poll() is None
            snapshot = publish()  # a fixed list recovers at once
            assert c.get("/readyz").status_code == 200, c.get("/readyz").text
            for _ in range(6):
                assert _verdict(c, LISTED)["decision"] == "block"
                assert _verdict(c, UNLISTED)["decision"] == "allow"
            assert 'dncguard_list_snapshot_ok{list="us-ftc"} 1.0' in c.get("/metrics").text
    assert "Traceback" not in server.log()
    assert "5550042" not in server.log() and "5559999" not in server.log()
