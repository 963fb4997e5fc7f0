"""The command line starts like a native tool (issue 12): `--help` imports no heavy library.

Typer builds the whole command tree when the CLI module is imported, so a heavy import at the top
of any ``dncguard.cli`` module (or of ``dncguard/__init__.py``) costs every invocation, even
``dncguard --help``. These tests render every help page in a fresh interpreter and look at
``sys.modules``; they never time anything (start-up times are measured by hand, see issue 12).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from .test_cli_ops import subprocess_cli

#: Libraries that cost tens to hundreds of milliseconds to import; the commands that need them
#: import them when they run.
HEAVY = (
    "alembic",
    "fastapi",
    "holidays",
    "httpx",
    "numpy",
    "orjson",
    "phonenumbers",
    "prometheus_client",
    "pyarrow",
    "pydantic_settings",
    "sqlalchemy",
    "starlette",
    "uvicorn",
    "yaml",
)

#: Run in a fresh interpreter: import the CLI, render the root help, then the help of every
#: sub-app and command, and after each one note which heavy modules have been imported.
PROBE = """
import json, sys
heavy = json.loads(sys.argv[2])

def loaded():
    return sorted({m.split(".")[0] for m in sys.modules} & set(heavy))

from dncguard.cli import app, run

pages = {"": run(["--help"])}
found = {"": loaded()}

import typer.main

def walk(group, prefix):
    for name, cmd in sorted(getattr(group, "commands", {}).items()):
        argv = [*prefix, name]
        pages[" ".join(argv)] = run([*argv, "--help"])
        found[" ".join(argv)] = loaded()
        walk(cmd, argv)

walk(typer.main.get_command(app), [])
with open(sys.argv[1], "w", encoding="utf-8") as fh:
    json.dump({"exit": pages, "heavy": found}, fh)
"""


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, object]]:
    out = tmp_path_factory.mktemp("startup") / "probe.json"
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, str(out), json.dumps(HEAVY)],
        capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-4000:]
    result: dict[str, dict[str, object]] = json.loads(Path(out).read_text(encoding="utf-8"))
    return result


def test_every_help_page_renders(probe: dict[str, dict[str, object]]) -> None:
    pages = probe["exit"]
    # the root, the sub-apps and their commands: a tree, not just the root
    assert {"", "check", "scrub", "lists", "lists import", "rules", "audit", "cxone",
            "serve", "keys", "db"} <= pages.keys()
    assert {page: code for page, code in pages.items() if code != 0} == {}


def test_help_imports_no_heavy_library(probe: dict[str, dict[str, object]]) -> None:
    """`dncguard --help`, `dncguard lists --help`, `dncguard check --help`, ... import none
    of the heavy libraries (the first page that did is named)."""
    first: dict[str, str] = {}
    for page, mods in probe["heavy"].items():
        assert isinstance(mods, list)
        for mod in mods:
            first.setdefault(mod, f"dncguard {page} --help".replace("  ", " "))
    assert first == {}, f"heavy modules imported by help pages: {first}"


def test_help_constants_match_the_library() -> None:
    """The CLI spells out a few tuples for its help texts (importing their modules would
    import the list store and the rules engine); they must be the library's."""
    from dncguard.cli._lists import IMPORT_KINDS_HELP
    from dncguard.cli._rules import (
        CALL_TYPES_HELP,
        CONSENT_TYPES_HELP,
        LINE_TYPES_HELP,
        PURPOSES_HELP,
    )
    from dncguard.lists.store import IMPORT_KINDS
    from dncguard.sources.rules.schema import CALL_TYPES, CONSENT_TYPES, LINE_TYPES, PURPOSES

    assert IMPORT_KINDS_HELP == IMPORT_KINDS
    assert PURPOSES_HELP == PURPOSES
    assert CALL_TYPES_HELP == CALL_TYPES
    assert LINE_TYPES_HELP == LINE_TYPES
    assert CONSENT_TYPES_HELP == CONSENT_TYPES


def test_unreachable_database_still_exits_2(monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    """The CLI no longer imports SQLAlchemy to recognise its errors: one line, exit 2."""
    pytest.importorskip("psycopg")
    from dncguard.cli import run

    # nothing listens on port 9 (discard) of the loopback: the connection is refused at once
    monkeypatch.setenv("DNCGUARD_DATABASE_URL", "postgresql+psycopg://u:p@127.0.0.1:9/db")
    assert run(["lists", "ls"]) == 2
    err = capsys.readouterr().err
    assert "the database is unavailable (OperationalError" in err
    assert "Traceback" not in err


def test_public_api_is_lazy_and_complete() -> None:
    """`import dncguard` defers the library (PEP 562) yet every name of __all__ resolves to the
    object of its home module."""
    code = ("import sys, dncguard; print(sorted(m for m in sys.modules "
            "if m.startswith('dncguard.')))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=True)
    assert proc.stdout.strip() == "['dncguard._version']"
    import dncguard
    from dncguard.engine.scrubber import Scrubber

    assert dncguard.Scrubber is Scrubber
    assert set(dir(dncguard)) >= set(dncguard.__all__)
    with pytest.raises(AttributeError):
        _ = dncguard.no_such_name


def test_main_freezes_the_collector_only_once_the_command_is_done(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """`main` freezes the collector after the command (so that the interpreter's shutdown does
    not walk every imported object), never before it, and exits with the command's code."""
    import gc

    import dncguard.cli as cli

    events: list[str] = []

    def fake_run(argv: list[str] | None = None) -> int:
        events.append("run")
        return 3

    monkeypatch.setattr(cli, "run", fake_run)
    monkeypatch.setattr(gc, "freeze", lambda: events.append("freeze"))
    with pytest.raises(SystemExit) as exc:
        cli.main()
    assert exc.value.code == 3
    assert events == ["run", "freeze"]


def test_the_entry_point_loses_nothing_at_exit(tmp_path: Path) -> None:
    """Through the real entry point (which freezes the collector before the interpreter shuts
    down, so that nothing a module still holds is finalized then), a check prints its whole
    verdict, a scrub's CSV and Parquet files are whole, and every audit record is durable."""
    home = tmp_path / "home"

    def dncguard(*args: str) -> str:
        proc = subprocess_cli(home, *args)  # rules off: every row is verified, exit 0
        assert proc.returncode == 0, proc.stderr[-2000:]
        return proc.stdout

    assert json.loads(dncguard("check", "--json", "+12025550123"))["e164"] == "+12025550123"
    phones = [f"+1202555{i:04d}" for i in range(2000)]
    campaign = tmp_path / "campaign.csv"
    campaign.write_text("phone\n" + "\n".join(phones) + "\n", encoding="utf-8")
    at = "2026-11-27T16:00:00Z"
    for out in ("out.csv", "out.parquet"):
        dncguard("scrub", str(campaign), "-o", str(tmp_path / out), "--at", at)
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    as_text = pacsv.ConvertOptions(column_types={"e164": pa.string()})
    for table in (pacsv.read_csv(tmp_path / "out.csv", convert_options=as_text),
                  pq.read_table(tmp_path / "out.parquet")):
        assert table.num_rows == len(phones)
        assert table.column("e164").to_pylist() == phones
    verify = dncguard("audit", "verify")
    assert "chain intact: 3 record" in verify, verify
