"""Shared fixtures: an isolated home per test, a fixed clock, CSV helpers, PostgreSQL."""

from __future__ import annotations

import contextlib
import csv
import logging
import os
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from dncguard.config import Settings, load_settings
from dncguard.engine.scrubber import Scrubber
from dncguard.lists.store import ListStore
from dncguard.store import dispose_engines

if TYPE_CHECKING:
    from sqlalchemy import Engine

#: A fixed dial time used by tests: Thursday 2026-11-19 15:00 UTC (10:00 in New York).
AT = datetime(2026, 11, 19, 15, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No test sees the developer's DNCGUARD_* settings or home."""
    for key in list(os.environ):
        if key.startswith("DNCGUARD_") and key not in ("DNCGUARD_TEST_REQUIRE_POSTGRES",
                                                       "DNCGUARD_TEST_DATABASE_URL"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("DNCGUARD_HOME", str(tmp_path / "home"))
    # List-only by default; rules tests (tests/rules, test_integration_rules) turn them on.
    monkeypatch.setenv("DNCGUARD_RULES_ENABLED", "false")
    monkeypatch.setenv("DNCGUARD_USER", "tester")
    yield
    dispose_engines()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(home=tmp_path / "home")


@pytest.fixture
def store(settings: Settings) -> ListStore:
    return ListStore(settings)


@pytest.fixture
def scrubber(settings: Settings) -> Scrubber:
    return Scrubber(settings, clock=lambda: AT)


@pytest.fixture
def write_csv(tmp_path: Path) -> Callable[..., Path]:
    def write(rows: list[list[str]], name: str = "in.csv") -> Path:
        path = tmp_path / name
        with path.open("w", encoding="utf-8", newline="") as fh:
            csv.writer(fh).writerows(rows)
        return path

    return write


@pytest.fixture
def write_lines(tmp_path: Path) -> Callable[..., Path]:
    def write(lines: list[str], name: str = "list.txt") -> Path:
        path = tmp_path / name
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return path

    return write


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run ``dncguard ARGS`` in process: (exit code, stdout, stderr)."""
    from dncguard.cli import run

    code = run(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def scrub_cli(capsys: pytest.CaptureFixture[str], *args: str, at: str) -> tuple[int, str]:
    """``dncguard scrub ARGS --at AT -q`` in process: (exit code, stderr), never a
    traceback."""
    code, _, err = cli(capsys, "scrub", *args, "--at", at, "-q")
    assert "Traceback" not in err
    return code, err


def error_line(err: str) -> str:
    """The one ``error:`` line of a refused command."""
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    return lines[0]


class LogLines(logging.Handler):
    """Every message a logger (and its children) logs, as text, at any level."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@contextlib.contextmanager
def log_lines(name: str) -> Iterator[LogLines]:
    """Collect what the logger ``name`` logs while the block runs."""
    handler = LogLines()
    logger = logging.getLogger(name)
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


# -- PostgreSQL ------------------------------------------------------------------------------

PG_URL = os.environ.get("DNCGUARD_TEST_DATABASE_URL",
                        "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def postgres_engine(**options: Any) -> Engine:
    """An engine on :data:`PG_URL` that answers, or a skip saying why (a failure when
    DNCGUARD_TEST_REQUIRE_POSTGRES is set, as in CI)."""
    import sqlalchemy as sa

    try:
        engine = sa.create_engine(PG_URL, connect_args={"connect_timeout": 3}, **options)
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))
    except Exception as exc:  # any driver or connection error means "no server here"
        message = f"no PostgreSQL answers at {PG_URL}: {type(exc).__name__}"
        if os.environ.get("DNCGUARD_TEST_REQUIRE_POSTGRES"):
            pytest.fail(message + " (DNCGUARD_TEST_REQUIRE_POSTGRES is set)")
        pytest.skip(message)
    return engine


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A PostgreSQL URL with a fresh schema, or a skip saying why (a failure in CI)."""
    import sqlalchemy as sa

    engine = postgres_engine()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with engine.begin() as conn:
        conn.execute(sa.text(f'create schema "{schema}"'))
    sep = "&" if "?" in PG_URL else "?"
    yield f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    dispose_engines()
    with engine.begin() as conn:
        conn.execute(sa.text(f'drop schema "{schema}" cascade'))
    engine.dispose()
