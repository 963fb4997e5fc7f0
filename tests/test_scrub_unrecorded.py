"""A verdict file appears only with its audit record: a scrub whose record cannot be committed
leaves no verdict file (and replaces none), only a clear error."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from dncguard.audit import audit_log
from dncguard.cli import run
from dncguard.config import Settings
from dncguard.lists.store import ListStore

from .conftest import read_csv

AT = "2026-11-19T15:00:00Z"
FAIL_JOBS = ("create trigger no_jobs before insert on audit_records when new.kind = 'job' "
             "begin select raise(abort, 'disk I/O error'); end")


def _db(settings: Settings) -> Path:
    return settings.home / "dncguard.db"


def _break_job_records(settings: Settings) -> None:
    with sqlite3.connect(_db(settings)) as db:
        db.execute(FAIL_JOBS)


def _mend_job_records(settings: Settings) -> None:
    with sqlite3.connect(_db(settings)) as db:
        db.execute("drop trigger no_jobs")


def _scrub(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = run(["scrub", *args, "--at", AT, "-q"])
    return code, capsys.readouterr().err


def _left(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name != "in.csv")


@pytest.fixture
def contacts(write_csv: Callable[..., Path], store: ListStore) -> Path:
    store.add_number("2025550100")
    return write_csv([["name", "phone", "alt"], ["a", "2025550100", "2025550101"],
                      ["b", "2125550199", "2025550100"]])


def test_no_verdict_file_without_its_record(capsys: pytest.CaptureFixture[str],
                                            contacts: Path, tmp_path: Path,
                                            settings: Settings) -> None:
    work = contacts.parent
    out = work / "out.csv"
    code, _ = _scrub(capsys, str(contacts), "-o", str(out))  # the home and its tables exist
    assert code == 0
    out.unlink()
    (work / "out.summary.json").unlink()
    before = _left(work)
    _break_job_records(settings)
    code, err = _scrub(capsys, str(contacts), "-o", str(out))
    assert code == 2
    assert "no verdict file was written" in err and "database is unavailable" in err
    assert _left(work) == before  # no verdict file, no summary, no hidden staged file
    jobs = settings.home / "audit" / "jobs"
    assert len(list(jobs.iterdir())) == 1  # the first scrub's; no copy without a record

    _mend_job_records(settings)
    code, _ = _scrub(capsys, str(contacts), "-o", str(out))
    assert code == 0
    assert [r["decision"] for r in read_csv(out)] == ["block", "allow"]
    summary = json.loads((work / "out.summary.json").read_text())
    assert summary["output"] == str(out)
    records = list(audit_log(settings).records(kind="job"))
    assert len(records) == 2  # the first scrub's and this one's; none for the failed one
    results = records[-1].data["results"]
    assert results["file"] == "out.csv"  # the name it has, not the staged one
    assert results["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    assert records[-1].data["summary"]["output"] == str(out)


def test_an_earlier_verdict_file_is_not_replaced(capsys: pytest.CaptureFixture[str],
                                                 contacts: Path, settings: Settings,
                                                 store: ListStore) -> None:
    out = contacts.parent / "out.csv"
    assert _scrub(capsys, str(contacts), "-o", str(out))[0] == 0
    earlier = out.read_bytes()
    store.add_number("2125550199")  # the next scrub's verdicts differ
    _break_job_records(settings)
    assert _scrub(capsys, str(contacts), "-o", str(out))[0] == 2
    assert out.read_bytes() == earlier
    assert sorted(p.name for p in contacts.parent.iterdir() if p.name.startswith(".")) == []


def test_several_columns_leave_nothing_unrecorded(capsys: pytest.CaptureFixture[str],
                                                  contacts: Path, settings: Settings) -> None:
    work = contacts.parent
    out = work / "out.csv"
    assert _scrub(capsys, str(contacts), "-o", str(work / "first.csv"))[0] == 0
    before = _left(work)
    _break_job_records(settings)
    code, err = _scrub(capsys, str(contacts), "-o", str(out), "--phone-column", "phone",
                       "--phone-column", "alt")
    assert code == 2 and "no verdict file was written" in err
    assert _left(work) == before  # neither the combined file nor a column's, nor the folder
    _mend_job_records(settings)
    code, _ = _scrub(capsys, str(contacts), "-o", str(out), "--phone-column", "phone",
                     "--phone-column", "alt")
    assert code == 0
    assert sorted(p.name for p in (work / "out.columns").iterdir()) == [
        "alt.csv", "alt.summary.json", "phone.csv", "phone.summary.json"]


@pytest.mark.parametrize("audited", [True, False])
def test_a_verdict_file_that_cannot_be_finished_leaves_nothing(
        capsys: pytest.CaptureFixture[str], contacts: Path, settings: Settings,
        monkeypatch: pytest.MonkeyPatch, audited: bool) -> None:
    """Finishing the file fails (the disk is full when the last bytes are flushed): no
    partial file is left beside the output, audited or not."""
    from dncguard.engine.scrubber import Scrubber
    from dncguard.io.verdict_file import TableWriter

    close = TableWriter.close

    def full(self: TableWriter) -> None:
        assert self._fh is not None
        self._fh.flush()  # the rows reach the partial file, then finishing it fails
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(TableWriter, "close", full)
    out = contacts.parent / "out.csv"
    before = _left(contacts.parent)
    with pytest.raises(OSError, match="No space left"):
        Scrubber(settings, audit=audited).scrub_file(contacts, out)
    assert _left(contacts.parent) == before
    monkeypatch.setattr(TableWriter, "close", close)
    Scrubber(settings, audit=audited).scrub_file(contacts, out)
    assert [r["decision"] for r in read_csv(out)] == ["block", "allow"]


def test_several_columns_stay_hidden_until_recorded(contacts: Path, settings: Settings,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """While a column's record is written, no verdict file of the scrub is under its final
    name (a kill then leaves hidden files only); once all are recorded, every file is in
    place, each record hashing the file under the name it names."""
    from dncguard import audit
    from dncguard.engine.scrubber import Scrubber

    work = contacts.parent
    out = work / "out.csv"
    finals = [out, work / "out.columns" / "phone.csv", work / "out.columns" / "alt.csv"]
    record = audit.record_job
    seen: list[list[str]] = []

    def watched(*args: object, **kwargs: object) -> None:
        seen.append([p.name for p in finals if p.exists()])
        record(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(audit, "record_job", watched)
    summary = Scrubber(settings).scrub_file(contacts, out, phone_column=["phone", "alt"])
    assert seen == [[], []]
    assert all(p.exists() for p in finals)
    assert sorted(p.name for p in (work / "out.columns").iterdir()) == [
        "alt.csv", "alt.summary.json", "phone.csv", "phone.summary.json"]
    assert not list(work.rglob(".*"))
    assert json.loads((work / "out.summary.json").read_text())["output"] == str(out)
    jobs = {r.data["results"]["file"]: r.data["results"]["sha256"]
            for r in audit_log(settings).records(kind="job")}
    for p in finals[1:]:
        assert jobs[p.name] == hashlib.sha256(p.read_bytes()).hexdigest()
    assert set(summary.audit_jobs) == {"phone", "alt"}


def test_a_column_whose_record_fails_is_removed(contacts: Path, settings: Settings,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """The second column's record fails: the first column's recorded file is kept (the
    trail names it), the second's and the combined file are not left, nor a hidden one."""
    from dncguard import audit
    from dncguard.engine.scrubber import Scrubber

    work = contacts.parent
    record = audit.record_job
    calls: list[int] = []

    def second_fails(*args: object, **kwargs: object) -> None:
        calls.append(1)
        if len(calls) == 2:
            raise OSError(5, "I/O error")
        record(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(audit, "record_job", second_fails)
    with pytest.raises(OSError, match="I/O error"):
        Scrubber(settings).scrub_file(contacts, work / "out.csv", phone_column=["phone", "alt"])
    assert sorted(p.name for p in (work / "out.columns").iterdir()) == [
        "phone.csv", "phone.summary.json"]
    assert not (work / "out.csv").exists() and not (work / "out.summary.json").exists()
    assert not list(work.rglob(".*"))


def test_a_move_that_fails_leaves_no_hidden_file(contacts: Path, settings: Settings,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Every column is recorded, then moving the second one into place fails (a full disk):
    the recorded columns end in place with their summaries, the combined file (recorded by
    no one) is not left, nor any hidden file, and the failure is raised. The hidden files
    were left behind."""
    from dncguard.engine.scrubber import Scrubber

    work = contacts.parent
    replace = Path.replace
    moves: list[str] = []

    def full_once(self: Path, target: Any) -> Path:
        if ".unrecorded-" in self.name and ".unrecorded-" not in Path(target).name:
            moves.append(self.name)  # a move into place
            if len(moves) == 2:
                raise OSError(28, "No space left on device")
        return replace(self, target)

    monkeypatch.setattr(Path, "replace", full_once)
    with pytest.raises(OSError, match="No space left"):
        Scrubber(settings).scrub_file(contacts, work / "out.csv", phone_column=["phone", "alt"])
    assert sorted(p.name for p in (work / "out.columns").iterdir()) == [
        "alt.csv", "alt.summary.json", "phone.csv", "phone.summary.json"]
    assert not (work / "out.csv").exists() and not (work / "out.summary.json").exists()
    assert not list(work.rglob(".*"))
